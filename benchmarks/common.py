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
