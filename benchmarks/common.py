"""Shared bits of the benchmarks: where results go and what machine made them."""
import json
import os
import pathlib
import platform
import shlex
import sys
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }


def write(name: str, result: dict, out: str | None = None) -> pathlib.Path:
    """Print the result and write it as JSON to benchmarks/results/<name>.json (or out)."""
    path = pathlib.Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", f"benchmarks/{pathlib.Path(sys.argv[0]).name}", *sys.argv[1:]])
    result = {"benchmark": name, "command": command, "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return path


def run_cells(plan: list[dict], key, run_cell, path: pathlib.Path, jobs: int, run: bool = True) -> dict:
    """Run every cell of ``plan`` not yet in ``path`` (JSON lines, one finished cell each) on ``jobs``
    processes, appending each result as soon as it is done, so a stopped run resumes where it was.
    key(cell) -> str names a cell; run_cell(cell) -> dict runs one. Returns {key: result} of every
    cell done, the earlier ones included. run=False only reads what is there."""
    import multiprocessing

    done = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                cell = json.loads(line)
                done[key(cell)] = cell
    todo = [c for c in plan if key(c) not in done]
    print(f"{len(plan)} cells, {len(plan) - len(todo)} already in {path}, {len(todo)} to run on {jobs} job(s)")
    if todo and run:
        path.parent.mkdir(parents=True, exist_ok=True)
        with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
            for result in pool.imap_unordered(run_cell, todo):
                with path.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                done[key(result)] = result
                print(f"done {key(result)} in {result['seconds']:.0f} s", flush=True)
    return done
