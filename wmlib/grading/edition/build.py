"""Build the student edition: what an instructor publishes to students.

    python -m wmlib.grading.edition DEST        (`make student-edition DEST=dir`)

DEST (new or empty) gets the notebooks of course/ exactly as released, the library (wmlib/ and
hardware/, all of it: students import and read it), the dataset recipe (datasets/README.md and
the small test fixture; `make dataset` builds the rest), the benchmark results that the chapters
quote (benchmarks/results/<name>.json for every ``results.load("<name>")`` in course/), the
packaging (pyproject.toml, environment.yml), and the tests that are safe to give: every module of
tests/ that names no instructors' material (solutions, wrong answers, the grading battery, the
notebook runner, benchmarks, the book) and holds no line of a solution or hidden test of
solutions/ (see ``secret_lines``), with the helper modules they import. From this folder come a
student Makefile (setup, dataset, lab, test, lint), a student README and a .gitignore.

Left out: solutions/, tests/wrong_answers/, the grader's tests and battery, the benchmark scripts,
the book, the instructors' README. The result holds no symbolic link and no .git, so
``git init && git add -A`` makes it a repository.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import shutil

import nbformat

from wmlib.grading import cells

HERE = pathlib.Path(__file__).resolve().parent          # the student Makefile, README and .gitignore
REPO = HERE.parents[2]

COPIED = ("course", "wmlib", "hardware", "datasets/README.md", "datasets/fixture", "pyproject.toml",
          "environment.yml")
FROM_EDITION = {"Makefile": "Makefile", "README.md": "README.md", "gitignore": ".gitignore"}
# a test module naming any of these uses instructors' material
INSTRUCTORS_ONLY = re.compile(r'wrong_answers|grading_battery|notebook_run|["/]solutions\b|\bsolutions["/]'
                              r'|["/]benchmarks\b|\bbenchmarks/|["/]book\b|\bbook/')
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "*.egg-info", ".pytest_cache")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def secret_lines(repo: pathlib.Path = REPO) -> list[str]:
    """Lines (whitespace squashed, longer than 12 characters) of the solution regions, hidden tests and
    written model answers of solutions/*/*.ipynb that students are not given already: not in a
    released notebook (course/), and not in the library they receive (wmlib/, hardware/: each
    exercise has a reference twin in it, which the visible tests compare with)."""
    given = squash("\n".join([p.read_text() for folder in ("wmlib", "hardware")
                              for p in sorted((repo / folder).rglob("*.py"))]
                             + [c.source for p in sorted((repo / "course").glob("*/*.ipynb"))
                                for c in nbformat.read(p, as_version=4).cells]))
    found = []
    for source in sorted((repo / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(source, as_version=4).cells:
            for line in cells.secret_lines(cell):
                line = squash(line)
                if len(line) > 12 and line not in given:
                    found.append(line)
    return found


def safe_tests(repo: pathlib.Path = REPO, secrets: list[str] | None = None) -> list[pathlib.Path]:
    """The modules of tests/ a student may have (see the module's docstring), and the helper modules
    (non-test .py files of tests/) that they import."""
    secrets = secret_lines(repo) if secrets is None else secrets
    folder = repo / "tests"

    def clean(path: pathlib.Path) -> bool:
        text = path.read_text()
        named = INSTRUCTORS_ONLY.search(text) and path.name != "conftest.py"  # its chapter fixture imports lazily
        return not named and not any(line in squash(text) for line in secrets)

    chosen = [p for p in sorted(folder.glob("test_*.py")) if clean(p)]
    helpers = {p.stem: p for p in folder.glob("*.py") if not p.name.startswith("test_")}
    needed = ["conftest"]
    for path in chosen:
        needed += [name for name in helpers if re.search(rf"^\s*(from|import) {name}\b", path.read_text(), re.M)]
    extra = [helpers[name] for name in dict.fromkeys(needed) if name in helpers and clean(helpers[name])]
    return sorted(set(chosen + extra))


def cited_results(repo: pathlib.Path = REPO) -> list[pathlib.Path]:
    """benchmarks/results/<name>.json for every results.load("<name>") in the released notebooks."""
    names = set()
    for notebook in (repo / "course").glob("*/*.ipynb"):
        names |= set(re.findall(r'results\.load\(\\?"([\w.-]+)\\?"\)', notebook.read_text()))
    return [repo / "benchmarks" / "results" / f"{name}.json" for name in sorted(names)]


def copy(source: pathlib.Path, target: pathlib.Path) -> None:
    """Copy a file or folder, following no symbolic link (refused with its path)."""
    links = [source] if source.is_symlink() else [p for p in source.rglob("*") if p.is_symlink()]
    if links:
        raise ValueError(f"{links[0]}: a symbolic link would not travel with the edition")
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=IGNORED)
    else:
        shutil.copy2(source, target)


def build(dest: pathlib.Path, repo: pathlib.Path = REPO) -> list[pathlib.Path]:
    """Write the student edition into dest (which must not exist or be empty); returns the files written."""
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty: give a new or empty folder")
    if repo.resolve() in (dest, *dest.parents):
        raise ValueError(f"{dest} is inside the course repository: give a folder outside it")
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        copy(repo / name, dest / name)
    for path in cited_results(repo):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: a chapter quotes it (results.load), but it is missing")
        copy(path, dest / path.relative_to(repo))
    for path in safe_tests(repo):
        copy(path, dest / "tests" / path.name)
    for source, target in FROM_EDITION.items():
        copy(HERE / source, dest / target)
    return sorted(p for p in dest.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=pathlib.Path, help="a new or empty folder")
    args = parser.parse_args()
    try:
        files = build(args.dest)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"[student-edition] {err}") from None
    tests = sorted(p.name for p in (args.dest / "tests").glob("test_*.py"))
    print(f"[student-edition] {len(files)} files in {args.dest.resolve()}: course/, wmlib/, hardware/, the dataset "
          f"recipe, {len(tests)} test modules; no solutions, no hidden tests. Publish it as it is, e.g.\n"
          f"  cd {args.dest} && git init && git add -A && git commit -m 'the course'")


if __name__ == "__main__":
    main()
