"""Autograde student notebooks against the hidden tests, one sandboxed kernel per submission.

    python -m wmlib.grading SUBMISSIONS [--out grades]      (`make grade SUBMISSIONS=...`)

For every submission: rebuild the notebook from the instructors' source, keeping
only the student's answers (and any cells they added), flag what was tampered
with, run it in the sandbox (``wmlib.grading.sandbox``) cell by cell with time
limits, and score each test cell from what the kernel *replied*, never from what
the notebook shows. A test cell scores only when its visible and its hidden part
both ran and passed after a clean integrity probe; a cell that never ran (time
limit, dead kernel) scores zero.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import pathlib
import shutil
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from wmlib.grading.cells import hidden_part, kind, meta, visible_part
from wmlib.grading.sandbox import (Limits, SandboxedKernelManager, prepare_workdir, end_sandbox_processes,
                                   end_stray_processes)

OUTPUT_CAP = 20_000  # characters of output kept per cell


@dataclasses.dataclass
class Submission:
    student: str
    assignment: str
    path: pathlib.Path
    origin: pathlib.Path | None = None  # the file as found, when path was unpacked from it (a zip)


def is_test(cell) -> bool:
    return kind(cell) == "test"


def is_answer(cell) -> bool:
    return kind(cell) in ("answer", "written")


# ------------------------------------------------------------------ integrity


@dataclasses.dataclass
class Plan:
    cells: list  # what runs, in order
    # per cell: (role, grade_id); role in student|locked|answer|visible|hidden|probe
    roles: list[tuple[str, str | None]]
    tests: dict[str, float]  # grade_id -> points
    flags: list[str]
    # test grade_id -> whether the student changed any answer cell between the previous test cell and it
    attempted: dict[str, bool] = dataclasses.field(default_factory=dict)
    # written (hand-graded) grade_id -> {"answer": the student's text, "points": worth, "attempted": changed}
    written: dict[str, dict] = dataclasses.field(default_factory=dict)


def plan_submission(student_nb, source_nb, release_nb, probe: str) -> Plan:
    """The notebook to run: the source's cells in the source's order, the student's answers
    in their answer cells, the student's own extra cells after the cell they followed."""
    source_cells = [c for c in source_nb.cells if meta(c).get("grade_id")]
    released = {meta(c)["grade_id"]: c for c in release_nb.cells if meta(c).get("grade_id")}
    known = {meta(c)["grade_id"] for c in source_cells}
    flags, answers, extra, seen = [], {}, {None: []}, set()
    anchor = None
    for cell in student_nb.cells:
        gid = meta(cell).get("grade_id")
        if gid in known and gid not in seen:
            seen.add(gid)
            anchor = gid
            extra.setdefault(gid, [])
            expected = released.get(gid)
            if is_answer(expected if expected is not None else cell):
                answers[gid] = cell.source
            elif expected is not None and cell.source != expected.source:
                flags.append(f"edited {'test' if is_test(expected) else 'locked'} cell {gid} (restored)")
            recorded = meta(cell).get("checksum")
            if expected is not None and recorded and recorded != meta(expected).get("checksum"):
                flags.append(f"checksum of cell {gid} altered")
            if meta(cell).get("points") != (meta(expected).get("points") if expected is not None else None):
                flags.append(f"points of cell {gid} altered (restored)")
        else:
            if gid in seen:
                flags.append(f"duplicate cell id {gid} (run as the student's own code)")
            elif gid:
                flags.append(f"unknown cell id {gid} (run as the student's own code)")
            elif meta(cell).get("grade"):
                flags.append("a cell claims to be graded without an id")
            plain = copy.deepcopy(cell)
            plain.metadata.pop("nbgrader", None)
            if plain.cell_type == "code":
                extra.setdefault(anchor, []).append(plain)
    flags += [f"deleted cell {gid} (restored)" for gid in sorted(known - seen)]
    for cell in source_cells:  # a deleted answer cell comes back as the student copy had it, never as the solution
        gid = meta(cell)["grade_id"]
        if is_answer(cell) and gid not in answers:
            answers[gid] = released[gid].source if gid in released else ""

    cells, roles, tests, attempted, changed, written = [], [], {}, {}, [], {}

    def add(cell, role, gid):
        cells.append(cell)
        roles.append((role, gid))

    for cell in extra[None]:
        add(cell, "student", None)
    for cell in source_cells:
        gid = meta(cell)["grade_id"]
        if gid in answers:
            stub = released[gid].source if gid in released else None
            changed.append(answers[gid].strip() != (stub or "").strip())
        if gid in answers and cell.cell_type == "code":
            add(nbformat.v4.new_code_cell(answers[gid]), "answer", gid)
        elif is_test(cell):
            tests[gid] = float(meta(cell).get("points", 0))
            attempted[gid] = any(changed) or not changed
            changed = []
            add(nbformat.v4.new_raw_cell(probe), "probe", gid)
            add(nbformat.v4.new_code_cell(visible_part(cell.source)), "visible", gid)
            if hidden_part(cell.source).strip():
                add(nbformat.v4.new_raw_cell(probe), "probe", gid)
                add(nbformat.v4.new_code_cell(hidden_part(cell.source)), "hidden", gid)
        elif cell.cell_type == "code" and "wmlib.selfcheck" in cell.source:
            add(nbformat.v4.new_markdown_cell("(The self-check is not run while grading: the tests above are.)"),
                "locked", gid)
        elif cell.cell_type == "code":
            add(copy.deepcopy(cell), "locked", gid)
        elif gid in answers:  # a written answer: graded by hand, shown in the feedback
            add(nbformat.v4.new_markdown_cell(answers[gid]), "answer", gid)
            written[gid] = {"answer": answers[gid], "points": float(meta(cell).get("points", 0) or 0),
                            "attempted": changed[-1]}
        else:
            add(copy.deepcopy(cell), "locked", gid)
        for own in extra.get(gid, []):
            add(own, "student", None)
    return Plan(cells, roles, tests, flags, attempted, written)


