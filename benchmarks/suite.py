"""What `make test` costs from a clean clone: wall time with set-up, pytest's time, and how many
times each solution notebook was executed (the target is once each).

    python benchmarks/suite.py [--source .] [--workdir /tmp/wmr-suite] [--out ...]

It clones the committed HEAD of --source into a fresh folder (no .venv, no dataset: what CI and a
new student start from), runs `make test` there with WMLIB_EXECUTION_LOG set (tests/notebook_run.py
appends a line per notebook execution), and reads pytest's own summary line for its time and
counts. The clone's `make test` output is kept in <workdir>/make_test.log.
"""
import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

from common import write

SUMMARY = re.compile(r"=+ (?P<counts>.*?) in (?P<seconds>[\d.]+)s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[1])
    parser.add_argument("--workdir", type=pathlib.Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="wmr-suite-"))
    clone = workdir / "clone"
    if clone.exists():
        shutil.rmtree(clone)
    subprocess.run(["git", "clone", "--quiet", str(args.source), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    log, executions = workdir / "make_test.log", workdir / "executions.jsonl"
    executions.unlink(missing_ok=True)
    env = {**os.environ, "WMLIB_EXECUTION_LOG": str(executions)}
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run(["make", "test"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    text = log.read_text()
    summary = SUMMARY.findall(text)
    counts, pytest_seconds = (summary[-1] if summary else ("", "nan"))
    runs = [json.loads(line) for line in executions.read_text().splitlines()] if executions.exists() else []
    notebooks = sorted(p.relative_to(clone).as_posix() for p in clone.glob("solutions/*/*.ipynb"))
    per_notebook = {name: {"executions": sum(r["notebook"] == name for r in runs),
                           "seconds": [r["seconds"] for r in runs if r["notebook"] == name],
                           "workers": sorted({r["worker"] for r in runs if r["notebook"] == name})}
                    for name in notebooks}
    write("suite", {
        "commit": commit, "make_test_exit_code": code, "make_test_wall_seconds": round(wall, 1),
        "pytest_wall_seconds": float(pytest_seconds), "pytest_summary": counts,
        "every_notebook_executed_once": all(v["executions"] == 1 for v in per_notebook.values()),
        "notebooks": per_notebook, "log": str(log),
    }, args.out)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
