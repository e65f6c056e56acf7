"""Hand-graded answers: exported one page and one CSV per question (named or anonymised), filled CSVs
checked row by row and merged into the grades, the LMS file, the summary and the feedback pages.

A class of three of the tiny assignment of `grading_battery` with a written answer cell added."""
import copy
import csv
import json
import shutil
import subprocess
import sys

import pytest

import grading_battery as battery
from conftest import REPO
from wmlib.grading import manual, store

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup)")
GID, POINTS = battery.WRITTEN_ID, battery.WRITTEN_POINTS
ANSWERS = {"ann": "Short episodes give few transitions.",
           "ben": "<script>alert('x')</script> lengths matter"}


def grader(*args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wmlib.grading", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, header, body) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(body)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading_manual")
    course = battery.write_tiny_course(root / "course", written=True)
    base = battery.honest(course, battery.TINY)
    for student, text in ANSWERS.items():
        nb = copy.deepcopy(base)
        battery.cell_of(nb, GID).source = text
        battery.write(nb, root / "class" / student / battery.TINY / f"{battery.TINY}.ipynb")
    untouched = battery.nbformat.read(course / "course" / battery.TINY / f"{battery.TINY}.ipynb", as_version=4)
    battery.write(untouched, root / "class" / "cat" / battery.TINY / f"{battery.TINY}.ipynb")
    out = root / "grades"
    result = grader(root / "class", "--out", out, "--course", course, "--cell-timeout", 20)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root, course, out


def copy_out(graded, name):
    root, course, out = graded
    target = root / name
    shutil.copytree(out, target)
    return target


def test_each_question_is_exported_as_a_page_and_a_blank_csv(graded):
    _, _, out = graded
    page = (out / "manual" / "tiny" / f"{GID}.html").read_text()
    table = rows(out / "manual" / "tiny" / f"{GID}.csv")
    assert list(table[0]) == ["student", "assignment", "grade_id", "max_points", "points", "comment"]
    assert [(r["student"], r["grade_id"], r["max_points"], r["points"], r["comment"]) for r in table] == [
        (s, GID, f"{POINTS}", "", "") for s in ("ann", "ben", "cat")]
    assert ANSWERS["ann"] in page and "ann" in page and "cat" in page
    assert "<script>alert" not in page and "&lt;script&gt;" in page, "a student's HTML must not be rendered"
    assert battery.WRITTEN_MODEL in page, "the model answer is shown to the grader"
    assert "unchanged from the release" in page  # cat's
    summary = json.loads((out / "summary.json").read_text())["tiny"]
    assert summary["max_score"] == battery.FULL + POINTS
    assert summary["exercises"][GID]["awaiting_hand_grading"] == 3
    with open(out / "grades.csv") as f:
        ann = next(r for r in csv.DictReader(f) if r["student"] == "ann")
    assert float(ann["score"]) == battery.FULL and ann[GID] == "" and float(ann["max_score"]) == battery.FULL + POINTS
    assert "not graded yet" in (out / "feedback" / "ann" / "tiny.html").read_text()


