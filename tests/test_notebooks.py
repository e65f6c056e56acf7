"""The notebook pipeline: course/ is exactly what nbgrader makes of solutions/, student copies
leak nothing and stop at the first exercise for the right reason, and hidden tests catch
plausible wrong answers that the visible tests let through."""
import filecmp
import pathlib
import runpy
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

SOLUTIONS = REPO / "solutions"
COURSE = REPO / "course"
CHAPTERS = sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))
NBGRADER = pathlib.Path(sys.executable).parent / "nbgrader"


def release(solutions: pathlib.Path, out_root: pathlib.Path) -> pathlib.Path:
    """Run nbgrader generate_assignment for every chapter of `solutions` into out_root/course."""
    shutil.copytree(solutions, out_root / "solutions")
    for chapter in sorted(p.name for p in solutions.iterdir() if p.is_dir()):
        subprocess.run([str(NBGRADER), "generate_assignment", chapter, "--force", "--no-db",
                        f"--CourseDirectory.root={out_root}", "--CourseDirectory.source_directory=solutions",
                        "--CourseDirectory.release_directory=course", "--log-level=ERROR"],
                       cwd=out_root, check=True, capture_output=True)
    return out_root / "course"


def differences(expected: pathlib.Path, actual: pathlib.Path) -> list[str]:
    """Files that differ between two course trees (ignoring the course README)."""
    found = []
    comparison = filecmp.dircmp(expected, actual, ignore=["README.md", ".ipynb_checkpoints", "__pycache__"])

    def walk(cmp, prefix=""):
        found.extend(prefix + name for name in cmp.left_only + cmp.right_only + cmp.funny_files)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        found.extend(prefix + name for name in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(comparison)
    return found


def test_there_is_a_chapter_and_each_has_a_student_copy():
    assert "01_episodes" in CHAPTERS
    for chapter in CHAPTERS:
        assert (COURSE / chapter / f"{chapter}.ipynb").exists(), f"run `make release` for {chapter}"


def test_committed_course_is_exactly_the_release_of_the_solutions(tmp_path):
    generated = release(SOLUTIONS, tmp_path)
    assert differences(generated, COURSE) == [], "course/ drifted from solutions/: run `make release` and commit"


@pytest.mark.parametrize("edited", ["solutions", "course"])
def test_drift_is_caught_when_one_side_is_edited_alone(tmp_path, edited):
    copy_solutions, copy_course = tmp_path / "src" / "solutions", tmp_path / "src" / "course"
    shutil.copytree(SOLUTIONS, copy_solutions)
    shutil.copytree(COURSE, copy_course)
    target = (copy_solutions if edited == "solutions" else copy_course) / "01_episodes" / "01_episodes.ipynb"
    nb = nbformat.read(target, as_version=4)
    first_markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    first_markdown.source += "\n\nA sentence added on one side only."
    nbformat.write(nb, target)
    generated = release(copy_solutions, tmp_path / "out")
    assert differences(generated, copy_course) == ["01_episodes/01_episodes.ipynb"]


def grade_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_lines(chapter: str) -> set[str]:
    """Distinctive lines of the solution regions and hidden tests of a chapter's source notebook."""
    nb = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    lines, inside = set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("### BEGIN"):
                inside = True
            elif stripped.startswith("### END"):
                inside = False
            elif inside and len(stripped) > 25:
                lines.add(stripped)
    return lines


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_copy_has_no_solution_no_hidden_test_and_no_output(chapter):
    nb = nbformat.read(COURSE / chapter / f"{chapter}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    leaked = [line for line in solution_lines(chapter) if line in text]
    assert leaked == [], f"solution or hidden-test lines in the student copy: {leaked[:3]}"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    stubs = [c for c in nb.cells if grade_meta(c).get("solution") and c.cell_type == "code"]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
    source = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    points = lambda book: sum(grade_meta(c).get("points", 0) for c in book.cells if grade_meta(c).get("grade"))  # noqa: E731
    assert points(nb) == points(source) > 0


def execute(nb, cwd, timeout=300):
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def error_of(cell):
    return next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_copy_runs_to_its_first_exercise_and_fails_there_for_the_right_reason(chapter):
    nb = execute(nbformat.read(COURSE / chapter / f"{chapter}.ipynb", as_version=4), COURSE / chapter)
    errors = [(i, error_of(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code" and error_of(c)]
    assert errors, "an unsolved student notebook ran without any error"
    first, err = errors[0]
    assert grade_meta(nb.cells[first]).get("solution") or grade_meta(nb.cells[first]).get("grade"), \
        f"the first error is in cell {first}, before any exercise: {err.ename}: {err.evalue}"
    assert err.ename == "NotImplementedError", f"cell {first} failed with {err.ename}: {err.evalue}"
    wrong_reasons = [(i, e.ename, e.evalue) for i, e in errors
                     if e.ename in ("ImportError", "ModuleNotFoundError", "SyntaxError", "FileNotFoundError",
                                    "DatasetError", "IndentationError")]
    assert wrong_reasons == []
    for i, cell in enumerate(nb.cells):  # every graded test cell fails, and because of the stub
        if grade_meta(cell).get("grade") and cell.cell_type == "code":
            assert error_of(cell) is not None and error_of(cell).ename == "NotImplementedError", i


# ---------------------------------------------------------------- tests of the tests

# Plausible wrong answers that pass the visible tests, one file per chapter in tests/wrong_answers/
# (`WRONG = {exercise grade_id: source}`); the hidden tests must catch each one.
WRONG_DIR = pathlib.Path(__file__).parent / "wrong_answers"
WRONG = {(path.stem, exercise): source
         for path in sorted(WRONG_DIR.glob("*.py"))
         for exercise, source in runpy.run_path(str(path))["WRONG"].items()}


def test_every_exercise_has_a_wrong_answer_to_catch():
    for chapter in CHAPTERS:
        nb = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
        exercises = {grade_meta(c)["grade_id"] for c in nb.cells
                     if c.cell_type == "code" and grade_meta(c).get("solution")}
        missing = sorted(e for e in exercises if (chapter, e) not in WRONG)
        assert missing == [], f"{chapter}: no wrong answer in tests/wrong_answers/{chapter}.py for {missing}"


@pytest.mark.parametrize("chapter, exercise", sorted(WRONG), ids=lambda v: v)
def test_wrong_answer_passes_visible_tests_but_fails_hidden_ones(chapter, exercise):
    source = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    student = nbformat.read(COURSE / chapter / f"{chapter}.ipynb", as_version=4)
    by_id = lambda book: {grade_meta(c).get("grade_id"): c for c in book.cells}  # noqa: E731
    setup = next(c for c in source.cells if "setup" in c.metadata.get("tags", []))
    visible = by_id(student)[f"{exercise}_tests"]
    full = by_id(source)[f"{exercise}_tests"]
    cells = [nbformat.v4.new_code_cell(s) for s in (setup.source, WRONG[chapter, exercise], visible.source, full.source)]
    nb = execute(nbformat.v4.new_notebook(cells=cells), SOLUTIONS / chapter)
    for cell in nb.cells[:3]:
        err = error_of(cell)
        assert err is None, f"{exercise}: the wrong answer should pass the visible tests: {err and err.evalue}"
    assert error_of(nb.cells[3]) is not None, f"{exercise}: the hidden tests let a wrong answer through"


def test_nbval_compares_checked_outputs(tmp_path):
    """A changed output in a cell marked NBVAL_CHECK_OUTPUT fails `make test`'s notebook run."""
    chapter = "01_episodes"
    nb = nbformat.read(SOLUTIONS / chapter / f"{chapter}.ipynb", as_version=4)
    checked = next(c for c in nb.cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source)
    stream = next(o for o in checked.outputs if o.output_type == "stream")
    stream.text = stream.text.replace("PushCube", "PullCube") if "PushCube" in stream.text else "tampered\n" + stream.text
    copy = tmp_path / f"{chapter}.ipynb"
    nbformat.write(nb, copy)
    result = subprocess.run([sys.executable, "-m", "pytest", str(copy), "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             f"--rootdir={tmp_path}"], cwd=SOLUTIONS / chapter, capture_output=True, text=True)
    assert result.returncode == 1 and "failed" in result.stdout, result.stdout[-2000:]
