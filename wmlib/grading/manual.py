"""Hand-graded answers: the written (markdown) answer cells that no test can score.

Every graded submission stores its written answers in its result (``record["written"]``: grade id ->
the student's text, the points the cell is worth, whether it was changed). From them:

    OUT/manual/<assignment>/<grade_id>.html   every student's answer to one question, side by side
    OUT/manual/<assignment>/<grade_id>.csv    student, assignment, grade_id, max_points, points, comment
    OUT/anonymisation_key.json                with --anonymise: code -> student id (never in the pages)

The instructor fills ``points`` (and, if they like, ``comment``) and merges the files:

    python -m wmlib.grading --manual FILLED.csv ... --out OUT       (`make grade-merge MANUAL=...`)

Every row of every file is checked before anything is stored (a known student or code, a known
written cell, points from 0 to the cell's points); the errors name the file, the row and the value.
The scores are stored atomically beside the automatic result, in
``OUT/results/<student>/<assignment>.manual.json``, and count in grades.csv, grades_lms.csv, the
summary and the student's feedback page from then on. A row with no points is left ungraded.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import html
import io
import json
import pathlib
import secrets

from wmlib.grading import store

COLUMNS = ("student", "assignment", "grade_id", "max_points", "points", "comment")
KEY_FILE = "anonymisation_key.json"
MANUAL_SUFFIX = ".manual.json"


# ------------------------------------------------------------------ storage


def manual_path(out: pathlib.Path, student: str, assignment: str) -> pathlib.Path:
    """OUT/results/<student>/<assignment>.manual.json: the hand scores of one submission."""
    return store.result_path(out, student, assignment).with_name(f"{assignment}{MANUAL_SUFFIX}")


def load(out: pathlib.Path, student: str, assignment: str) -> dict[str, dict]:
    """grade id -> {"points", "comment", "answer_sha256"} of the hand scores stored for one submission ({} if none)."""
    path = manual_path(out, student, assignment)
    return json.loads(path.read_text())["scores"] if path.is_file() else {}


def save(out: pathlib.Path, student: str, assignment: str, scores: dict[str, dict]) -> pathlib.Path:
    """Store (atomically) the hand scores of one submission: grade id -> {"points", "comment", "answer_sha256"}."""
    path = manual_path(out, student, assignment)
    document = {"student": student, "assignment": assignment, "scores": scores}
    store.write_atomic(path, (json.dumps(document, indent=1, sort_keys=True) + "\n").encode())
    return path


def answer_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def combine(record: dict, scores: dict[str, dict]) -> dict:
    """A copy of a stored result with its written cells added: max_scores gets each cell's points;
    scores gets the hand score where one is stored (a cell awaiting its grade has no score);
    outcome says "graded by hand" or "awaiting hand grading"; comments holds the comments. A hand
    score given to an earlier version of the answer still counts, with a flag."""
    record = json.loads(json.dumps(record))
    record.setdefault("comments", {})
    for gid, written in record.get("written", {}).items():
        record["max_scores"][gid] = written["points"]
        record["attempted"][gid] = written.get("attempted", True)
        given = scores.get(gid)
        if given is None:
            record["outcome"][gid] = "awaiting hand grading"
            continue
        record["scores"][gid] = float(given["points"])
        record["outcome"][gid] = "graded by hand"
        if given.get("comment"):
            record["comments"][gid] = given["comment"]
        if given.get("answer_sha256") not in (None, answer_sha256(written["answer"])):
            record["flags"] = record["flags"] + [f"the hand score of {gid} was given to an earlier answer: "
                                                 "grade it again"]
    return record


def load_combined(out: pathlib.Path) -> list[dict]:
    """Every stored result with its hand scores (``combine``), sorted by (student, assignment)."""
    return [combine(r, load(out, r["student"], r["assignment"])) for r in store.load_all(out)]


# ------------------------------------------------------------------ anonymous codes


def codes(out: pathlib.Path, students) -> dict[str, str]:
    """student id -> its code, e.g. "S-3f9c1e2b": a keyed hash (HMAC-SHA256) of the id under a secret
    kept in OUT/anonymisation_key.json, created on first use, so a student keeps one code across
    questions, assignments and runs. The key file also lists code -> student; keep it private."""
    path = out / KEY_FILE
    key = json.loads(path.read_text()) if path.is_file() else {"secret": secrets.token_hex(32), "codes": {}}
    known = {student: code for code, student in key["codes"].items()}
    for student in sorted(set(students) - set(known)):
        digest = hmac.new(bytes.fromhex(key["secret"]), student.encode(), "sha256").hexdigest()
        length = 8
        while f"S-{digest[:length]}" in key["codes"]:
            length += 2
        known[student] = f"S-{digest[:length]}"
        key["codes"][known[student]] = student
    store.write_atomic(path, (json.dumps(key, indent=1, sort_keys=True) + "\n").encode())
    path.chmod(0o600)
    return known


def decode(out: pathlib.Path) -> dict[str, str]:
    """code -> student id from OUT/anonymisation_key.json ({} if there is none)."""
    path = out / KEY_FILE
    return json.loads(path.read_text())["codes"] if path.is_file() else {}


# ------------------------------------------------------------------ export


def questions(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(assignment, grade id) of every written cell -> the results that hold an answer to it."""
    found: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        for gid in record.get("written", {}):
            found.setdefault((record["assignment"], gid), []).append(record)
    return dict(sorted(found.items()))


