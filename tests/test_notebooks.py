"""The notebook pipeline: course/ is exactly what nbgrader makes of solutions/, student copies leak
nothing, every solution notebook runs and prints what it printed when committed, each released
stub fails its test cell for the right reason, and hidden tests catch plausible wrong answers
that the visible tests let through.

Each chapter's notebook is executed once per session (the `chapter_run` fixture, conftest.py);
every check below that needs a kernel reuses that execution."""
import filecmp
import json
import pathlib
import re
import runpy
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO
from notebook_run import CHECK_OUTPUT, output_differences
from wmlib.grading import cells

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


def notebook(tree: pathlib.Path, chapter: str):
    return nbformat.read(tree / chapter / f"{chapter}.ipynb", as_version=4)


def by_id(nb) -> dict:
    return {cells.grade_id(c): c for c in nb.cells if cells.grade_id(c)}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_copy_has_no_solution_no_hidden_test_and_no_output(chapter):
    nb, source = notebook(COURSE, chapter), notebook(SOLUTIONS, chapter)
    text = "\n".join(c.source for c in nb.cells)
    for marker in cells.MARKERS:
        assert marker not in text
    secrets = {line.strip() for cell in source.cells for line in cells.secret_lines(cell) if len(line.strip()) > 25}
    leaked = [line for line in secrets if line in text]
    assert leaked == [], f"solution or hidden-test lines in the student copy: {leaked[:3]}"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    stubs = [c for c in nb.cells if cells.kind(c) == "answer"]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
    points = lambda book: sum(cells.points(c) for c in book.cells)  # noqa: E731
    assert points(nb) == points(source) > 0


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_copy_runs_the_same_code_as_the_solutions_outside_the_exercises(chapter):
    """Every code cell a student does not write is the solution notebook's own, so that it ran in
    the solution's execution below; demos after an exercise fail only through its stub."""
    student, source = by_id(notebook(COURSE, chapter)), by_id(notebook(SOLUTIONS, chapter))
    assert student.keys() == source.keys(), "course/ and solutions/ have different cells: make release"
    for gid, cell in student.items():
        if cells.kind(cell) in ("locked", "plain") and cell.cell_type == "code":
            assert cell.source == source[gid].source, f"{chapter}: cell {gid} differs from the solution's"
        if cells.kind(cell) == "test":
            assert cell.source == cells.visible_part(source[gid].source, gid)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_visible_assert_says_what_to_fix(chapter):
    """A failing visible test is the student's only feedback before grading: it must say something."""
    import ast

    silent = []
    for cell in notebook(SOLUTIONS, chapter).cells:
        if cells.kind(cell) == "test":
            visible = cells.visible_part(cell.source, cells.grade_id(cell))
            silent += [f"{cells.grade_id(cell)}: {ast.get_source_segment(visible, node)[:80]}"
                       for node in ast.walk(ast.parse(visible)) if isinstance(node, ast.Assert) and node.msg is None]
    assert silent == [], f"{chapter}: visible asserts without a message: {silent}"


def checked_run(chapter_run, chapter):
    run = chapter_run(chapter)
    if run.failure:
        pytest.fail(f"the solution notebook did not run to the end, so this check cannot: {run.failure}")
    return run


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solution_notebook_runs_every_cell_and_prints_what_it_committed(chapter_run, chapter):
    run = checked_run(chapter_run, chapter)
    assert output_differences(run.committed, run.executed) == [], \
        "a cell tagged check-output printed something else than the committed notebook: re-execute and commit it"


@pytest.mark.parametrize("chapter", ["01_episodes"])
def test_a_changed_checked_output_is_caught(chapter_run, chapter):
    """The committed output of a check-output cell, tampered with, no longer matches this run."""
    run = checked_run(chapter_run, chapter)
    tampered = nbformat.from_dict(json.loads(json.dumps(run.committed)))
    checked = next(c for c in tampered.cells if CHECK_OUTPUT in c.metadata.get("tags", []))
    stream = next(o for o in checked.outputs if o.output_type == "stream")
    tampered_text = stream.text.replace("PushCube", "PullCube")
    stream.text = tampered_text if tampered_text != stream.text else "tampered\n" + stream.text
    assert len(output_differences(tampered, run.executed)) == 1


# ---------------------------------------------------------------- tests of the tests

# Plausible wrong answers that pass the visible tests, one file per chapter in tests/wrong_answers/
# (`WRONG = {exercise grade_id: source}`, and optionally `FRESH`: code that gives the checks a
# fresh world, for a chapter whose state depends on history); the hidden tests must catch each.
WRONG_DIR = pathlib.Path(__file__).parent / "wrong_answers"
MODULES = {path.stem: runpy.run_path(str(path)) for path in sorted(WRONG_DIR.glob("*.py"))}
WRONG = {(chapter, exercise): source
         for chapter, module in MODULES.items() for exercise, source in module["WRONG"].items()}
