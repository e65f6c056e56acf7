"""`make grade SUBMISSIONS=dir [JOBS=N]`: autograde what is new or changed in dir; see wmlib.grading.grader.

    python -m wmlib.grading SUBMISSIONS --out grades [--jobs N] [--shard K/N] [--regrade]
    python -m wmlib.grading --collect --out grades             (rebuild the reports, grade nothing)
    python -m wmlib.grading --merge shard0 shard1 --out grades  (one gradebook from several machines)
    python -m wmlib.grading --manual FILLED.csv ... --out grades  (merge hand grades; `make grade-merge`)

Every run also exports the hand-graded (written) answers, one page and one CSV per question, to
OUT/manual/ (``--anonymise``: students named by stable codes; see wmlib.grading.manual).

Each submission's result is stored the moment it is graded (wmlib.grading.store), so a grader
stopped at any point and started again grades only what it had not stored yet.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import site
import sys
import tempfile
import time
import zipfile

from tqdm.auto import tqdm

from wmlib.grading import cells, manual, pool, reports, shard, store
from wmlib.grading.grader import Submission
from wmlib.grading.probe import probe_expression
from wmlib.grading.reports import possible, total, write_reports
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
        hidden = any(part.startswith(".") for part in notebook.relative_to(folder).parts)  # .ipynb_checkpoints
        if assignment in assignments and notebook.stem == assignment and not hidden:
            found.append(Submission(student, assignment, notebook))
    for item in sorted(folder.iterdir()):
        candidates = []
        if item.name.startswith("."):  # hidden: .DS_Store, ._ copies, checkpoints
            continue
        if item.suffix == ".zip":
            target = unpack_to / item.stem
            with zipfile.ZipFile(item) as archive:
                for member in archive.namelist():
                    if member.endswith(".ipynb") and "__MACOSX" not in member and ".." not in member:
                        path = target / pathlib.Path(member).name
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(archive.read(member)[: 50 << 20])
                        candidates.append((item.stem, path, item))
        elif item.suffix == ".ipynb":
            candidates.append((item.stem, item, item))
        for stem, path, origin in candidates:
            assignment = next((a for a in assignments if a in path.stem), None)
            match = re.match(r"([^_]+)_", stem)
            if assignment and match:
                found.append(Submission(match.group(1), assignment, path, origin))
    return found


def duplicates(subs: list[Submission]) -> str:
    """A message naming every (student, assignment) found more than once, or ""."""
    seen: dict[tuple[str, str], list[Submission]] = {}
    for sub in subs:
        seen.setdefault((sub.student, sub.assignment), []).append(sub)
    return "; ".join(f"{student}/{assignment}: {', '.join(str(s.path) for s in found)}"
                     for (student, assignment), found in seen.items() if len(found) > 1)


def model_answers(course: pathlib.Path, assignments) -> dict[tuple[str, str], str]:
    """(assignment, grade id) -> the instructors' text of every written answer cell, from solutions/."""
    import nbformat

    found = {}
    for assignment in assignments:
        path = course / "solutions" / assignment / f"{assignment}.ipynb"
        if path.is_file():
            for cell in nbformat.read(path, as_version=4).cells:
                if cells.kind(cell) == "written":
                    found[assignment, cells.grade_id(cell)] = cells.source(cell)
    return found


def report(out: pathlib.Path, show_rows: int = 200, anonymise: bool = False,
           course: pathlib.Path = REPO) -> list[dict]:
    """Rebuild the reports from out/results, export the hand-graded answers, and print the grades
    and the summary."""
    records = write_reports(out)
    exported = manual.export(out, records, anonymise, model_answers(course, {r["assignment"] for r in records}))
    if len(records) <= show_rows:
        print(f"\n{'student':20s} {'assignment':14s} {'score':>9s}  flags")
        for r in records:
            print(f"{r['student']:20s} {r['assignment']:14s} {total(r):4g} / {possible(r):<3g}  "
                  f"{'; '.join(r['flags'])[:80]}")
    print()
    print((out / "summary.txt").read_text())
    print(f"wrote {out / 'grades.csv'} ({len(records)} results), {out / 'grades_lms.csv'}, {out / 'summary.json'} "
          f"and feedback in {out / 'feedback'}")
    if exported:
        print(f"hand-graded answers: {len(exported) // 2} questions in {out / 'manual'} (a page and a CSV each"
              f"{'; codes in ' + str(out / manual.KEY_FILE) + ', keep it private' if anonymise else ''}); "
              "fill the CSVs, then: make grade-merge MANUAL=...")
    return records


