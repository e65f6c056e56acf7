"""Stored results: one JSON file per graded submission, written the moment it is graded.

    OUT/results/<student>/<assignment>.json
    OUT/results/<student>/<assignment>.feedback.ipynb   (the feedback page's notebook)
    OUT/results/<student>/<assignment>.manual.json      (hand scores, wmlib.grading.manual)
    OUT/feedback/<student>/<assignment>.html

A result records the scores per test cell, the flags, the path of the feedback, the time it
took, and two hashes: of the notebook that was graded (``submission_sha256``) and of everything
that decides its grade (``grading_sha256``: the solutions notebook with its hidden tests, the
released notebook, the grader's own modules and the limits). A rerun grades a submission again
only when one of the two has changed. Every file is written atomically (a temporary file in the
same folder, flushed and fsynced, then ``os.replace``), so a grader killed at any moment leaves
either the old file or the new one, never half of one: the result file is written last and is
the mark that a submission is done.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import tempfile

FORMAT = 1  # the layout of a stored result; a result of another format is graded again
# The modules whose code decides a grade (not the command line, the reports or the pool).
GRADING_MODULES = ("grader.py", "sandbox.py", "cells.py", "probe.py", "checks.py")
SAFE_NAME = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,199}")  # no path separator, no leading dot


def check_name(name: str, what: str) -> str:
    """name, if it is safe as one file or folder name (no slash or backslash, no control character, not
    starting with a dot, at most 200 characters); otherwise ValueError naming it. Student ids come from
    the names of submitted files and folders, so they are checked before they name a result."""
    if not SAFE_NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r} cannot name a file (a slash, a control character or a leading '.')")
    return name


def result_path(out: pathlib.Path, student: str, assignment: str) -> pathlib.Path:
    """OUT/results/<student>/<assignment>.json."""
    return out / "results" / check_name(student, "student id") / f"{check_name(assignment, 'assignment')}.json"


def feedback_path(out: pathlib.Path, student: str, assignment: str) -> pathlib.Path:
    """OUT/feedback/<student>/<assignment>.html."""
    return out / "feedback" / check_name(student, "student id") / f"{check_name(assignment, 'assignment')}.html"


def write_atomic(path: pathlib.Path, data: bytes) -> None:
    """Write data to path so that a reader (or a crash) sees the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def sha256_file(path: pathlib.Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def grading_sha256(source: pathlib.Path, release: pathlib.Path, settings: dict) -> str:
    """Hex SHA-256 of what decides an assignment's grades: its solutions notebook (hidden tests
    included) and released notebook, the source of GRADING_MODULES, and settings (the limits)."""
    digest = hashlib.sha256()
    grading = pathlib.Path(__file__).resolve().parent
    for path in (source, release, *(grading / name for name in GRADING_MODULES)):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def save(out: pathlib.Path, record: dict) -> pathlib.Path:
    """Store one result (a dict with at least student and assignment); returns its path."""
    path = result_path(out, record["student"], record["assignment"])
    write_atomic(path, (json.dumps({"format": FORMAT, **record}, indent=1, sort_keys=True) + "\n").encode())
    return path


def load(path: pathlib.Path) -> dict | None:
    """The stored result at path, or None if there is none or it is not a result of this FORMAT."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        print(f"warning: {path} is not a readable result ({err}); it will be graded again")
        return None
    return record if isinstance(record, dict) and record.get("format") == FORMAT else None


def why_grade(record: dict | None, submission_sha256: str, grading: str, regrade: bool = False) -> str | None:
    """Why a submission must be graded given its stored result (None if that result still stands):
    "new", "changed" (another notebook), "graded under other grading source or limits", or "--regrade"."""
    if record is None:
        return "new"
    if record.get("submission_sha256") != submission_sha256:
        return "changed"
    if record.get("grading_sha256") != grading:
        return "graded under other grading source or limits"
    return "--regrade" if regrade else None


def load_all(out: pathlib.Path) -> list[dict]:
    """Every stored result under OUT/results, sorted by (student, assignment)."""
    records = []
    for path in sorted((out / "results").glob("*/*.json")):
        if path.name.endswith(".manual.json"):  # hand scores, kept beside the result (wmlib.grading.manual)
            continue
        record = load(path)
        if record is None:
            continue
        if (record.get("student"), record.get("assignment")) != (path.parent.name, path.stem):
            raise ValueError(f"{path} holds the result of {record.get('student')}/{record.get('assignment')}")
        records.append(record)
    return sorted(records, key=lambda r: (r["student"], r["assignment"]))
