"""Grading a whole class: parallel kernels, results stored as they are graded (a killed grader resumes
without losing or repeating work), shards merged into one gradebook, the LMS file and the summary.

A small class of the tiny assignment of `grading_battery` (seconds a submission): two honest
students, one wrong answer, one untouched notebook, one edited test cell, one deleted answer cell."""
import copy
import csv
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import grading_battery as battery
from conftest import REPO
from wmlib.grading import pool, reports, shard, store

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup)")
STUDENTS = {"ann": 12, "ben": 12, "cat": 9, "dan": 0, "eve": 8, "fay": 9}


def grader(*args, timeout=600) -> subprocess.CompletedProcess:
    """`python -m wmlib.grading ARGS` as `make grade` runs it."""
    return subprocess.run([sys.executable, "-m", "wmlib.grading", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def graded_count(result: subprocess.CompletedProcess) -> int:
    """How many submissions a run says it graded."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return int(re.search(r"graded (\d+) submissions in this run", result.stdout).group(1))


def grades(out: pathlib.Path) -> list[dict]:
    """grades.csv's rows without the time each took (the one column that differs between runs)."""
    with open(out / "grades.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def stored(out: pathlib.Path) -> dict[str, str]:
    """results/<student>/<assignment>.json -> its text."""
    return {p.relative_to(out).as_posix(): p.read_text() for p in sorted((out / "results").glob("*/*.json"))}


def write_class(folder: pathlib.Path, course: pathlib.Path) -> None:
    base = battery.honest(course, battery.TINY)
    untouched = battery.nbformat.read(course / "course" / battery.TINY / f"{battery.TINY}.ipynb", as_version=4)
    cases = {c.student: c for c in battery.attack_cases("", 0)}
    notebooks = {"ann": base, "ben": base, "dan": untouched}
    notebooks["cat"] = copy.deepcopy(base)
    battery.cell_of(notebooks["cat"], "ex2_transitions").source = battery.WRONG_TRANSITIONS
    for student, case in (("eve", "edited_test"), ("fay", "deleted_answer")):
        notebooks[student] = copy.deepcopy(base)
        cases[case].build(notebooks[student])
    for student, nb in notebooks.items():
        battery.write(copy.deepcopy(nb), folder / student / battery.TINY / f"{battery.TINY}.ipynb")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading_class")
    course = battery.write_tiny_course(root / "course")
    write_class(root / "class", course)
    return root


@pytest.fixture(scope="module")
def whole(course):
    """The class graded in one uninterrupted run on two kernels at once."""
    out = course / "whole"
    result = grader(course / "class", "--out", out, "--course", course / "course", "--jobs", 2, "--cell-timeout", 20)
    assert graded_count(result) == len(STUDENTS)
    return out


def test_every_grade_is_right_on_two_jobs(whole):
    rows = {row["student"]: row for row in grades(whole)}
    assert {s: float(row["score"]) for s, row in rows.items()} == STUDENTS
    assert "edited test cell ex1_validator_tests" in rows["eve"]["flags"]
    assert "deleted cell ex2_transitions" in rows["fay"]["flags"]
    for student in STUDENTS:
        record = json.loads((whole / "results" / student / "tiny.json").read_text())
        assert (whole / record["feedback"]).is_file()
        notebook = whole.parent / "class" / student / "tiny" / "tiny.ipynb"
        assert record["submission_sha256"] == store.sha256_file(notebook)
    assert not list(whole.rglob("*.tmp")), "a temporary file was left behind"


def test_a_killed_grader_resumes_without_losing_or_repeating_work(course, whole):
    out = course / "killed"
    command = [sys.executable, "-m", "wmlib.grading", course / "class", "--out", out, "--course", course / "course",
               "--jobs", "2", "--cell-timeout", "20"]
    process = subprocess.Popen(list(map(str, command)), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((out / "results").glob("*/*.json")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = [int(p.name) for p in pathlib.Path("/proc").iterdir() if p.name.isdigit()
               and _parent(p) == process.pid]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert workers, "the grader had started no worker processes"
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the killed grader"
    before = stored(out)
    assert 1 <= len(before) < len(STUDENTS), f"the kill came too late to test anything: {sorted(before)}"

    again = grader(course / "class", "--out", out, "--course", course / "course", "--jobs", 2, "--cell-timeout", 20)
    assert graded_count(again) == len(STUDENTS) - len(before), "a result stored before the kill was graded again"
    after = stored(out)
    assert {k: after[k] for k in before} == before, "a stored result was rewritten"
    assert grades(out) == grades(whole)


def _parent(proc: pathlib.Path) -> int | None:
    try:
        return int(next(line.split()[1] for line in (proc / "status").read_text().splitlines()
                        if line.startswith("PPid:")))
    except (OSError, StopIteration):
        return None


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_only_a_changed_submission_is_graded_again_and_regrade_grades_all(course, whole):
    submissions, out = course / "class_changed", course / "rerun"
    shutil.copytree(course / "class", submissions)
    shutil.copytree(whole, out)
    same = ("--out", out, "--course", course / "course", "--cell-timeout", 20)  # the limits are part of a grade
    assert graded_count(grader(submissions, *same)) == 0
    battery.write(battery.honest(course / "course", battery.TINY), submissions / "cat" / "tiny" / "tiny.ipynb")
    before = stored(out)
    result = grader(submissions, *same)
    assert graded_count(result) == 1 and "1 changed" in result.stdout
    after = stored(out)
    assert [k for k in before if after[k] != before[k]] == ["results/cat/tiny.json"]
    assert {row["student"]: float(row["score"]) for row in grades(out)}["cat"] == 12
    assert graded_count(grader(submissions, *same, "--regrade", "--jobs", 2)) == len(STUDENTS)
    result = grader(submissions, "--out", out, "--course", course / "course", "--cell-timeout", 30, "--jobs", 2)
    assert graded_count(result) == len(STUDENTS) and f"{len(STUDENTS)} graded under other" in result.stdout


def test_two_shards_merged_give_the_same_gradebook_as_one_run(course, whole):
    shards = [course / f"shard{k}" for k in range(2)]
    counts = [graded_count(grader(course / "class", "--out", out, "--course", course / "course", "--shard", f"{k}/2",
                                  "--cell-timeout", 20)) for k, out in enumerate(shards)]
    assert sum(counts) == len(STUDENTS) and all(counts), f"shares of {counts}: a shard was empty"
    merged = course / "merged"
    for _ in range(2):  # merging again changes nothing
        result = grader("--merge", *shards, "--out", merged)
        assert result.returncode == 0, result.stderr[-3000:]
        assert grades(merged) == grades(whole)
    assert sorted(p.relative_to(merged) for p in (merged / "feedback").rglob("*.html")) == \
        sorted(p.relative_to(whole) for p in (whole / "feedback").rglob("*.html"))


def test_collect_rebuilds_the_reports_and_grades_nothing(course, whole):
    out = course / "collected"
    shutil.copytree(whole / "results", out / "results")
    shutil.copytree(whole / "feedback", out / "feedback")
    result = grader("--collect", "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"graded \d+", result.stdout) is None
    assert grades(out) == grades(whole)
    assert (out / "grades_lms.csv").read_text() == (whole / "grades_lms.csv").read_text()


def test_lms_file_and_summary_have_the_documented_columns(whole):
    with open(whole / "grades_lms.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["student_id", "tiny", "total"]
    assert {r["student_id"]: float(r["tiny"]) for r in rows} == STUDENTS
    summary = json.loads((whole / "summary.json").read_text())["tiny"]
    assert set(summary) == {"submissions", "max_score", "flagged", "not_attempted", "total", "grading_sources",
                            "exercises"}
    assert (summary["submissions"], summary["max_score"], summary["flagged"], summary["not_attempted"]) == (6, 12, 2, 1)
    assert set(summary["total"]) == {"mean", "min", "max", "histogram"}
    assert sum(summary["total"]["histogram"].values()) == 6
    exercise = summary["exercises"]["ex2_transitions_tests"]
    assert set(exercise) == {"points", "mean", "min", "max", "histogram", "passed", "failed", "not_run", "flagged",
                             "not_attempted"}
    assert (exercise["passed"], exercise["failed"], exercise["not_attempted"], exercise["flagged"]) == (3, 3, 2, 1)
    assert summary["exercises"]["ex1_validator_tests"]["flagged"] == 1  # eve's edited test cell
    text = (whole / "summary.txt").read_text()
    assert "ex2_transitions_tests" in text and "not attempted" in text


def test_too_many_jobs_for_the_memory_are_refused(course):
    result = grader(course / "class", "--out", course / "refused", "--course", course / "course",
                    "--jobs", 100000, "--memory-gb", 4)
    assert result.returncode != 0
    assert "JOBS=100000" in result.stderr and "4.0 GiB" in result.stderr and "GiB available" in result.stderr
    assert not (course / "refused").exists()
    with pytest.raises(ValueError, match=r"JOBS=3 needs 3 x 4.0 GiB = 12.0 GiB .* 10.0 GiB available: use JOBS=2"):
        pool.check_jobs(3, 4 << 30, available=10 << 30, as_root=True)
    pool.check_jobs(2, 4 << 30, available=10 << 30, as_root=True)
    pool.check_jobs(1, 4 << 30, available=1 << 30, as_root=False)  # one kernel is always allowed
    with pytest.raises(ValueError, match="JOBS=2 needs root"):
        pool.check_jobs(2, 4 << 30, available=10 << 30, as_root=False)


def test_shares_are_deterministic_and_cover_the_class():
    keys = [(f"s{i}", a) for i in range(200) for a in ("01_episodes", "tiny")]
    shares = [shard.share_of(s, a, 4) for s, a in keys]
    assert shares == [shard.share_of(s, a, 4) for s, a in keys]
    assert all(shares.count(k) > 50 for k in range(4))
    assert shard.parse("3/4") == (3, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(ValueError, match="--shard"):
            shard.parse(bad)


def test_a_merge_refuses_shards_that_disagree(course, whole, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(whole, other)
    record = json.loads((other / "results" / "ann" / "tiny.json").read_text())
    record["grading_sha256"] = "0" * 64
    store.save(other, record)
    with pytest.raises(ValueError, match="ann/tiny was graded differently"):
        reports.merge(tmp_path / "merged", [whole, other])
    with pytest.raises(ValueError, match="no results/"):
        reports.merge(tmp_path / "merged", [tmp_path / "nothing"])


def test_a_student_id_that_cannot_name_a_file_is_refused_by_name(tmp_path):
    for fine in ("ann", "John Doe", "a.b@uni.edu", "José"):
        assert store.result_path(tmp_path, fine, "tiny") == tmp_path / "results" / fine / "tiny.json"
    for bad in ("..", ".hidden", "a\\b", "a\x01"):
        with pytest.raises(ValueError, match=f"student id {re.escape(repr(bad))}"):
            store.result_path(tmp_path, bad, "tiny")
