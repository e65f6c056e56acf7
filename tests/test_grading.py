"""`make grade` on a class of honest and hostile submissions: every grade right, the gradebook intact,
with two kernels at once (as root), so that no attack reaches the submission graded beside it.

The hostile cases are graded against the tiny synthetic assignment of `grading_battery` (seconds
a submission); `test_grading_chapter.py` grades real chapter-1 submissions, one per layout."""
import csv
import os
import shutil
import socket
import subprocess
import sys
import threading

import nbformat
import pytest

import grading_battery
from conftest import REPO
from wmlib.grading import cells
from wmlib.grading.checks import same, same_array

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup)")


def grade(submissions, out, course=REPO, cell_timeout=40, timeout=1500, jobs=1):
    """Run `python -m wmlib.grading` as `make grade` does; returns (process, student -> csv row)."""
    result = subprocess.run([sys.executable, "-m", "wmlib.grading", str(submissions), "--out", str(out),
                             "--cell-timeout", str(cell_timeout), "--course", str(course), "--jobs", str(jobs)],
                            cwd=REPO, capture_output=True, text=True, timeout=timeout)
    rows = {}
    if (out / "grades.csv").exists():
        with open(out / "grades.csv") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
    return result, rows


def hidden_lines(source_notebook) -> list[str]:
    source = nbformat.read(source_notebook, as_version=4)
    return [line.strip() for cell in source.cells if cells.kind(cell) == "test"
            for line in cells.hidden_part(cell.source).splitlines() if len(line.strip()) > 20]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    course = grading_battery.write_tiny_course(root / "course")
    submissions, out = root / "submissions", root / "grades"
    submissions.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    connections = []

    def accept():
        while listener.fileno() != -1:
            try:
                connections.append(listener.accept())
            except OSError:
                if listener.fileno() == -1:
                    return
    threading.Thread(target=accept, daemon=True).start()
    expected = grading_battery.write_battery(submissions, course, str(out), listener.getsockname()[1])
    # two kernels at once where the grader may run them (as root): each attack runs beside another submission
    # a cell limit with room for a loaded machine: the memory bomb must fail on its limit, not on the clock
    result, rows = grade(submissions, out, course=course, cell_timeout=30, jobs=2 if os.geteuid() == 0 else 1)
    listener.close()
    return expected, rows, result, out, connections, course


def test_grading_finishes_and_reports(graded):
    expected, rows, result, out, _, _ = graded
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(rows) == set(expected), f"missing or extra rows: {set(rows) ^ set(expected)}"
    assert "wrote" in result.stdout and "score" in result.stdout


@pytest.mark.parametrize("student", sorted(grading_battery.attack_cases("", 0), key=lambda c: c.student),
                         ids=lambda c: c.student)
def test_each_attack_gets_the_right_grade(graded, student):
    expected, rows, _, _, _, _ = graded
    score, flag = expected[student.student]
    row = rows[student.student]
    assert float(row["score"]) == score, f"{student.student}: {row}"
    if flag:
        assert flag in row["flags"], f"{student.student}: flags were {row['flags']!r}"


def test_every_honest_submission_gets_full_marks_in_every_layout(graded):
    expected, rows, _, _, _, _ = graded
    for name in ("ann", "ben", "cat", "dan", "eve", "fay", "gus"):
        assert float(rows[name]["score"]) == grading_battery.FULL, rows[name]
        assert rows[name]["flags"] == "", rows[name]


def test_unreadable_notebook_gets_zero_and_grading_goes_on(graded):
    _, rows, _, _, _, _ = graded
    assert float(rows["hal"]["score"]) == 0 and "unreadable notebook" in rows["hal"]["flags"]


def test_gradebook_and_course_are_intact(graded):
    _, rows, _, out, connections, _ = graded
    assert "mallory" not in (out / "grades.csv").read_text()
    assert not (REPO / "wmlib" / "pwned.txt").exists()
    assert connections == [], "student code reached a server on the grading machine"


@pytest.mark.skipif(os.geteuid() != 0, reason="as a normal user the sandbox shares the user's id")
def test_no_student_process_outlives_grading(graded):
    from wmlib.grading.sandbox import SANDBOX_UIDS

    users = ",".join(map(str, SANDBOX_UIDS))
    survivors = subprocess.run(["pgrep", "-U", users], capture_output=True, text=True).stdout
    assert survivors.strip() == ""


def test_each_grading_process_claims_its_own_sandbox_user():
    """Two graders on one machine must not end each other's kernels: each holds its own user id."""
    code = "from wmlib.grading.sandbox import sandbox_uid; print(sandbox_uid(), flush=True); input()"
    first = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        held = int(first.stdout.readline())
        second = subprocess.run([sys.executable, "-c", code], cwd=REPO, input="\n", capture_output=True, text=True)
        assert second.returncode == 0, second.stderr[-2000:]
        assert int(second.stdout.split()[0]) != held
    finally:
        first.communicate("\n", timeout=30)
    again = subprocess.run([sys.executable, "-c", code], cwd=REPO, input="\n", capture_output=True, text=True)
    assert int(again.stdout.split()[0]) == held, "a finished grader's user id is free again"


def test_feedback_shows_visible_tests_but_never_hidden_ones(graded):
    _, _, _, out, _, course = graded
    secret = hidden_lines(course / "solutions" / grading_battery.TINY / "tiny.ipynb")
    assert len(secret) >= 4
    for html in (out / "feedback").glob("*/*.html"):
        text = html.read_text()
        leaks = [line for line in secret if line in text]
        assert leaks == [], f"{html}: hidden test source in the feedback: {leaks[:2]}"
        assert html.stat().st_size < 3 << 20, f"{html} is {html.stat().st_size} bytes: output not truncated"
    ann = (out / "feedback" / "ann" / "tiny.html").read_text()
    assert "Hidden tests of" in ann and "passed, 4 / 4 points" in ann
    loop = (out / "feedback" / "loop" / "tiny.html").read_text()
    assert "not run" in loop
    # the instructors' solution never shows in a wrong submission's feedback
    wrong = (out / "feedback" / "deleted_test" / "tiny.html").read_text()
    assert "return np.concatenate(obs), np.concatenate(act), np.concatenate(nxt)" not in wrong


def test_strict_checks_refuse_lookalikes():
    class Yes(tuple):
        def __eq__(self, other):
            return True
        __hash__ = tuple.__hash__

    with pytest.raises(AssertionError):
        same(Yes(), (1, "a"))
    with pytest.raises(AssertionError):
        same((1, "a", Yes()), (1, "a", None))
    import numpy as np

    with pytest.raises(AssertionError):
        same_array(np.array([Yes()], dtype=object), np.array([1.0]))
    same((np.int64(2), "x", None), (2, "x", None))
    same({"a": 0.5, "b": [1, 2]}, {"a": 0.5, "b": [1, 2]})