def test_anonymised_pages_name_no_student_and_codes_are_stable(graded):
    out = copy_out(graded, "anonymous")
    for _ in range(2):
        result = grader("--collect", "--anonymise", "--out", out)
        assert result.returncode == 0, result.stderr[-3000:]
        table = rows(out / "manual" / "tiny" / f"{GID}.csv")
        codes = [r["code"] for r in table]
        key = json.loads((out / manual.KEY_FILE).read_text())["codes"]
        assert sorted(key[c] for c in codes) == ["ann", "ben", "cat"]
        if _ == 0:
            first = dict(key)
    assert key == first, "a student's code changed between runs"
    for path in (out / "manual").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not any(f">{s}<" in text or f"\n{s}," in text for s in ("ann", "ben", "cat")), path
    assert oct((out / manual.KEY_FILE).stat().st_mode & 0o777) == "0o600"
    # merge with codes
    filled = out / "filled.csv"
    write_csv(filled, list(table[0]), [[r["code"], "tiny", GID, POINTS, 1 if key[r["code"]] == "ann" else "", ""]
                                       for r in table])
    result = grader("--manual", filled, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert manual.load(out, "ann", "tiny")[GID]["points"] == 1


def test_filled_csv_is_merged_into_grades_lms_summary_and_feedback(graded):
    out = copy_out(graded, "merged")
    filled = out / "manual" / "tiny" / f"{GID}.csv"
    write_csv(filled, manual.COLUMNS, [["ann", "tiny", GID, POINTS, POINTS, ""],
                                       ["ben", "tiny", GID, POINTS, "0.5", "Say why lengths matter & to whom."],
                                       ["cat", "tiny", GID, POINTS, "", ""]])
    result = subprocess.run(["make", "-s", "grade-merge", f"MANUAL={filled}", f"OUT={out}"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "stored hand grades of 2 submissions" in result.stdout and "rebuilt 2 feedback pages" in result.stdout
    with open(out / "grades.csv") as f:
        table = {r["student"]: r for r in csv.DictReader(f)}
    assert float(table["ann"]["score"]) == battery.FULL + POINTS and table["ann"][GID] == f"{POINTS}"
    assert float(table["ben"]["score"]) == battery.FULL + 0.5 and table["cat"][GID] == ""
    lms = {r["student_id"]: r for r in rows(out / "grades_lms.csv")}
    assert float(lms["ben"]["tiny"]) == battery.FULL + 0.5
    exercise = json.loads((out / "summary.json").read_text())["tiny"]["exercises"][GID]
    assert (exercise["graded_by_hand"], exercise["awaiting_hand_grading"], exercise["mean"]) == (2, 1, 1.25)
    ben = (out / "feedback" / "ben" / "tiny.html").read_text()
    assert "0.5 / 2 points" in ben and "Say why lengths matter &amp; to whom." in ben
    assert "not graded yet" in (out / "feedback" / "cat" / "tiny.html").read_text()
    assert not list(out.rglob("*.tmp"))
    # exporting again keeps the filled values
    assert grader("--collect", "--out", out).returncode == 0
    again = {r["student"]: r["points"] for r in rows(filled)}
    assert again == {"ann": f"{POINTS}", "ben": "0.5", "cat": ""}
    # a regraded submission keeps its hand grade in its new feedback page
    result = grader(out.parent / "class", "--out", out, "--course", out.parent / "course", "--cell-timeout", 20,
                    "--regrade")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "0.5 / 2 points" in (out / "feedback" / "ben" / "tiny.html").read_text()


@pytest.mark.parametrize("row, message", [
    (["ann", "tiny", GID, POINTS, "3", ""], "points '3' is outside 0..2"),
    (["ann", "tiny", GID, POINTS, "-1", ""], "points '-1' is outside 0..2"),
    (["ann", "tiny", GID, POINTS, "lots", ""], "points 'lots' is not a number"),
    (["zed", "tiny", GID, POINTS, "1", ""], "student 'zed' has no graded submission of assignment 'tiny'"),
    (["ann", "tiny", "ex9_answer", POINTS, "1", ""], "grade_id 'ex9_answer' is not a hand-graded cell of tiny"),
    (["ann", "other", GID, POINTS, "1", ""],
     "student 'ann' has no graded submission of assignment 'other' (graded: tiny)"),
    (["ann", "tiny", GID, 5, "1", ""], "max_points '5', but ex5_answer is worth 2"),
], ids=["above", "negative", "text", "student", "cell", "assignment", "max"])
def test_a_bad_row_is_refused_by_file_row_and_value_and_nothing_is_stored(graded, tmp_path, row, message):
    _, _, out = graded
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    write_csv(good, manual.COLUMNS, [["ben", "tiny", GID, POINTS, "1", ""]])
    write_csv(bad, manual.COLUMNS, [["cat", "tiny", GID, POINTS, "", ""], row])
    result = grader("--manual", good, bad, "--out", out)
    assert result.returncode != 0
    assert f"{bad}, row 3: {message}" in result.stderr, result.stderr[-2000:]
    assert manual.load(out, "ben", "tiny") == {}, "a refused merge stored something"


def test_a_file_without_the_columns_is_refused(graded, tmp_path):
    _, _, out = graded
    bad = tmp_path / "bad.csv"
    write_csv(bad, ["student", "points"], [["ann", "1"]])
    with pytest.raises(ValueError, match=r"bad.csv, row 1: the header lacks assignment, grade_id"):
        manual.read_filled([bad], out)
    assert store.load_all(out)[0]["written"][GID]["points"] == POINTS
