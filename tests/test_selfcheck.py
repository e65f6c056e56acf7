"""The in-notebook self-check: runs visible tests only, and never claims more than they show."""
import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO
from wmlib.grading.cells import visible_part
from wmlib.selfcheck import NOTICE, visible_tests

TESTS = '''assert double(2) == 4, "double(2) should be 4"
### BEGIN HIDDEN TESTS
assert double(-3) == -6, "hidden: negative numbers"
### END HIDDEN TESTS
print("visible tests passed (the grader also runs hidden tests)")
'''


def graded(source, grade_id, solution=False, grade=False, points=0):
    meta = {"nbgrader": {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
                         "solution": solution, "task": False, **({"points": points} if grade else {})}}
    return nbformat.v4.new_code_cell(source, metadata=meta)


def run_selfcheck(tmp_path, answer, extra_call="selfcheck()"):
    nb = nbformat.v4.new_notebook(cells=[
        graded(answer, "ex1_double", solution=True),
        graded(TESTS, "ex1_double_tests", grade=True, points=2),
        graded("assert triple(1) == 3", "ex2_triple_tests", grade=True, points=1),
        graded(f"from wmlib.selfcheck import selfcheck\nchecks = {extra_call}\n"
               "print({c.exercise: c.status for c in checks})", "selfcheck"),
    ])
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[-1].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    return "".join(o.get("text", "") for o in outputs)


def test_a_right_answer_passes_its_visible_tests_and_the_wording_stays_modest(tmp_path):
    text = run_selfcheck(tmp_path, "def double(x):\n    return 2 * x")
    assert "ex1_double_tests  (2 pt)  visible tests pass" in text
    assert "'ex2_triple_tests': 'not run'" in text and "triple" in text
    assert NOTICE in text
    assert "correct\"" in text and "is correct" not in text.replace('"the exercise is correct"', "")


def test_hidden_tests_never_run_even_when_the_file_has_them(tmp_path):
    """Wrong on negatives only: the hidden test would fail, the self-check must not run it."""
    text = run_selfcheck(tmp_path, "def double(x):\n    return abs(2 * x)")
    assert "'ex1_double_tests': 'pass'" in text
    assert "hidden: negative numbers" not in text


def test_a_wrong_answer_is_reported_with_the_failing_assertion(tmp_path):
    text = run_selfcheck(tmp_path, "def double(x):\n    return x + 1")
    assert "'ex1_double_tests': 'fail'" in text and "double(2) should be 4" in text and "line 1" in text


def test_a_stub_is_reported_as_not_attempted(tmp_path):
    text = run_selfcheck(tmp_path, "def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    assert "'ex1_double_tests': 'not run'" in text and "not attempted" in text


def test_one_exercise_can_be_checked_alone(tmp_path):
    text = run_selfcheck(tmp_path, "def double(x):\n    return 2 * x", extra_call='selfcheck("ex1")')
    assert "{'ex1_double_tests': 'pass'}" in text


def test_hidden_regions_are_removed_from_the_visible_source():
    stripped = visible_part(TESTS)
    assert ("BEGIN HIDDEN" not in stripped and "negative numbers" not in stripped
            and 'assert double(2) == 4' in stripped and "print(" in stripped)


@pytest.mark.parametrize("tree", ["course", "solutions"])
def test_every_chapter_offers_the_self_check_on_all_its_exercises(tree):
    for path in sorted((REPO / tree).glob("[0-9]*/[0-9]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        calls = [c for c in nb.cells if c.cell_type == "code" and "selfcheck()" in c.source]
        assert len(calls) == 1, f"{path}: no self-check cell"
        assert calls[0].metadata["nbgrader"]["locked"], f"{path}: the self-check cell must be locked"
        assert len(visible_tests(path)) >= 2
        assert all("BEGIN HIDDEN" not in source for _, _, source in visible_tests(path))