def export(out: pathlib.Path, records: list[dict], anonymise: bool = False,
           model_answers: dict[tuple[str, str], str] | None = None) -> list[pathlib.Path]:
    """Write OUT/manual/<assignment>/<grade_id>.html and .csv for every written cell of records (stored
    results, see the module's docstring); returns the paths written. The CSV keeps what is already
    filled in it (and stored hand scores) for the students it lists, so exporting again after new
    submissions adds rows without losing grading work. model_answers: (assignment, grade id) ->
    the instructors' answer, shown at the top of the page."""
    by_question = questions(records)
    code_of = codes(out, {r["student"] for r in records}) if anonymise else {}
    written_paths = []
    for (assignment, gid), mine in by_question.items():
        folder = out / "manual" / store.check_name(assignment, "assignment")
        csv_path = folder / f"{store.check_name(gid, 'grade id')}.csv"
        filled = previous_rows(csv_path, out)
        rows = []
        for record in mine:
            student, written = record["student"], record["written"][gid]
            stored = load(out, student, assignment).get(gid, {})
            before = filled.get(student, {})
            points = before.get("points") or (f"{stored['points']:g}" if "points" in stored else "")
            comment = before.get("comment") or stored.get("comment", "")
            rows.append((code_of.get(student, student), written, points, comment))
        rows.sort(key=lambda row: row[0])
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(("code" if anonymise else "student", *COLUMNS[1:]))
        for who, written, points, comment in rows:
            writer.writerow((who, assignment, gid, f"{written['points']:g}", points, comment))
        store.write_atomic(csv_path, text.getvalue().encode())
        page = answers_page(assignment, gid, [(who, w) for who, w, _, _ in rows], anonymise,
                            (model_answers or {}).get((assignment, gid)))
        store.write_atomic(folder / f"{gid}.html", page.encode())
        written_paths += [folder / f"{gid}.html", csv_path]
    return written_paths


