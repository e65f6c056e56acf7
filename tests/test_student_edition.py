"""The student edition (`make student-edition DEST=dir`): no line of a solution or hidden test anywhere
in it, its notebooks exactly course/, only student-safe tests, and a Makefile whose `lab` and `test`
resolve there."""
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest

from conftest import REPO
from wmlib.grading import cells

from wmlib.grading.edition import build as edition

pytestmark = pytest.mark.slow


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def secrets() -> dict[str, list[str]]:
    """chapter -> its lines of solutions and hidden tests (and written model answers) longer than 12
    characters that students are given nowhere else: not in a released notebook (course/), and not in
    the library (wmlib/, hardware/), which is the students' by design and holds each exercise's twin."""
    given = squash("\n".join([p.read_text() for folder in ("wmlib", "hardware") for p in (REPO / folder).rglob("*.py")]
                             + [c.source for p in (REPO / "course").glob("*/*.ipynb")
                                for c in nbformat.read(p, as_version=4).cells]))
    found = {}
    for source in sorted((REPO / "solutions").glob("*/*.ipynb")):
        lines = [squash(line) for cell in nbformat.read(source, as_version=4).cells
                 for line in cells.secret_lines(cell)]
        found[source.parent.name] = [line for line in lines if len(line) > 12 and line not in given]
    return found


def text_of(tree: pathlib.Path) -> str:
    """Every text file under tree, whitespace squashed (binary files, e.g. tfrecords, are skipped)."""
    parts = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(tree).parts:
            try:
                parts.append(path.read_text())
            except UnicodeDecodeError:
                continue
    return squash("\n".join(parts))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> pathlib.Path:
    dest = tmp_path_factory.mktemp("edition") / "wmr-course"
    edition.build(dest)
    return dest


def test_no_line_of_a_solution_or_hidden_test_is_anywhere_in_the_edition(built):
    text = text_of(built)
    every = secrets()
    for chapter, lines in every.items():
        assert len(lines) >= 5, f"{chapter}: too few secret lines to make this check meaningful"
        leaked = [line for line in lines if line in text]
        assert leaked == [], f"{chapter}: solution or hidden-test lines in the student edition: {leaked[:3]}"


def test_the_leak_check_catches_a_solutions_folder(tmp_path):
    chapter = "01_episodes"
    leaky = tmp_path / "leaky"
    (leaky / chapter).mkdir(parents=True)
    source = REPO / "solutions" / chapter / f"{chapter}.ipynb"
    (leaky / chapter / source.name).write_text(source.read_text())
    text = text_of(leaky)
    assert any(line in text for line in secrets()[chapter])


def test_its_notebooks_are_exactly_course(built):
    mine = {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*.ipynb")}
    course = {p.relative_to(REPO).as_posix(): p.read_bytes() for p in (REPO / "course").rglob("*.ipynb")
              if ".ipynb_checkpoints" not in p.parts}
    assert mine.keys() == course.keys()
    assert all(mine[k] == course[k] for k in mine), "a notebook differs from its course/ copy"


def test_it_holds_nothing_only_instructors_have(built):
    assert not (built / "solutions").exists() and not (built / "book").exists()
    assert not (built / "tests" / "wrong_answers").exists()
    assert not list(built.glob("tests/*grading*")) and not list(built.glob("tests/test_notebooks.py"))
    assert not list(built.glob("benchmarks/*.py")), "benchmark scripts (they run the solutions) are not given"
    assert sorted(p.name for p in (built / "benchmarks" / "results").iterdir()) == \
        ["control.json", "lab_soak.json", "latent.json", "wam.json"]  # the ones the chapters quote
    assert not [p for p in built.rglob("*") if p.is_symlink()]
    for name in ("README.md", "Makefile", ".gitignore", "pyproject.toml", "environment.yml",
                 "wmlib/__init__.py", "wmlib/grading/cells.py", "hardware/safety.py", "datasets/README.md"):
        assert (built / name).is_file(), name
    assert "make lab" in (built / "README.md").read_text() and "selfcheck" in (built / "README.md").read_text()


def test_make_lab_and_make_test_resolve_and_test_runs_only_what_is_there(built):
    for target in ("lab", "test", "test-fast", "dataset", "setup"):
        result = subprocess.run(["make", "-n", target], cwd=built, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"make -n {target}: {result.stderr[-2000:]}"
    dry = subprocess.run(["make", "-n", "test"], cwd=built, capture_output=True, text=True).stdout
    assert "pytest" in dry and " tests" in dry
    for target in ("grade", "release", "book", "student-edition"):
        result = subprocess.run(["make", "-n", target], cwd=built, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, f"the student Makefile should have no {target} target"


def test_the_student_makefile_shares_the_course_makefile_recipes():
    """setup, venv, dataset and lab: the same rules in both, so the two cannot drift apart."""
    def rule(text: str, target: str) -> str:
        return re.search(rf"^{re.escape(target)}:.*?(?=\n\n|\Z)", text, re.M | re.S).group(0)

    main, student = (REPO / "Makefile").read_text(), (REPO / "wmlib" / "grading" / "edition" / "Makefile").read_text()
    for target in ("setup", "system", "venv", "$(VENV)/.installed", "dataset", "lab", "lint"):
        assert rule(student, target) == rule(main, target), f"the student Makefile's {target} rule differs"


def test_the_edition_collects_its_tests_and_becomes_a_repository(built, tmp_path):
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                                "tests"], cwd=built, capture_output=True, text=True, timeout=600)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert re.search(r"(\d+) tests? collected", collected.stdout), collected.stdout[-1000:]
    git = ["git", "-c", "user.name=student", "-c", "user.email=student@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the course"]):
        result = subprocess.run(git + command, cwd=built, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    tracked = subprocess.run(git + ["ls-files"], cwd=built, capture_output=True, text=True).stdout.split()
    assert "course/01_episodes/01_episodes.ipynb" in tracked and not any(t.startswith(".venv") for t in tracked)
