"""Execution time of every solution notebook, each in a fresh kernel, against its 3-minute budget.

    python benchmarks/notebooks.py [--only 01_episodes]

With --only, the other chapters' earlier measurements in the results file are kept (each entry
says when it was measured).
"""
import argparse
import json
import pathlib
import time

import nbformat
from nbclient import NotebookClient

from common import RESULTS, write

SOLUTIONS = pathlib.Path(__file__).resolve().parents[1] / "solutions"
BUDGET_S = 180


def run(path: pathlib.Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "within_budget": seconds <= BUDGET_S,
            "code_cells": sum(c.cell_type == "code" for c in nb.cells), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}


def earlier(out: str | None) -> dict:
    """The per-chapter entries of the results file, if there is one."""
    path = pathlib.Path(out) if out else RESULTS / "notebooks.json"
    try:
        return json.loads(path.read_text()).get("notebooks", {})
    except (OSError, ValueError):
        return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    chapters = sorted(p for p in SOLUTIONS.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if args.only:
        chapters = [p for p in chapters if p.parent.name in args.only]
    results = {p.parent.name: run(p) for p in chapters}
    if args.only:
        results = {**earlier(args.out), **results}
    write("notebooks", {"budget_seconds": BUDGET_S, "notebooks": results}, args.out)


if __name__ == "__main__":
    main()