def previous_rows(path: pathlib.Path, out: pathlib.Path) -> dict[str, dict]:
    """student id -> {"points", "comment"} already filled in an exported CSV (codes decoded); {} if none."""
    if not path.is_file():
        return {}
    decoded = decode(out)
    found = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            who = row.get("student") or decoded.get(row.get("code", ""), "")
            if who and (row.get("points") or row.get("comment")):
                found[who] = {"points": (row.get("points") or "").strip(), "comment": row.get("comment") or ""}
    return found


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;background:#f6f6f6}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(22em,1fr));gap:1em}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.8em}
.card h2{font-size:1em;margin:0 0 .5em 0}.empty{color:#a00}
pre{white-space:pre-wrap;word-wrap:break-word;font-family:inherit;margin:0}
details{background:#fff;border:1px solid #9a9;padding:.6em;margin-bottom:1em}"""


def answers_page(assignment: str, gid: str, answers: list[tuple[str, dict]], anonymise: bool,
                 model: str | None) -> str:
    """One question's page: every (student or code, written answer) as a card, the answers shown as
    escaped text (a student's answer can hold HTML; it is never rendered)."""
    who = "code" if anonymise else "student"
    points = answers[0][1]["points"] if answers else 0
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(assignment)}: "
             f"{html.escape(gid)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{html.escape(assignment)}: <code>{html.escape(gid)}</code> ({points:g} points), "
             f"{len(answers)} answers</h1>",
             f"<p>Grade in <code>{html.escape(gid)}.csv</code> (column <code>points</code>, 0 to {points:g}, and "
             f"<code>comment</code>), then merge it: <code>make grade-merge MANUAL=...</code>. Cards are "
             f"sorted by {who}.</p>"]
    if model:
        parts.append(f"<details><summary>The model answer</summary><pre>{html.escape(model)}</pre></details>")
    parts.append("<div class='grid'>")
    for name, written in answers:
        text = written["answer"].strip()
        unchanged = "" if written.get("attempted", True) else " <span class='empty'>(unchanged from the release)</span>"
        parts.append(f"<div class='card'><h2>{html.escape(name)}{unchanged}</h2><pre>{html.escape(text)}</pre></div>")
    parts.append("</div></body></html>\n")
    return "\n".join(parts)


# ------------------------------------------------------------------ merge


def read_filled(paths: list[pathlib.Path], out: pathlib.Path) -> dict[tuple[str, str], dict[str, dict]]:
    """Check every row of the filled CSV files against the stored results in out; returns
    (student, assignment) -> grade id -> {"points", "comment", "answer_sha256"} for the rows with points.
    ValueError listing every problem, each naming the file, the row (as a spreadsheet numbers it,
    the header being row 1) and the value."""
    records = {(r["student"], r["assignment"]): r for r in store.load_all(out)}
    decoded = decode(out)
    problems, found, where = [], {}, {}
    for path in paths:
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            problems.append(f"{path}: cannot be read as CSV ({err})")
            continue
        if not rows:
            problems.append(f"{path}: empty file (expected the header {','.join(COLUMNS)})")
            continue
        header = [h.strip() for h in rows[0]]
        who = "code" if "code" in header and "student" not in header else "student"
        missing = [c for c in (who, *COLUMNS[1:]) if c not in header]
        if missing:
            problems.append(f"{path}, row 1: the header lacks {', '.join(missing)} (expected {','.join(COLUMNS)}, "
                            "or code in place of student)")
            continue
        for number, values in enumerate(rows[1:], start=2):
            if not any(v.strip() for v in values):
                continue
            row = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)}
            problem, entry = check_row(row, who, records, decoded)
            if problem:
                problems.append(f"{path}, row {number}: {problem}")
                continue
            if entry is None:
                continue
            key, gid, score = entry
            if (key, gid) in where and found[key][gid]["points"] != score["points"]:
                problems.append(f"{path}, row {number}: {key[0]}/{key[1]} {gid} has points {score['points']:g} "
                                f"here and {found[key][gid]['points']:g} in {where[key, gid]}")
                continue
            where[key, gid] = f"{path}, row {number}"
            found.setdefault(key, {})[gid] = score
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ValueError("the hand-graded files were not merged (nothing was stored):\n  " + "\n  ".join(shown))
    return found