# ------------------------------------------------------------------ running


class CappedClient(NotebookClient):
    """nbclient that keeps at most OUTPUT_CAP characters of output per cell."""

    def output(self, outs, msg, display_id, cell_index):
        used = sum(len(str(o.get("text", ""))) + len(str(o.get("data", ""))) for o in outs)
        content = msg["content"]
        room = OUTPUT_CAP - used
        if room > 0 and "text" in content:
            if len(content["text"]) > room:
                content["text"] = content["text"][:room] + f"\n[output truncated after {OUTPUT_CAP} characters]\n"
            return super().output(outs, msg, display_id, cell_index)
        if room > 0 and len(str(content.get("data", ""))) <= room:
            return super().output(outs, msg, display_id, cell_index)
        if not any("[output truncated" in str(o.get("text", "")) for o in outs):
            outs.append(nbformat.v4.new_output("stream", name="stdout",
                                               text=f"\n[output truncated after {OUTPUT_CAP} characters]\n"))
        return None


def run_plan(plan: Plan, workdir: pathlib.Path, repo: pathlib.Path, limits: Limits,
             cell_timeout: float, notebook_timeout: float) -> list[str]:
    """Execute the plan's cells in a sandboxed kernel; per cell: ok | error | timeout | dead | not run."""
    prepare_workdir(workdir)
    nb = nbformat.v4.new_notebook(cells=plan.cells)
    client = CappedClient(nb, km=SandboxedKernelManager(workdir, repo, limits), timeout=cell_timeout,
                          allow_errors=False, interrupt_on_timeout=False, startup_timeout=120,
                          shutdown_kernel="immediate",
                          resources={"metadata": {"path": str(workdir)}})
    status = ["not run"] * len(nb.cells)
    deadline = time.monotonic() + notebook_timeout
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if plan.roles[i][0] == "probe":
                    end_stray_processes()  # the probe then reaps them inside the kernel
                    status[i] = run_probe(client, cell.source, min(cell_timeout, left))
                    if status[i] in ("timeout", "dead"):
                        break
                    continue
                if cell.cell_type != "code":
                    status[i] = "ok"
                    continue
                client.timeout = max(1, int(min(cell_timeout, left)))
                try:
                    client.execute_cell(cell, i)
                    status[i] = "ok"
                except CellExecutionError:
                    status[i] = "error"
                except CellTimeoutError:
                    status[i] = "timeout"
                    break
                except DeadKernelError:
                    status[i] = "dead"
                    break
    except (DeadKernelError, RuntimeError) as err:  # the kernel died at start or while shutting down
        plan.flags.append(f"kernel failure: {type(err).__name__}: {str(err)[:200]}")
    end_sandbox_processes()
    if getattr(client, "probe_findings", None):
        plan.flags.append("grading environment altered: " + client.probe_findings[0][:300])
    return status


def run_probe(client, expression: str, timeout: float) -> str:
    """Evaluate the integrity probe as a user expression: "ok" only if it returns exactly []."""
    msg_id = client.kc.execute("", silent=True, store_history=False, user_expressions={"probe": expression})
    client.timeout = max(1, int(timeout))
    try:
        reply = client.wait_for_reply(msg_id)
    except CellTimeoutError:
        return "timeout"
    except DeadKernelError:
        return "dead"
    if reply is None:
        return "timeout"
    value = reply["content"].get("user_expressions", {}).get("probe", {})
    if value.get("status") == "ok" and value.get("data", {}).get("text/plain") == "[]":
        return "ok"
    client.probe_findings = getattr(client, "probe_findings", []) + [
        value.get("data", {}).get("text/plain") or value.get("evalue") or "no answer"]
    return "error"


# ------------------------------------------------------------------ scoring and feedback


