"""What the instructor gets, built from the stored results alone (``wmlib.grading.store``), so it can
be rebuilt at any time (``--collect``) and from several machines' folders (``--merge``):

- ``grades.csv``: one row per submission: ``student, assignment, score, max_score``, the points of
  every test cell and every hand-graded answer (one column per grade id; empty while an answer
  awaits its hand grade), ``flags`` (integrity report) and ``seconds``;
- ``grades_lms.csv``: one row per student, for a learning-management system's grade import:
  ``student_id``, one column per assignment holding its total score (empty when the student
  submitted nothing for it), and ``total``;
- ``summary.json`` and ``summary.txt``: per assignment and per exercise (test cell or hand-graded
  answer): mean, min, max, a histogram, how many passed, were flagged, and were not attempted.

Scores and maxima include the hand grades merged so far (``wmlib.grading.manual``): a written
answer counts towards ``max_score`` from the start, and towards ``score`` once graded.

Rows are sorted by (student, assignment), so the same results always give the same files.
"""
from __future__ import annotations

import csv
import io
import json
import pathlib
import shutil

from wmlib.grading import manual, store

ALTERED = "zero: the grading environment was altered"  # the start of an outcome (see grader.score)


def total(record: dict) -> float:
    return sum(record["scores"].values())


def possible(record: dict) -> float:
    return sum(record["max_scores"].values())


def grades_csv(records: list[dict]) -> str:
    """grades.csv's text: one row per submission (see the module's docstring)."""
    columns = sorted({gid for r in records for gid in r["max_scores"]})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["student", "assignment", "score", "max_score", *columns, "flags", "seconds"])
    for r in records:
        writer.writerow([r["student"], r["assignment"], f"{total(r):g}", f"{possible(r):g}",
                         *[f"{r['scores'][c]:g}" if c in r["scores"] else "" for c in columns],
                         " | ".join(r["flags"]), f"{r['seconds']:.1f}"])
    return text.getvalue()


def lms_csv(records: list[dict]) -> str:
    """grades_lms.csv's text: student_id, one total per assignment, total (see the module's docstring)."""
    assignments = sorted({r["assignment"] for r in records})
    by_student: dict[str, dict[str, float]] = {}
    for r in records:
        by_student.setdefault(r["student"], {})[r["assignment"]] = total(r)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["student_id", *assignments, "total"])
    for student in sorted(by_student):
        scores = by_student[student]
        writer.writerow([student, *[f"{scores[a]:g}" if a in scores else "" for a in assignments],
                         f"{sum(scores.values()):g}"])
    return text.getvalue()


def histogram(values: list[float], top: float, bins: int = 5) -> dict[str, int]:
    """Counts of values in `bins` equal ranges of [0, top] ("lo-hi": count, the last range closed)."""
    top = top or 1.0
    edges = [top * i / bins for i in range(bins + 1)]
    counts = {f"{edges[i]:g}-{edges[i + 1]:g}": 0 for i in range(bins)}
    for value in values:
        i = min(bins - 1, max(0, int(value / top * bins)))
        counts[f"{edges[i]:g}-{edges[i + 1]:g}"] += 1
    return counts


def exercise_flagged(record: dict, gid: str) -> bool:
    """Whether an integrity flag names this test cell or its exercise, or the test was zeroed by the probe."""
    stem = gid.removesuffix("_tests")
    return (record["outcome"].get(gid, "").startswith(ALTERED)
            or any(f" {gid} " in f" {flag} " or f" {stem} " in f" {flag} " for flag in record["flags"]))


def summary(records: list[dict]) -> dict:
    """Per assignment: submissions, max_score, flagged, not_attempted, total {mean, min, max, histogram},
    grading_sources (distinct grading hashes: 1 unless results come from different grading sources),
    and per exercise (test cell): points, mean, min, max, histogram (score -> count), passed,
    failed, not_run, flagged, not_attempted."""
    result = {}
    for assignment in sorted({r["assignment"] for r in records}):
        mine = [r for r in records if r["assignment"] == assignment]
        top = max(possible(r) for r in mine)
        totals = [total(r) for r in mine]
        exercises = {}
        for gid in sorted({g for r in mine for g in r["max_scores"]}):
            have = [r for r in mine if gid in r["max_scores"]]
            scores = [r["scores"][gid] for r in have if gid in r["scores"]]  # a written answer may await grading
            outcomes = [r["outcome"][gid] for r in have]
            exercises[gid] = {
                "points": max(r["max_scores"][gid] for r in have),
                "mean": round(sum(scores) / len(scores), 3) if scores else None,
                "min": min(scores, default=None), "max": max(scores, default=None),
                "histogram": {f"{v:g}": scores.count(v) for v in sorted(set(scores))},
                "passed": outcomes.count("passed"),
                "failed": sum(o.endswith("tests failed") for o in outcomes),
                "not_run": sum(o.startswith("not run") for o in outcomes),
                "flagged": sum(exercise_flagged(r, gid) for r in have),
                "not_attempted": sum(not r["attempted"].get(gid, True) for r in have),
            }
            if any(gid in r.get("written", {}) for r in have):
                exercises[gid]["graded_by_hand"] = outcomes.count("graded by hand")
                exercises[gid]["awaiting_hand_grading"] = outcomes.count("awaiting hand grading")
        result[assignment] = {
            "submissions": len(mine), "max_score": top,
            "flagged": sum(bool(r["flags"]) for r in mine),
            "not_attempted": sum(not any(r["attempted"].values()) for r in mine),
            "total": {"mean": round(sum(totals) / len(totals), 3), "min": min(totals), "max": max(totals),
                      "histogram": histogram(totals, top)},
            "grading_sources": len({r["grading_sha256"] for r in mine}),
            "exercises": exercises,
        }
    return result


