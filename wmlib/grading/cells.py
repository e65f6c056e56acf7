"""What kind of cell a notebook cell is, and which of its lines are hidden: the one rule that the
grader, the self-check, the book build and the tests all use.

A cell's role comes from nbgrader's metadata (``cell.metadata["nbgrader"]``):

==============  ===============================================  ==========================
kind            metadata                                         what happens to it
==============  ===============================================  ==========================
``"answer"``    ``solution`` on a code cell                      the student writes it
``"written"``   ``solution`` on a markdown cell                  graded by hand
``"test"``      ``grade`` and not ``solution``, on a code cell   autograded, worth ``points``
``"locked"``    any other cell with a ``grade_id``               restored if edited
``"plain"``     no nbgrader metadata                             the student's own, or prose
==============  ===============================================  ==========================

Regions inside a cell follow nbgrader's own rule (``ClearSolutions`` and ``ClearHiddenTests``,
what ``make release`` runs), so that every tool hides exactly what the student copy hides: a line
that *contains* ``BEGIN HIDDEN TESTS`` opens a hidden region, whatever else is on it (``###
BEGIN HIDDEN TESTS: edge cases`` opens one too), a line containing ``END HIDDEN TESTS`` closes
it, and both marker lines belong to neither part. The same holds for ``BEGIN SOLUTION`` /
``END SOLUTION``. A region that is opened twice or never closed is an error naming the cell.
"""
from __future__ import annotations

BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)


def meta(cell) -> dict:
    """The cell's nbgrader metadata ({} if none); works on nbformat nodes and plain dicts."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def source(cell) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def kind(cell) -> str:
    """"answer" | "written" | "test" | "locked" | "plain" (see the module's table)."""
    m, code = meta(cell), cell.get("cell_type") == "code"
    if m.get("solution"):
        return "answer" if code else "written"
    if m.get("grade") and code:
        return "test"
    return "locked" if m.get("grade_id") else "plain"


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def points(cell) -> float:
    """Points of a graded cell (0 for any other)."""
    return float(meta(cell).get("points", 0) or 0) if meta(cell).get("grade") else 0.0


def split_region(text: str, begin: str, end: str, where: str = "a cell") -> tuple[str, str]:
    """(lines outside the begin/end regions, lines inside them), marker lines dropped."""
    outside, inside, is_inside = [], [], False
    for number, line in enumerate(text.split("\n"), start=1):
        if begin in line:
            if is_inside:
                raise ValueError(f"{where}, line {number}: '{begin}' inside a region that is already open")
            is_inside = True
        elif end in line:
            is_inside = False
        else:
            (inside if is_inside else outside).append(line)
    if is_inside:
        raise ValueError(f"{where}: '{begin}' is never closed by '{end}'")
    return "\n".join(outside), "\n".join(inside)


def visible_part(text: str, where: str = "a test cell") -> str:
    """A test cell's source as the student copy has it: hidden regions and their markers removed."""
    return split_region(text, BEGIN_HIDDEN, END_HIDDEN, where)[0]


def hidden_part(text: str, where: str = "a test cell") -> str:
    """Only the lines inside hidden regions ("" if there are none)."""
    return split_region(text, BEGIN_HIDDEN, END_HIDDEN, where)[1]


def secret_lines(cell) -> list[str]:
    """Non-blank lines a student copy must not contain: solution and hidden-test regions, and the whole
    text of a written answer (its source is the instructors' model answer)."""
    text, where = source(cell), f"cell {grade_id(cell) or '(no id)'}"
    if kind(cell) in ("answer", "written") and BEGIN_SOLUTION not in text:   # nbgrader replaces it whole
        lines = text.split("\n")
    else:
        lines = (split_region(text, BEGIN_SOLUTION, END_SOLUTION, where)[1].split("\n")
                 + split_region(text, BEGIN_HIDDEN, END_HIDDEN, where)[1].split("\n"))
    return [line for line in lines if line.strip()]