def grade(args, jobs: int) -> int:
    """Grade what is new or changed in args.submissions (all of it with --regrade); returns how many
    submissions failed to be graded (the grader's own errors, each reported)."""
    require_tools()
    names = assignments_of(args.course)
    limits = Limits(memory_bytes=int(args.memory_gb * (1 << 30)))
    # the limits that are the same on every machine (the process limit grows with the cores, so shards
    # on different machines would never agree on it)
    settings = {"cell_timeout": args.cell_timeout, "notebook_timeout": args.notebook_timeout,
                "memory_bytes": limits.memory_bytes, "file_bytes": limits.file_bytes,
                "open_files": limits.open_files}
    grading = {a: store.grading_sha256(args.course / "solutions" / a / f"{a}.ipynb",
                                       args.course / "course" / a / f"{a}.ipynb", settings) for a in names}
    trusted = [str(p) for p in {*site.getsitepackages(), sys.base_prefix, str(REPO / "wmlib")}]
    run = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="wmr-grade-") as tmp:
        tmp = pathlib.Path(tmp)
        tmp.chmod(0o755)
        subs = discover(args.submissions, names, tmp / "unpacked")
        if not subs:
            raise SystemExit(f"no submissions for {names} found in {args.submissions}")
        if clash := duplicates(subs):
            raise SystemExit(f"more than one submission for one student and assignment ({clash}): "
                             "keep one of each and grade again")
        for sub in subs:
            try:
                store.result_path(args.out, sub.student, sub.assignment)
            except ValueError as err:
                raise SystemExit(f"{sub.path}: {err}") from None
        if args.shard:
            k, n = shard.parse(args.shard)
            subs = shard.select(subs, k, n)
            print(f"share {k}/{n}: {len(subs)} submissions")
        tasks, why = [], {}
        for sub in subs:
            digest = store.sha256_file(sub.path)
            reason = store.why_grade(store.load(store.result_path(args.out, sub.student, sub.assignment)), digest,
                                     grading[sub.assignment], args.regrade)
            if reason:
                why[reason] = why.get(reason, 0) + 1
                tasks.append(pool.Task(sub, str(sub.origin or sub.path), digest, grading[sub.assignment]))
        reasons = ", ".join(f"{n} {reason}" for reason, n in why.items())
        print(f"{len(subs)} submissions: {len(subs) - len(tasks)} already graded and unchanged, "
              f"{len(tasks)} to grade{f' ({reasons})' if reasons else ''} on {jobs} job(s), run {run}", flush=True)
        setup = pool.Setup(args.course.resolve(), REPO, args.out.resolve(), tmp / "run", probe_expression(trusted),
                           limits, args.cell_timeout, args.notebook_timeout, run)
        graded, failed = 0, 0
        with tqdm(total=len(tasks), desc="grading", unit="notebook") as bar:
            for task, outcome in pool.grade_all(setup, tasks, jobs):
                bar.update()
                if isinstance(outcome, BaseException):
                    failed += 1
                    tqdm.write(f"error: {task.submission.student}/{task.submission.assignment} ({task.origin}) "
                               f"was not graded: {type(outcome).__name__}: {outcome}")
                else:
                    graded += 1
    print(f"graded {graded} submissions in this run{f', {failed} failed (rerun to retry them)' if failed else ''}")
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("submissions", type=pathlib.Path, nargs="?",
                        help="the folder of submissions (not needed with --collect or --merge)")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "grades")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--notebook-timeout", type=float, default=600)
    parser.add_argument("--memory-gb", type=float, default=4, help="each kernel's memory (address space) limit")
    parser.add_argument("--jobs", type=int, default=1, help="kernels at once (each under --memory-gb)")
    parser.add_argument("--shard", metavar="K/N", help="grade only share K (0 to N-1) of N of the submissions")
    parser.add_argument("--regrade", action="store_true", help="grade every submission again, changed or not")
    parser.add_argument("--collect", action="store_true",
                        help="grade nothing: rebuild the reports in --out from its stored results")
    parser.add_argument("--merge", type=pathlib.Path, nargs="+", metavar="FOLDER",
                        help="grade nothing: copy the results and feedback of these --out folders (one per "
                             "shard) into --out and build its reports")
    parser.add_argument("--manual", type=pathlib.Path, nargs="+", metavar="CSV",
                        help="grade nothing: check and store the hand grades of these filled CSV files (exported "
                             "to OUT/manual/), then rebuild the reports and the feedback pages")
    parser.add_argument("--anonymise", action="store_true",
                        help="name students by stable codes in the exported hand-grading pages and CSVs (the key: "
                             f"OUT/{manual.KEY_FILE})")
    parser.add_argument("--course", type=pathlib.Path, default=REPO,
                        help="the folder holding solutions/ and course/ (default: this repository)")
    args = parser.parse_args(argv)
    failed = 0
    try:
        if args.manual:
            changed = manual.merge(args.out, args.manual)
            rebuilt = sum(manual.rebuild_feedback(args.out, student, assignment) for student, assignment in changed)
            print(f"stored hand grades of {len(changed)} submissions from {len(args.manual)} files; rebuilt "
                  f"{rebuilt} feedback pages")
            if rebuilt < len(changed):
                print(f"warning: {len(changed) - rebuilt} feedback pages could not be rebuilt (graded before "
                      "hand grading was kept): grade them again with --regrade")
        elif args.merge:
            copied = reports.merge(args.out, args.merge)
            print(f"merged {copied} results from {len(args.merge)} folders into {args.out}")
        elif not args.collect:
            if args.submissions is None:
                parser.error("give the folder of submissions (or --collect / --merge)")
            if args.shard:
                shard.parse(args.shard)
            pool.check_jobs(args.jobs, int(args.memory_gb * (1 << 30)))
            failed = grade(args, args.jobs)
        elif not (args.out / "results").is_dir():
            raise SystemExit(f"{args.out} holds no results/ to collect")
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    report(args.out, anonymise=args.anonymise, course=args.course)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