def summary_text(summary_: dict) -> str:
    """A short table per assignment for the instructor."""
    lines = []
    for assignment, s in summary_.items():
        t = s["total"]
        lines.append(f"{assignment}: {s['submissions']} submissions, mean {t['mean']:g} / {s['max_score']:g} "
                     f"(min {t['min']:g}, max {t['max']:g}), {s['flagged']} flagged, "
                     f"{s['not_attempted']} with nothing attempted")
        lines.append("  totals: " + "  ".join(f"{k}: {v}" for k, v in t["histogram"].items()))
        lines.append(f"  {'exercise':28s} {'points':>6s} {'mean':>6s} {'min':>4s} {'max':>4s} {'passed':>6s} "
                     f"{'failed':>6s} {'not run':>7s} {'flagged':>7s} {'not attempted':>13s}")
        for gid, e in s["exercises"].items():
            if "graded_by_hand" in e:
                graded = (f"{e['mean']:6.2f} {e['min']:4g} {e['max']:4g}" if e["mean"] is not None
                          else f"{'-':>6s} {'-':>4s} {'-':>4s}")
                lines.append(f"  {gid:28s} {e['points']:6g} {graded} by hand: {e['graded_by_hand']} graded, "
                             f"{e['awaiting_hand_grading']} awaiting, {e['not_attempted']} not attempted")
                continue
            lines.append(f"  {gid:28s} {e['points']:6g} {e['mean']:6.2f} {e['min']:4g} {e['max']:4g} "
                         f"{e['passed']:6d} {e['failed']:6d} {e['not_run']:7d} {e['flagged']:7d} "
                         f"{e['not_attempted']:13d}")
        if s["grading_sources"] > 1:
            lines.append(f"  warning: these results come from {s['grading_sources']} different grading sources "
                         "(solutions, grader or limits changed): grade again to make them comparable")
        lines.append("")
    return "\n".join(lines)


def write_reports(out: pathlib.Path) -> list[dict]:
    """Rebuild grades.csv, grades_lms.csv, summary.json and summary.txt in out from out/results
    (hand grades included); returns the results they were built from, hand grades combined."""
    records = manual.load_combined(out)
    s = summary(records)
    store.write_atomic(out / "grades.csv", grades_csv(records).encode())
    store.write_atomic(out / "grades_lms.csv", lms_csv(records).encode())
    store.write_atomic(out / "summary.json", (json.dumps(s, indent=1) + "\n").encode())
    store.write_atomic(out / "summary.txt", summary_text(s).encode())
    return records


def merge(out: pathlib.Path, sources: list[pathlib.Path]) -> int:
    """Copy the results and feedback of several grading folders (one per shard) into out; returns
    how many results were copied. ValueError, naming both folders, if two of them hold different
    results for one submission, or results of one assignment graded from different grading sources."""
    chosen: dict[tuple[str, str], tuple[dict, pathlib.Path]] = {}
    for source in sources:
        if not (source / "results").is_dir():
            raise ValueError(f"{source} holds no results/ folder: is it a grading --out folder?")
        for record in store.load_all(source):
            key = (record["student"], record["assignment"])
            if key in chosen:
                other, where = chosen[key]
                same = all(other[k] == record[k] for k in ("submission_sha256", "grading_sha256", "scores"))
                if not same:
                    raise ValueError(f"{key[0]}/{key[1]} was graded differently in {where} and in {source}")
                continue
            chosen[key] = (record, source)
    sources_of: dict[str, dict[str, pathlib.Path]] = {}
    for (_, assignment), (record, source) in chosen.items():
        sources_of.setdefault(assignment, {}).setdefault(record["grading_sha256"], source)
    for assignment, hashes in sources_of.items():
        if len(hashes) > 1:
            raise ValueError(f"{assignment} was graded from different grading sources (solutions, grader or "
                             f"limits) in {' and '.join(map(str, hashes.values()))}: grade those shards again")
    for (student, assignment), (record, source) in sorted(chosen.items()):
        feedback = source / record["feedback"]
        if not feedback.is_file():
            raise ValueError(f"{feedback}: the feedback of {student}/{assignment} is missing")
        target = store.feedback_path(out, student, assignment)
        if feedback.resolve() != target.resolve():
            store.write_atomic(target, feedback.read_bytes())
            shutil.copystat(feedback, target)
        store.save(out, record)
        for extra in (manual.feedback_notebook_path(source, student, assignment),
                      manual.manual_path(source, student, assignment)):
            if extra.is_file() and extra.resolve() != (out / extra.relative_to(source)).resolve():
                store.write_atomic(out / extra.relative_to(source), extra.read_bytes())
    return len(chosen)
