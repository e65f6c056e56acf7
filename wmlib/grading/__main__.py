"""`make grade SUBMISSIONS=dir`: autograde every submission in dir; see wmlib.grading.grader."""
from __future__ import annotations

import argparse
import csv
import pathlib
import re
import shutil
import site
import sys
import tempfile
import zipfile

import nbformat
from tqdm.auto import tqdm

from wmlib.grading.grader import Submission, grade_one
from wmlib.grading.probe import probe_expression
from wmlib.grading.sandbox import Limits, require_tools

REPO = pathlib.Path(__file__).resolve().parents[2]


def assignments_of(repo: pathlib.Path) -> list[str]:
    return sorted(p.name for p in (repo / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())


def discover(folder: pathlib.Path, assignments: list[str], unpack_to: pathlib.Path) -> list[Submission]:
    """Submissions in either layout:

    - nbgrader's: ``<student>/<assignment>/<assignment>.ipynb``;
    - a folder of downloaded files (what ``zip_collect`` takes): ``<student>_<anything><assignment>.ipynb``
      or ``.zip`` archives holding such a notebook; the student id is the part before the first "_".
    """
    found = []
    for notebook in sorted(folder.glob("*/*/*.ipynb")):
        student, assignment = notebook.parts[-3], notebook.parts[-2]
        if assignment in assignments and notebook.stem == assignment and ".ipynb_checkpoints" not in notebook.parts:
            found.append(Submission(student, assignment, notebook))
    for item in sorted(folder.iterdir()):
        candidates = []
        if item.suffix == ".zip":
            target = unpack_to / item.stem
            with zipfile.ZipFile(item) as archive:
                for member in archive.namelist():
                    if member.endswith(".ipynb") and "__MACOSX" not in member and ".." not in member:
                        path = target / pathlib.Path(member).name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(archive.read(member)[: 50 << 20])
                        candidates.append((item.stem, path))
        elif item.suffix == ".ipynb":
            candidates.append((item.stem, item))
        for stem, path in candidates:
            assignment = next((a for a in assignments if a in path.stem), None)
            match = re.match(r"([^_]+)_", stem)
            if assignment and match:
                found.append(Submission(match.group(1), assignment, path))
    return found


def write_outputs(results, out: pathlib.Path) -> pathlib.Path:
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    for r in results:
        folder = out / "feedback" / r.submission.student
        folder.mkdir(parents=True, exist_ok=True)
        html, _ = exporter.from_notebook_node(r.feedback)
        (folder / f"{r.submission.assignment}.html").write_text(html)
    grades = out / "grades.csv"
    columns = sorted({gid for r in results for gid in r.max_scores})
    with open(grades, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "score", "max_score", *columns, "flags", "seconds"])
        for r in results:
            writer.writerow([r.submission.student, r.submission.assignment, f"{r.total:g}",
                             f"{sum(r.max_scores.values()):g}",
                             *[f"{r.scores[c]:g}" if c in r.scores else "" for c in columns],
                             " | ".join(r.flags), f"{r.seconds:.1f}"])
    return grades


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("submissions", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "grades")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--notebook-timeout", type=float, default=600)
    parser.add_argument("--memory-gb", type=float, default=4)
    parser.add_argument("--course", type=pathlib.Path, default=REPO,
                        help="the folder holding solutions/ and course/ (default: this repository)")
    args = parser.parse_args(argv)
    require_tools()
    names = assignments_of(args.course)
    sources = {a: nbformat.read(args.course / "solutions" / a / f"{a}.ipynb", as_version=4) for a in names}
    releases = {a: nbformat.read(args.course / "course" / a / f"{a}.ipynb", as_version=4) for a in names}
    trusted = [str(p) for p in {*site.getsitepackages(), sys.base_prefix, str(REPO / "wmlib")}]
    probe = probe_expression(trusted)
    limits = Limits(memory_bytes=int(args.memory_gb * (1 << 30)))
    with tempfile.TemporaryDirectory(prefix="wmr-grade-") as tmp:
        tmp = pathlib.Path(tmp)
        tmp.chmod(0o755)
        subs = discover(args.submissions, names, tmp / "unpacked")
        if not subs:
            raise SystemExit(f"no submissions for {names} found in {args.submissions}")
        results = []
        for sub in tqdm(subs, desc="grading", unit="notebook"):
            results.append(grade_one(sub, sources[sub.assignment], releases[sub.assignment], probe, tmp / "run",
                                     REPO, limits, args.cell_timeout, args.notebook_timeout))
        grades = write_outputs(results, args.out)
        shutil.rmtree(tmp / "run", ignore_errors=True)
    print(f"\n{'student':20s} {'assignment':14s} {'score':>9s}  flags")
    for r in results:
        print(f"{r.submission.student:20s} {r.submission.assignment:14s} "
              f"{r.total:4g} / {sum(r.max_scores.values()):<3g}  "
              f"{'; '.join(r.flags)[:80]}")
    print(f"\nwrote {grades} and feedback in {args.out / 'feedback'}")


if __name__ == "__main__":
    main()
