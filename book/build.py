"""Build the course site with Jupyter Book 1, offline, from the executed solution notebooks.

    python book/build.py student      # -> book/_build/student/html   (`make book`)
    python book/build.py instructor   # -> book/_build/instructor/html (`make book-instructor`)

Both builds show the outputs of a real run of `solutions/` (the student notebooks in `course/`
carry no outputs). The student build passes each notebook through nbgrader's own
ClearSolutions and ClearHiddenTests, the same steps `make release` uses, so exercise cells show
the stubs students get and test cells only their visible part; the outputs of those cells
(which came from the solution) are dropped. The instructor build shows the notebooks as they are.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys

import nbformat
import yaml
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from wmlib.grading import cells

BOOK = pathlib.Path(__file__).resolve().parent
REPO = BOOK.parent
SOLUTIONS = REPO / "solutions"
AUDIENCES = ("student", "instructor")


def chapters() -> list[pathlib.Path]:
    """solutions/NN_name/NN_name.ipynb, in course order."""
    found = [d / f"{d.name}.ipynb" for d in sorted(SOLUTIONS.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    missing = [p for p in found if not p.exists()]
    if missing:
        raise FileNotFoundError(f"chapter folder without its notebook: {missing[0]}")
    return found


def student_view(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as a student receives it, but keeping the outputs of every other cell."""
    resources = {}
    nb, resources = ClearSolutions(enforce_metadata=True).preprocess(nb, resources)
    nb, resources = ClearHiddenTests(enforce_metadata=True).preprocess(nb, resources)
    for cell in nb.cells:
        if cells.kind(cell) in ("answer", "test"):       # their outputs came from the solution
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("nbgrader", None)
    return nb


def stage(audience: str, staging: pathlib.Path) -> None:
    """Write the book's sources (config, toc, intro, notebooks) into `staging`."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    if audience == "instructor":
        config["title"] += " (instructor edition: with solutions)"
    (staging / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(BOOK / "intro.md", staging / "intro.md")
    toc = {"format": "jb-book", "root": "intro", "chapters": []}
    for path in chapters():
        chapter_dir = staging / path.parent.name
        shutil.copytree(path.parent, chapter_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        nb = nbformat.read(path, as_version=4)
        if audience == "student":
            nb = student_view(nb)
        nbformat.write(nb, chapter_dir / path.name)
        toc["chapters"].append({"file": f"{path.parent.name}/{path.stem}"})
    (staging / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))


def build(audience: str, out: pathlib.Path) -> pathlib.Path:
    """Stage and build one audience's site; returns the folder holding index.html."""
    staging = out / "src"
    stage(audience, staging)
    jupyter_book = pathlib.Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(staging), "--path-output", str(out), "--builder", "html",
               "--keep-going", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True)
    html = out / "_build" / "html"
    if result.returncode != 0 or not (html / "index.html").exists():
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"[book] the {audience} build failed (jupyter-book exit code {result.returncode})")
    return html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audience", choices=AUDIENCES)
    parser.add_argument("--out", type=pathlib.Path, default=None, help="default: book/_build/<audience>")
    args = parser.parse_args()
    out = (args.out or BOOK / "_build" / args.audience).resolve()
    html = build(args.audience, out)
    print(f"[book] {args.audience} site: {html / 'index.html'}")


if __name__ == "__main__":
    main()