def check_row(row: dict, who: str, records: dict, decoded: dict):
    """(problem or None, ((student, assignment), grade id, score) or None when the row has no points)."""
    name = row[who]
    student = decoded.get(name) if who == "code" else name
    if who == "code" and student is None:
        return f"code {name!r} is not in the anonymisation key ({KEY_FILE})", None
    assignment, gid = row["assignment"], row["grade_id"]
    record = records.get((student, assignment))
    if record is None:
        known = sorted({a for s, a in records if s == student})
        return (f"{who} {name!r} has no graded submission of assignment {assignment!r}"
                + (f" (graded: {', '.join(known)})" if known else " (no such student)")), None
    written = record.get("written", {})
    if gid not in written:
        return (f"grade_id {gid!r} is not a hand-graded cell of {assignment} "
                f"(those are: {', '.join(sorted(written)) or 'none'})"), None
    worth = written[gid]["points"]
    try:
        stated = float(row["max_points"]) if row["max_points"] else worth
    except ValueError:
        return f"max_points {row['max_points']!r} is not a number", None
    if stated != worth:
        return f"max_points {row['max_points']!r}, but {gid} is worth {worth:g}", None
    if not row["points"]:
        return None, None
    try:
        points = float(row["points"])
    except ValueError:
        return f"points {row['points']!r} is not a number", None
    if not 0 <= points <= worth:
        return f"points {row['points']!r} is outside 0..{worth:g}", None
    return None, ((student, assignment), gid, {"points": points, "comment": row["comment"],
                                               "answer_sha256": answer_sha256(written[gid]["answer"])})


def merge(out: pathlib.Path, paths: list[pathlib.Path]) -> list[tuple[str, str]]:
    """Check the filled files (``read_filled``), then store their scores over any stored before, one
    submission at a time (atomically); returns the (student, assignment) pairs whose scores changed."""
    found = read_filled(paths, out)
    changed = []
    for (student, assignment), scores in sorted(found.items()):
        stored = load(out, student, assignment)
        updated = {**stored, **scores}
        if updated != stored:
            save(out, student, assignment, updated)
            changed.append((student, assignment))
    return changed


# ------------------------------------------------------------------ feedback


def feedback_notebook_path(out: pathlib.Path, student: str, assignment: str) -> pathlib.Path:
    """OUT/results/<student>/<assignment>.feedback.ipynb: the feedback page's notebook, kept so that the
    page can be rebuilt with hand grades added."""
    return store.result_path(out, student, assignment).with_name(f"{assignment}.feedback.ipynb")


_exporter = None


def write_feedback(out: pathlib.Path, student: str, assignment: str, nb, written: dict) -> pathlib.Path:
    """Store the feedback notebook nb and write its HTML page, with the hand scores stored for the
    submission filled into its written answers' grade lines; returns the page's path."""
    global _exporter
    import nbformat
    from nbconvert import HTMLExporter

    from wmlib.grading.grader import hand_grade_cell

    scores = load(out, student, assignment)
    for i, cell in enumerate(nb.cells):
        gid = cell.get("metadata", {}).get("wmlib", {}).get("hand_grade")
        if gid in written:
            nb.cells[i] = hand_grade_cell(gid, written[gid]["points"], scores.get(gid))
    store.write_atomic(feedback_notebook_path(out, student, assignment), nbformat.writes(nb).encode())
    _exporter = _exporter or HTMLExporter()
    page, _ = _exporter.from_notebook_node(nb)
    path = store.feedback_path(out, student, assignment)
    store.write_atomic(path, page.encode())
    return path


def rebuild_feedback(out: pathlib.Path, student: str, assignment: str) -> bool:
    """Rewrite one submission's feedback page with its stored hand scores; False if its feedback
    notebook was not kept (a result stored before hand grading existed: grade it again)."""
    import nbformat

    path = feedback_notebook_path(out, student, assignment)
    record = store.load(store.result_path(out, student, assignment))
    if record is None or not path.is_file():
        return False
    write_feedback(out, student, assignment, nbformat.reads(path.read_text(), as_version=4), record.get("written", {}))
    return True
