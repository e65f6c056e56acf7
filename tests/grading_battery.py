"""Submissions for the grader's tests: honest ones, and known ways to beat a naive autograder.

The hostile cases are graded against a tiny synthetic assignment, ``tiny``, with the shape of
chapter 1 (a locked set-up cell tagged "setup", four exercises worth 4, 3, 2 and 3 points with
visible and hidden tests, a self-check cell). nbgrader itself releases it into a temporary course
folder, so a submission takes seconds. Each case starts from the honest answers and applies one
attack. ``expected`` is the score the grader must give and ``flag`` a phrase its integrity report
must contain. ``write_chapter_layouts`` builds real chapter-1 submissions, one per accepted layout.
"""
from __future__ import annotations

import copy
import dataclasses
import pathlib
import re
import subprocess
import sys
import zipfile

import nbformat

from conftest import REPO
from wmlib.grading import cells

TINY = "tiny"
CHAPTER = "01_episodes"
POINTS = {"ex1_validator_tests": 4, "ex2_transitions_tests": 3, "ex3_wam_tests": 2, "ex4_pyramid_tests": 3}
FULL = sum(POINTS.values())
NBGRADER = pathlib.Path(sys.executable).parent / "nbgrader"

SETUP = """import numpy as np
from wmlib.grading.checks import same, same_array


class Episode:
    def __init__(self, n, offset):
        self.steps = {"observation/state": offset + np.arange(2 * n, dtype=np.float32).reshape(n, 2),
                      "action": offset + np.arange(n, dtype=np.float32)[:, None],
                      "reward": np.zeros(n, np.float32), "is_first": np.arange(n) == 0,
                      "is_last": np.arange(n) == n - 1}


push = [Episode(n, 10 * i) for i, n in enumerate((3, 4, 5, 2))]
print(len(push), "episodes")"""

EX1 = """REQUIRED = ("observation/state", "action", "reward", "is_first", "is_last")


def find_problem(steps, action_low, action_high):
    \"\"\"The first problem as (field, kind), or None.\"\"\"
    ### BEGIN SOLUTION
    for name in REQUIRED:
        if name not in steps:
            return (name, "missing")
    if not steps["is_first"][0]:
        return ("is_first", "is_first")
    if ((steps["action"][:-1] < action_low) | (steps["action"][:-1] > action_high)).any():
        return ("action", "range")
    return None
    ### END SOLUTION"""

EX1_TESTS = """clean = push[0].steps
same(find_problem(clean, -50, 50), None)
same(find_problem({k: v for k, v in clean.items() if k != "reward"}, -50, 50), ("reward", "missing"))
print("visible tests passed")
### BEGIN HIDDEN TESTS
late = dict(clean, is_first=np.zeros(3, bool))
same(find_problem(late, -50, 50), ("is_first", "is_first"))
same(find_problem(clean, -50, 0.5), ("action", "range"))  # the secret range check
### END HIDDEN TESTS"""

EX2 = """def make_transitions(episodes, key="observation/state"):
    \"\"\"(obs, act, next_obs) within each episode.\"\"\"
    ### BEGIN SOLUTION
    obs = [e.steps[key][:-1] for e in episodes]
    act = [e.steps["action"][:-1] for e in episodes]
    nxt = [e.steps[key][1:] for e in episodes]
    return np.concatenate(obs), np.concatenate(act), np.concatenate(nxt)
    ### END SOLUTION"""

EX2_TESTS = """obs, act, nxt = make_transitions(push[:1])
same_array(nxt, push[0].steps["observation/state"][1:])
print("visible tests passed")
### BEGIN HIDDEN TESTS
obs, act, nxt = make_transitions(push[1:3])
both = [push[1].steps, push[2].steps]
same_array(obs, np.concatenate([s["observation/state"][:-1] for s in both]))
import numpy.testing
numpy.testing.assert_array_equal(act, np.concatenate([s["action"][:-1] for s in both]))
### END HIDDEN TESTS"""

EX3 = """def next_actions(episode):
    \"\"\"Each real action with the one after it: (a_t, a_t+1), t = 0 .. T-2.\"\"\"
    ### BEGIN SOLUTION
    actions = episode.steps["action"][:-1]
    return actions[:-1], actions[1:]
    ### END SOLUTION"""

EX3_TESTS = """now, then = next_actions(push[1])
same_array(now, push[1].steps["action"][:2])
print("visible tests passed")
### BEGIN HIDDEN TESTS
now, then = next_actions(push[2])
same_array(then, push[2].steps["action"][1:4])
### END HIDDEN TESTS"""

EX4 = """def length_table(episodes):
    \"\"\"number of actions -> number of episodes.\"\"\"
    ### BEGIN SOLUTION
    table = {}
    for e in episodes:
        n = len(e.steps["action"]) - 1
        table[n] = table.get(n, 0) + 1
    return table
    ### END SOLUTION"""

EX4_TESTS = """same(length_table(push), {2: 1, 3: 1, 4: 1, 1: 1})
print("visible tests passed")
### BEGIN HIDDEN TESTS
same(length_table(push[:2] * 2), {2: 2, 3: 2})
### END HIDDEN TESTS"""

TINY_CELLS = [  # (grade_id, kind, source, points)
    ("setup", "locked", SETUP, 0),
    ("ex1_validator", "answer", EX1, 0), ("ex1_validator_tests", "test", EX1_TESTS, 4),
    ("ex2_transitions", "answer", EX2, 0), ("ex2_transitions_tests", "test", EX2_TESTS, 3),
    ("ex3_wam", "answer", EX3, 0), ("ex3_wam_tests", "test", EX3_TESTS, 2),
    ("ex4_pyramid", "answer", EX4, 0), ("ex4_pyramid_tests", "test", EX4_TESTS, 3),
    ("selfcheck", "locked", "from wmlib.selfcheck import selfcheck\nselfcheck()", 0),
]


