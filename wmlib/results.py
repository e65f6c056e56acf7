"""The course's reference results: what its benchmarks measured, committed under benchmarks/results/.

A chapter that quotes a benchmark prints the number from here instead of typing it, so the prose
cannot drift from the measurement:

    from wmlib import results
    control = results.load("control")     # benchmarks/results/control.json
    control["command"]                    # the command that made it, to run it again
    results.rate(control["pooled"])       # '141/150 = 94% (95% CI 89-97%)'

Each file records the command that produced it, the machine and the date (``benchmarks/common.py``).
"""
from __future__ import annotations

import json
import pathlib

FOLDER = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def path(name: str) -> pathlib.Path:
    return FOLDER / f"{name}.json"


def load(name: str) -> dict:
    """The committed result of one benchmark; a clear error if it is missing or unreadable."""
    file = path(name)
    if not file.exists():
        # the script is named like the result, or like its first part (control_pullcube <- control.py)
        scripts = sorted(FOLDER.parent.glob("*.py"), key=lambda p: -len(p.stem))
        script = next((p.name for p in scripts if name == p.stem or name.startswith(p.stem + "_")), "<its script>")
        raise FileNotFoundError(f"{file} is missing: the course quotes it, so it is committed with the course; "
                                f"rerun `python benchmarks/{script}` to make it again")
    try:
        result = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not valid JSON ({error})") from error
    if "command" not in result:
        raise ValueError(f"{file} does not say which command made it (no 'command' field)")
    return result


def rate(summary: dict) -> str:
    """'k/n = p% (95% CI lo-hi%)' from a {"successes", "trials", "ci95"} summary."""
    k, n = summary["successes"], summary["trials"]
    low, high = summary["ci95"]
    return f"{k}/{n} = {k / n:.0%} (95% CI {low:.0%}-{high:.0%})"
