"""Real chapter-1 submissions, one per layout the grader accepts (nbgrader's folders, a loose
downloaded notebook, a zip): full marks, no flag, feedback without a hidden test."""
import shutil

import pytest

import grading_battery
from conftest import REPO
from test_grading import grade, hidden_lines

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (make setup)")
CHAPTER = grading_battery.CHAPTER


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading_chapter")
    submissions, out = root / "submissions", root / "grades"
    expected = grading_battery.write_chapter_layouts(submissions)
    result, rows = grade(submissions, out)
    return expected, rows, result, out


@pytest.mark.parametrize("student", ["ann", "fay", "gus"], ids=["folder", "loose file", "zip"])
def test_an_honest_chapter_submission_gets_full_marks_in_each_layout(graded, student):
    expected, rows, result, _ = graded
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert set(rows) == set(expected)
    assert float(rows[student]["score"]) == grading_battery.FULL, rows[student]
    assert rows[student]["flags"] == "", rows[student]


def test_chapter_feedback_shows_the_visible_tests_only(graded):
    _, _, _, out = graded
    secret = hidden_lines(REPO / "solutions" / CHAPTER / f"{CHAPTER}.ipynb")
    for html in (out / "feedback").glob("*/*.html"):
        text = html.read_text()
        assert [line for line in secret if line in text] == [], f"{html}: hidden test source in the feedback"
    ann = (out / "feedback" / "ann" / f"{CHAPTER}.html").read_text()
    assert "Hidden tests of" in ann and "passed, 4 / 4 points" in ann