@dataclasses.dataclass
class Result:
    submission: Submission
    scores: dict[str, float]
    max_scores: dict[str, float]
    outcome: dict[str, str]
    flags: list[str]
    seconds: float
    feedback: object  # a notebook for the student
    attempted: dict[str, bool] = dataclasses.field(default_factory=dict)  # test grade_id -> answer changed
    written: dict[str, dict] = dataclasses.field(default_factory=dict)  # hand-graded answers (see Plan)

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def score(plan: Plan, status: list[str]) -> tuple[dict, dict]:
    scores, outcome = {}, {}
    for gid, points in plan.tests.items():
        parts = [(role, status[i]) for i, (role, g) in enumerate(plan.roles) if g == gid]
        probes_ok = all(s == "ok" for role, s in parts if role == "probe")
        visible = next(s for role, s in parts if role == "visible")
        hidden = next((s for role, s in parts if role == "hidden"), "ok")
        if any(s == "not run" for _, s in parts) or any(s in ("timeout", "dead") for _, s in parts):
            outcome[gid] = "not run (time limit or the kernel died before it)"
        elif not probes_ok:
            outcome[gid] = "zero: the grading environment was altered before this test"
        elif visible != "ok":
            outcome[gid] = "visible tests failed"
        elif hidden != "ok":
            outcome[gid] = "hidden tests failed"
        else:
            outcome[gid] = "passed"
        scores[gid] = points if outcome[gid] == "passed" else 0.0
    return scores, outcome


def feedback_notebook(plan: Plan, status: list[str], outcome: dict, scores: dict, flags: list[str]):
    """What the student sees: their cells and the visible tests with output; hidden tests by name only."""
    cells = []
    if flags:
        cells.append(nbformat.v4.new_markdown_cell("**Integrity flags:**\n\n" + "\n".join(f"- {f}" for f in flags)))
    for i, (cell, (role, gid)) in enumerate(zip(plan.cells, plan.roles)):
        if role == "probe":
            continue
        if role == "hidden":
            cells.append(nbformat.v4.new_markdown_cell(
                f"**Hidden tests of `{gid}`:** "
                f"{'passed' if status[i] == 'ok' else 'failed' if status[i] == 'error' else status[i]}"))
            continue
        shown = copy.deepcopy(cell)
        if role == "visible":
            cells.append(shown)
            cells.append(nbformat.v4.new_markdown_cell(
                f"**`{gid}`: {outcome[gid]}, {scores[gid]:g} / {plan.tests[gid]:g} points.**"))
            continue
        if role == "answer" and gid in plan.written:
            cells.append(shown)
            cells.append(hand_grade_cell(gid, plan.written[gid]["points"]))
            continue
        if shown.cell_type == "code" and status[i] == "not run":
            shown.outputs = [nbformat.v4.new_output("stream", name="stderr", text="[not run]\n")]
        cells.append(shown)
    return nbformat.v4.new_notebook(cells=cells)


def hand_grade_cell(gid: str, points: float, manual: dict | None = None):
    """The feedback's line under a written answer: its hand grade and comment once given (manual:
    {"points", "comment"}), "not graded yet" before. Tagged so that a later merge can rewrite it."""
    if manual is None:
        text = f"**`{gid}`: graded by hand, not graded yet ({points:g} points).**"
    else:
        text = f"**`{gid}`: graded by hand, {manual['points']:g} / {points:g} points.**"
        if manual.get("comment"):
            text += "\n\n> " + "\n> ".join(str(manual["comment"]).splitlines())
    return nbformat.v4.new_markdown_cell(text, metadata={"wmlib": {"hand_grade": gid}})


def grade_one(sub: Submission, source_nb, release_nb, probe: str, workroot: pathlib.Path, repo: pathlib.Path,
              limits: Limits, cell_timeout: float, notebook_timeout: float) -> Result:
    start = time.monotonic()
    try:
        student_nb = nbformat.read(sub.path, as_version=4)
    except Exception as err:  # not a notebook at all
        tests = {meta(c)["grade_id"]: float(meta(c).get("points", 0)) for c in source_nb.cells if is_test(c)}
        return Result(sub, {g: 0.0 for g in tests}, tests, {g: "not run" for g in tests},
                      [f"unreadable notebook: {type(err).__name__}: {str(err)[:200]}"], 0.0,
                      nbformat.v4.new_notebook(), {g: False for g in tests})
    plan = plan_submission(student_nb, source_nb, release_nb, probe)
    digest = hashlib.sha1(f"{sub.student}/{sub.assignment}".encode()).hexdigest()[:10]
    status = run_plan(plan, workroot / digest, repo, limits, cell_timeout, notebook_timeout)
    shutil.rmtree(workroot / digest, ignore_errors=True)  # the kernel and its processes have ended
    scores, outcome = score(plan, status)
    feedback = feedback_notebook(plan, status, outcome, scores, plan.flags)
    return Result(sub, scores, dict(plan.tests), outcome, plan.flags, time.monotonic() - start, feedback,
                  dict(plan.attempted), dict(plan.written))