def tiny_cell(gid, kind, source, points):
    meta = {"grade": kind == "test", "grade_id": gid, "locked": kind != "answer", "schema_version": 3,
            "solution": kind == "answer", "task": False, **({"points": points} if kind == "test" else {})}
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta, "tags": ["setup"] if gid == "setup" else []})


WRITTEN_ID, WRITTEN_POINTS = "ex5_answer", 2
WRITTEN_MODEL = "Lengths tell you how much of each episode a model may learn from, and where it stops."


def written_cell():
    """A hand-graded answer cell (markdown, graded and a solution), worth WRITTEN_POINTS."""
    meta = {"grade": True, "grade_id": WRITTEN_ID, "locked": False, "points": WRITTEN_POINTS, "schema_version": 3,
            "solution": True, "task": False}
    return nbformat.v4.new_markdown_cell(WRITTEN_MODEL, metadata={"nbgrader": meta})


def write_tiny_course(root: pathlib.Path, written: bool = False) -> pathlib.Path:
    """root/solutions/tiny/tiny.ipynb, and its release root/course/tiny/tiny.ipynb made by nbgrader;
    with written, a hand-graded answer cell (``written_cell``) before the self-check."""
    specs = [tiny_cell(*spec) for spec in TINY_CELLS]
    if written:
        specs.insert(-1, written_cell())
    nb = nbformat.v4.new_notebook(cells=specs, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    write(nb, root / "solutions" / TINY / f"{TINY}.ipynb")
    subprocess.run([str(NBGRADER), "generate_assignment", TINY, "--force", "--no-db",
                    f"--CourseDirectory.root={root}", "--CourseDirectory.source_directory=solutions",
                    "--CourseDirectory.release_directory=course", "--log-level=ERROR"],
                   cwd=root, check=True, capture_output=True)
    return root


def honest(course: pathlib.Path = REPO, assignment: str = CHAPTER) -> nbformat.NotebookNode:
    """The released notebook with the instructors' answers typed in, as an honest student would."""
    source = nbformat.read(course / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    student = nbformat.read(course / "course" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {cells.grade_id(c): c.source for c in source.cells if cells.kind(c) in ("answer", "written")}
    for cell in student.cells:
        if cells.grade_id(cell) in answers:
            cell.source = re.sub(r"^[ \t]*### (BEGIN|END) SOLUTION\n", "", answers[cells.grade_id(cell)], flags=re.M)
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
            "import os, time\nfor _ in range(100000):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        break\n"
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
        Case("deleted_answer", 9, "deleted cell ex2_transitions", lambda nb: nb.cells.remove(
            cell_of(nb, "ex2_transitions"))),
        Case("forged_checksum", FULL, "edited locked cell", forge_checksum),
        Case("reads_solutions", 8, None, lambda nb: cell_of(nb, "ex1_validator").__setitem__("source", (
            "import json, glob\nREQUIRED = ('observation/state', 'action', 'reward', 'is_first', 'is_last')\n"
            "found = [p for root in ('/work', '/root', '/home', '/tmp', '/srv')\n"
            "         for pattern in ('/**/solutions/**/*.ipynb', '/**/grades.csv', '/**/gradebook*')\n"
            "         for p in glob.glob(root + pattern, recursive=True)]\n"
            "print('found', found)\n"
            "for path in found:\n    exec(open(path).read())\n"
            "def find_problem(steps, action_low, action_high):\n    return None"))),
        Case("writes_gradebook", FULL, None, lambda nb: add_after(nb, "ex1_validator", (
            "import pathlib\nfor target in [%r, %r]:\n    try:\n"
            "        pathlib.Path(target).write_text('mallory,01_episodes,999')\n"
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


def write(nb, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def write_battery(folder, course: pathlib.Path, grades_dir: str, port: int,
                  honest_students=("ann", "ben", "cat", "dan", "eve")) -> dict:
    """Every case of the tiny assignment in nbgrader's layout, the honest ones too, plus the two
    downloaded-file layouts and an unreadable file. Returns student -> (score, flag)."""
    cases = attack_cases(grades_dir, port)
    base = honest(course, TINY)
    for case in cases:
        nb = copy.deepcopy(base)
        case.build(nb)
        write(nb, folder / case.student / TINY / f"{TINY}.ipynb")
    for student in honest_students:
        write(copy.deepcopy(base), folder / student / TINY / f"{TINY}.ipynb")
    write_downloads(folder, base, TINY)
    (folder / f"hal_{TINY}.ipynb").write_text("{ this is not json")
    expected = {c.student: (c.expected, c.flag) for c in cases}
    expected.update({s: (FULL, None) for s in (*honest_students, "fay", "gus")})
    expected["hal"] = (0, "unreadable notebook")
    return expected


def write_downloads(folder, nb, assignment: str) -> None:
    """Downloaded files: a loose notebook (fay) and a zip (gus), student id before the first "_"."""
    write(copy.deepcopy(nb), folder / f"fay_attempt2_{assignment}.ipynb")
    with zipfile.ZipFile(folder / f"gus_{assignment}.zip", "w") as archive:
        archive.writestr(f"{assignment}.ipynb", nbformat.writes(copy.deepcopy(nb)))


def write_chapter_layouts(folder) -> dict:
    """One honest chapter-1 submission per accepted layout: folder (ann), loose file (fay), zip (gus)."""
    base = honest(REPO, CHAPTER)
    write(copy.deepcopy(base), folder / "ann" / CHAPTER / f"{CHAPTER}.ipynb")
    write_downloads(folder, base, CHAPTER)
    return {student: (FULL, None) for student in ("ann", "fay", "gus")}
