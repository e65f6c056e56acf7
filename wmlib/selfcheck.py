"""Run the visible tests of a notebook's exercises in the running kernel, and say what they show.

In a course notebook:

    from wmlib.selfcheck import selfcheck
    selfcheck()                      # every exercise of this notebook
    selfcheck("ex2_transitions")     # one exercise

It reads the test cells from the notebook file (they are locked, so the saved file has them as
you see them) and runs them against the functions you have defined, that is the solution cells
you have run. Passing visible tests is a good sign, not a grade: the grader also runs hidden tests
on inputs you have not seen.
"""
from __future__ import annotations

import json
import os
import pathlib
import traceback
from dataclasses import dataclass

from wmlib.grading import cells

NOTICE = ("Only the visible tests ran. The grader also runs hidden tests on inputs you have not seen,\n"
          "so a pass here means \"no visible test failed\", not \"the exercise is correct\".")


@dataclass
class Check:
    exercise: str       # the test cell's id, e.g. "ex1_validator_tests"
    points: float
    status: str         # "pass" | "fail" | "not run"
    detail: str = ""


def find_notebook(start: pathlib.Path | None = None) -> pathlib.Path:
    """The notebook this kernel belongs to: JupyterLab names it in JPY_SESSION_NAME; else the
    only .ipynb file in the working folder."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and pathlib.Path(session).is_file():
        return pathlib.Path(session)
    folder = start or pathlib.Path.cwd()
    candidates = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise FileNotFoundError(f"selfcheck: cannot tell which notebook this is (found: {found} in {folder}); "
                                f"pass its file name, e.g. selfcheck(notebook='01_episodes.ipynb')")
    return candidates[0]


def visible_tests(notebook: pathlib.Path) -> list[tuple[str, float, str]]:
    """(test cell id, points, source without any hidden-test region) of each graded test cell."""
    nb = json.loads(pathlib.Path(notebook).read_text())
    tests = []
    for cell in nb["cells"]:
        if cells.kind(cell) == "test":
            gid = cells.grade_id(cell) or "?"
            tests.append((gid, cells.points(cell), cells.visible_part(cells.source(cell), f"test cell {gid}")))
    return tests


def run_one(shell, exercise: str, points: float, source: str) -> Check:
    """Run one visible test cell in the kernel's namespace, its printing silenced."""
    from IPython.utils.capture import capture_output
    code = shell.transform_cell(source)
    try:
        with capture_output():
            exec(compile(code, f"<visible tests of {exercise}>", "exec"), shell.user_ns)
    except NotImplementedError:
        return Check(exercise, points, "not run", "the exercise still raises NotImplementedError")
    except NameError as error:
        return Check(exercise, points, "not run", f"{error} (run the exercise's cell first?)")
    except Exception as error:  # any failure of a student's code is a result
        line = traceback.extract_tb(error.__traceback__)[-1]
        where = f" (line {line.lineno} of the test)" if line.filename.startswith("<visible tests") else ""
        return Check(exercise, points, "fail", f"{type(error).__name__}: {error}{where}".strip())
    return Check(exercise, points, "pass")


def selfcheck(*exercises: str, notebook: str | os.PathLike | None = None) -> list[Check]:
    """Run the visible tests (of the named exercises, or all) and print a short report."""
    from IPython import get_ipython
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("selfcheck runs inside a Jupyter notebook (it uses the kernel's variables)")
    path = pathlib.Path(notebook) if notebook else find_notebook()
    tests = visible_tests(path)
    wanted = [t for t in tests if not exercises or any(t[0].startswith(e) for e in exercises)]
    if not wanted:
        raise ValueError(f"selfcheck: no test cell for {exercises} in {path.name}; "
                         f"they are: {', '.join(t[0] for t in tests)}")
    checks = [run_one(shell, *test) for test in wanted]
    width = max(len(c.exercise) for c in checks)
    print(f"Visible tests of {path.name}:")
    for c in checks:
        label = {"pass": "visible tests pass", "fail": "a visible test fails", "not run": "not attempted"}[c.status]
        print(f"  {c.exercise:<{width}}  ({c.points:g} pt)  {label}" + (f": {c.detail}" if c.detail else ""))
    print(NOTICE)
    return checks
