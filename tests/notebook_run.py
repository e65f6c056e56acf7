"""One execution of a chapter's solution notebook per test session, its kernel kept alive so that
every notebook check of that chapter (checked outputs, wrong answers, stubs) reuses it.

    run = ChapterRun("05_planning")     # executes every cell once, stops at the first error
    run.failure                         # None, or which cell failed and how
    run.executed                        # the notebook as executed (outputs of this run)
    run.run("x = 1")                    # more code in the same kernel -> Outcome
    run.close()

Set WMLIB_EXECUTION_LOG to a file and every execution appends a line to it
(``benchmarks/suite.py`` counts executions per notebook that way).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import pathlib
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from wmlib.grading import cells

REPO = pathlib.Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
CELL_TIMEOUT = 300          # seconds; the chapter budget is 180 for the whole notebook
CHECK_OUTPUT = "check-output"   # the tag of cells whose outputs must match the committed ones


@dataclasses.dataclass
class Outcome:
    ename: str | None      # the exception's class name, None if the code ran
    evalue: str
    stdout: str

    def __str__(self):
        return f"{self.ename}: {self.evalue}" if self.ename else "ran without error"


def label(cell, index: int) -> str:
    first = next((line for line in cells.source(cell).splitlines() if line.strip()), "")
    return f"cell {index} ({cells.grade_id(cell) or first[:60]!r})"


class ChapterRun:
    def __init__(self, chapter: str, folder: pathlib.Path = SOLUTIONS):
        self.chapter = chapter
        self.path = folder / chapter / f"{chapter}.ipynb"
        self.committed = nbformat.read(self.path, as_version=4)
        nb = copy.deepcopy(self.committed)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self.client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(self.path.parent)}})
        self.client.create_kernel_manager()
        self.client.start_new_kernel()
        self.client.start_new_kernel_client()
        self.failure: str | None = None
        start = time.monotonic()
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                self.client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
                self.failure = f"{self.chapter}: {label(cell, index)} failed: {str(error)[-3000:]}"
                break
        self.seconds = time.monotonic() - start
        self.executed = copy.deepcopy(nb)
        if os.environ.get("WMLIB_EXECUTION_LOG"):
            with open(os.environ["WMLIB_EXECUTION_LOG"], "a") as log:
                log.write(json.dumps({"notebook": str(self.path.relative_to(REPO)), "seconds": round(self.seconds, 1),
                                      "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                      "failed": self.failure is not None}) + "\n")

    def run(self, code: str, timeout: float = CELL_TIMEOUT) -> Outcome:
        """Run code in the chapter's live kernel (after the whole notebook) and say how it ended."""
        cell = nbformat.v4.new_code_cell(code)
        nb = self.client.nb
        nb.cells.append(cell)
        self.client.allow_errors, self.client.timeout = True, timeout
        try:
            self.client.execute_cell(cell, len(nb.cells) - 1)
        finally:
            nb.cells.pop()
            self.client.allow_errors, self.client.timeout = False, CELL_TIMEOUT
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        stdout = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
        return Outcome(error.ename if error else None, error.evalue if error else "", stdout)

    def close(self):
        if getattr(self.client, "km", None) is not None:
            self.client._cleanup_kernel()


def shown_outputs(cell) -> list[str]:
    """What a reader sees of a cell's outputs, in a form two runs can be compared by: stdout
    (streams joined, however the kernel chunked them), plain-text results and errors. stderr
    (warnings, progress bars) and images are not compared."""
    shown, stdout = [], ""
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            stdout += output.text if output.name == "stdout" else ""
            continue
        if stdout:
            shown.append(stdout)
            stdout = ""
        if output.output_type == "error":
            shown.append(f"{output.ename}: {output.evalue}")
        elif "text/plain" in output.get("data", {}):
            shown.append(output.data["text/plain"])
    return shown + ([stdout] if stdout else [])


def output_differences(committed, executed) -> list[str]:
    """Cells tagged check-output whose outputs differ between the committed notebook and a new run."""
    found = []
    for index, (old, new) in enumerate(zip(committed.cells, executed.cells)):
        if CHECK_OUTPUT in old.metadata.get("tags", []) and shown_outputs(old) != shown_outputs(new):
            found.append(f"{label(old, index)}: committed {shown_outputs(old)!r:.300} but this run printed "
                         f"{shown_outputs(new)!r:.300}")
    return found
