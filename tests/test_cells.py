"""One rule for cell kinds and hidden regions: the release (nbgrader), the grader, the self-check
and the book all hide exactly the same lines."""
import copy

import nbformat
import pytest
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from wmlib.grading import cells, grader
from wmlib.selfcheck import visible_tests

TRICKY = {
    "plain markers": "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(-1) == -2\n### END HIDDEN TESTS\nprint('ok')",
    "text after the marker": "assert f(1) == 2\n### BEGIN HIDDEN TESTS: edge cases\nassert f(0) == 0\n"
                             "### END HIDDEN TESTS (edge cases)\nprint('ok')",
    "indented, no ###": "for x in (1, 2):\n    assert f(x) == 2 * x\n    # BEGIN HIDDEN TESTS\n"
                        "    assert f(-x) == -2 * x\n"
                        "    # END HIDDEN TESTS",
    "two regions": "a = 1\n### BEGIN HIDDEN TESTS\nassert a\n### END HIDDEN TESTS\nb = 2\n### BEGIN HIDDEN TESTS\n"
                   "assert b\n### END HIDDEN TESTS",
    "marker at the end of the cell": "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(5) == 10\n"
                                     "### END HIDDEN TESTS",
    "no hidden region": "assert f(1) == 2",
}


def graded_cell(text, gid="ex1_tests", solution=False, grade=True, points=2, cell_type="code"):
    meta = {"nbgrader": {"grade": grade, "grade_id": gid, "locked": not solution, "schema_version": 3,
                         "solution": solution, "task": False, **({"points": points} if grade else {})}}
    make = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    return make(text, metadata=meta)


def released(cell):
    """What `make release` (nbgrader's own preprocessor) leaves of a test cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(cell)])
    nb, _ = ClearHiddenTests(enforce_metadata=True).preprocess(nb, {})
    return nb.cells[0].source


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_visible_part_is_exactly_what_nbgrader_releases(case):
    cell = graded_cell(TRICKY[case])
    assert cells.visible_part(cell.source) == released(cell), \
        f"{case}: the visible part differs from nbgrader's release of the same cell"
    assert grader.visible_part(cell.source) == released(cell)


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_hidden_and_visible_parts_together_are_the_cell_without_its_markers(case):
    text = TRICKY[case]
    visible, hidden = cells.visible_part(text), cells.hidden_part(text)
    kept = [line for line in text.split("\n") if "HIDDEN TESTS" not in line]
    assert sorted(visible.split("\n") + (hidden.split("\n") if hidden else [])) == sorted(kept)
    assert "HIDDEN TESTS" not in visible + hidden


def test_a_marker_with_text_after_it_still_hides_its_region():
    text = TRICKY["text after the marker"]
    assert "assert f(0) == 0" not in cells.visible_part(text)
    assert cells.hidden_part(text) == "assert f(0) == 0"


def test_the_self_check_and_the_grader_see_the_same_visible_tests(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[graded_cell(text, gid=f"ex{i}_tests")
                                         for i, text in enumerate(TRICKY.values())])
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nb, path)
    seen = {gid: source for gid, _, source in visible_tests(path)}
    for cell in nb.cells:
        assert seen[cell.metadata.nbgrader.grade_id] == released(cell) == grader.visible_part(cell.source)


@pytest.mark.parametrize("text, message", [
    ("### BEGIN HIDDEN TESTS\nassert x", "never closed"),
    ("### BEGIN HIDDEN TESTS\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS", "already open"),
])
def test_a_broken_region_is_an_error_naming_the_cell_as_in_nbgrader(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        cells.visible_part(text, where="test cell ex9_tests")
    assert "ex9_tests" in str(caught.value)
    with pytest.raises(RuntimeError):
        released(graded_cell(text))


def test_kinds_follow_the_nbgrader_metadata():
    assert cells.kind(graded_cell("x = 1", solution=True, grade=False)) == "answer"
    assert cells.kind(graded_cell("An answer.", solution=True, grade=True, cell_type="markdown")) == "written"
    assert cells.kind(graded_cell("assert x")) == "test"
    assert cells.kind(graded_cell("import numpy", grade=False)) == "locked"
    assert cells.kind(nbformat.v4.new_code_cell("print(1)")) == "plain"
    assert cells.kind({"cell_type": "code", "metadata": {}, "source": ["x"]}) == "plain"   # a raw JSON cell
    assert cells.points(graded_cell("assert x", points=3)) == 3.0
    assert cells.points(graded_cell("x = 1", solution=True, grade=False)) == 0.0


def test_secret_lines_are_the_lines_the_release_removes():
    code = graded_cell("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
                       solution=True, grade=False)
    whole = graded_cell("def f(x):\n    return 2 * x", solution=True, grade=False)
    written = graded_cell("Because the model drifts.", solution=True, grade=True, cell_type="markdown")
    test = graded_cell(TRICKY["plain markers"])
    assert [s.strip() for s in cells.secret_lines(code)] == ["return 2 * x"]
    assert cells.secret_lines(whole) == ["def f(x):", "    return 2 * x"]
    assert cells.secret_lines(written) == ["Because the model drifts."]
    assert cells.secret_lines(test) == ["assert f(-1) == -2"]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = nbformat.v4.new_notebook(cells=[copy.deepcopy(c) for c in (code, whole, written, test)],
                                  metadata={"kernelspec": kernel})
    nb, _ = ClearSolutions(enforce_metadata=True).preprocess(nb, {"language": "python"})
    nb, _ = ClearHiddenTests(enforce_metadata=True).preprocess(nb, {})
    student = "\n".join(c.source for c in nb.cells)
    for cell in (code, whole, written, test):
        for line in cells.secret_lines(cell):
            if line.strip() and line.strip() != "def f(x):":
                assert line.strip() not in student, f"{line!r} is still in the released notebook"