EXERCISES = sorted((chapter, cells.grade_id(c)) for chapter in CHAPTERS for c in notebook(SOLUTIONS, chapter).cells
                   if cells.kind(c) == "answer")


def test_every_exercise_has_a_wrong_answer_to_catch():
    missing = [f"{chapter}: {exercise}" for chapter, exercise in EXERCISES if (chapter, exercise) not in WRONG]
    assert missing == [], f"no wrong answer in tests/wrong_answers/ for {missing}"


def in_fresh_world(run, chapter):
    fresh = MODULES.get(chapter, {}).get("FRESH")
    if fresh:
        outcome = run.run(fresh)
        assert outcome.ename is None, f"{chapter}: the fresh world could not be made: {outcome}"


def restore(run, chapter, exercise):
    outcome = run.run(by_id(notebook(SOLUTIONS, chapter))[exercise].source)
    assert outcome.ename is None, f"{exercise}: the solution cell failed when run again: {outcome}"


@pytest.mark.parametrize("chapter, exercise", sorted(WRONG), ids=lambda v: v)
def test_wrong_answer_passes_visible_tests_but_fails_hidden_ones(chapter_run, chapter, exercise):
    run = checked_run(chapter_run, chapter)
    full = by_id(notebook(SOLUTIONS, chapter))[f"{exercise}_tests"].source
    visible = by_id(notebook(COURSE, chapter))[f"{exercise}_tests"].source
    try:
        in_fresh_world(run, chapter)
        defined = run.run(WRONG[chapter, exercise])
        assert defined.ename is None, f"{exercise}: the wrong answer does not even run: {defined}"
        seen = run.run(visible)
        assert seen.ename is None, f"{exercise}: the wrong answer should pass the visible tests: {seen}"
        hidden = run.run(full)
        assert hidden.ename is not None, f"{exercise}: the hidden tests let a wrong answer through"
        assert hidden.ename == "AssertionError", \
            f"{exercise}: the tests crashed on the wrong answer instead of failing an assertion: {hidden}"
    finally:
        restore(run, chapter, exercise)


@pytest.mark.parametrize("chapter, exercise", EXERCISES, ids=lambda v: v)
def test_released_stub_fails_its_test_cell_with_not_implemented(chapter_run, chapter, exercise):
    run = checked_run(chapter_run, chapter)
    student = by_id(notebook(COURSE, chapter))
    try:
        defined = run.run(student[exercise].source)
        assert defined.ename is None, f"{exercise}: the released stub does not run: {defined}"
        tested = run.run(student[f"{exercise}_tests"].source)
        assert tested.ename == "NotImplementedError", \
            f"{exercise}: with the stub, the test cell should stop at NotImplementedError, not: {tested}"
    finally:
        restore(run, chapter, exercise)


# ---------------------------------------------------------------- numbers quoted from benchmarks

CITED = re.compile(r"results\.load\(\s*[\"'](\w+)[\"']\s*\)")
# "k of n", "k/n" or "p%", unless it is this notebook's own run ("7/8 here")
TYPED_RATE = re.compile(r"\b(?:\d+ ?(?:of|/) ?\d+\b|\d+(?:\.\d+)? ?%)(?! here)")


def paragraphs_citing_benchmarks(nb):
    """(cell index, paragraph or list item) of the markdown that names a benchmark."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for paragraph in re.split(r"\n\s*- |\n\s*\n", cell.source):
                if "benchmarks/" in paragraph:
                    yield index, paragraph


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_quoted_benchmark_numbers_come_from_committed_results(chapter):
    """A number a chapter quotes from a benchmark is printed from its committed results file by a
    cell whose output the notebook checks (so the prose cannot drift from the measurement)."""
    from wmlib import results

    nb = notebook(SOLUTIONS, chapter)
    for index, cell in enumerate(nb.cells):
        for name in CITED.findall(cell.source if cell.cell_type == "code" else ""):
            loaded = results.load(name)       # raises, naming the file, when it is missing
            assert loaded["command"].startswith("python benchmarks/"), f"{name}: {loaded['command']}"
            assert CHECK_OUTPUT in cell.metadata.get("tags", []), \
                f"{chapter}: cell {index} prints results/{name}.json but its output is not checked (tag check-output)"
    typed = [(index, match) for index, paragraph in paragraphs_citing_benchmarks(nb)
             for match in TYPED_RATE.findall(paragraph)]
    assert typed == [], f"{chapter}: rates typed next to a benchmark's name; print them from its results: {typed}"


def test_a_missing_results_file_is_named(tmp_path, monkeypatch):
    from wmlib import results

    monkeypatch.setattr(results, "FOLDER", tmp_path)
    with pytest.raises(FileNotFoundError, match="control.json is missing"):
        results.load("control")
    (tmp_path / "control.json").write_text('{"pooled": {}}')
    with pytest.raises(ValueError, match="which command"):
        results.load("control")
