"""Grading several submissions at once (``--jobs N``): N worker processes, each with one sandboxed kernel.

The pool is the standard library's ``ProcessPoolExecutor``. Workers are processes, not threads,
because as root each grading process claims a sandbox user id of its own
(``sandbox.sandbox_uid``) and kills every process of that id after a submission: one id per
worker keeps the workers from counting or ending each other's kernels. Each worker grades a
submission, writes its feedback and then its result (``wmlib.grading.store``), so a result is
on disk the moment it is graded, whatever happens to the others. A worker dies with the grader
(``PR_SET_PDEATHSIG``), and its kernel with it (bubblewrap's ``--die-with-parent``), so a killed
grader leaves nothing running that could store a result behind a restarted one.

Memory: every kernel runs under the sandbox's address-space limit (``--memory-gb``, 4 GiB by
default). N kernels at once may hold N times that, so ``check_jobs`` refuses an N whose total
the machine's available memory cannot hold.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import pathlib
import socket
import time

from wmlib.grading import manual, store
from wmlib.grading.grader import Submission, grade_one
from wmlib.grading.sandbox import SANDBOX_UIDS, Limits

GIB = 1 << 30


def available_memory() -> int:
    """Bytes of memory the machine can give new processes without swapping (MemAvailable on Linux)."""
    try:
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_jobs(jobs: int, memory_bytes: int, available: int | None = None, as_root: bool | None = None) -> None:
    """Refuse (ValueError) a number of parallel kernels whose memory limits together exceed the
    available memory. One kernel is always allowed: its limit is a ceiling, not a reservation.
    More than one needs root: as a normal user every kernel runs under the user's own id, whose
    process count they share, so one submission's fork bomb could starve its neighbours' tests."""
    if jobs < 1:
        raise ValueError(f"JOBS={jobs}: at least one kernel is needed")
    as_root = os.geteuid() == 0 if as_root is None else as_root
    if jobs > 1 and not as_root:
        raise ValueError(f"JOBS={jobs} needs root: as a normal user the kernels share your user id and its process "
                         "limit, so one submission could starve the others; grade with JOBS=1, or as root")
    available = available_memory() if available is None else available
    need = jobs * memory_bytes
    if jobs > 1 and need > available:
        fits = max(1, available // memory_bytes)
        raise ValueError(
            f"JOBS={jobs} needs {jobs} x {memory_bytes / GIB:.1f} GiB = {need / GIB:.1f} GiB (each kernel's memory "
            f"limit, --memory-gb), but this machine has {available / GIB:.1f} GiB available: use JOBS={fits} or "
            f"fewer, or a lower --memory-gb")
    if jobs > len(SANDBOX_UIDS):
        raise ValueError(f"JOBS={jobs}: one machine has {len(SANDBOX_UIDS)} sandbox user ids (WMR_SANDBOX_UID), "
                         f"so at most {len(SANDBOX_UIDS)} kernels at once")


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every submission of a run is graded with."""
    course: pathlib.Path  # holds solutions/ and course/
    repo: pathlib.Path  # the checkout whose wmlib and datasets the kernels see
    out: pathlib.Path  # results/ and feedback/ go here
    workroot: pathlib.Path  # kernels' working folders, one per submission
    probe: str
    limits: Limits
    cell_timeout: float
    notebook_timeout: float
    run: str  # names this run in every result it stores


@dataclasses.dataclass(frozen=True)
class Task:
    submission: Submission
    origin: str  # the file as found in the submissions folder (a zip for an unpacked notebook)
    submission_sha256: str
    grading_sha256: str


_notebooks: dict = {}  # (folder, assignment) -> notebook, read once per process


def notebook(course: pathlib.Path, folder: str, assignment: str):
    import nbformat

    key = (course, folder, assignment)
    if key not in _notebooks:
        _notebooks[key] = nbformat.read(course / folder / assignment / f"{assignment}.ipynb", as_version=4)
    return _notebooks[key]


def grade_and_store(setup: Setup, task: Task) -> dict:
    """Grade one submission, write its feedback and then its result; returns the stored result."""
    sub = task.submission
    result = grade_one(sub, notebook(setup.course, "solutions", sub.assignment),
                       notebook(setup.course, "course", sub.assignment), setup.probe, setup.workroot, setup.repo,
                       setup.limits, setup.cell_timeout, setup.notebook_timeout)
    feedback = manual.write_feedback(setup.out, sub.student, sub.assignment, result.feedback, result.written)
    record = {
        "student": sub.student, "assignment": sub.assignment, "scores": result.scores,
        "max_scores": result.max_scores, "outcome": result.outcome, "attempted": result.attempted,
        "written": result.written, "flags": result.flags, "seconds": round(result.seconds, 2),
        "feedback": feedback.relative_to(setup.out).as_posix(), "file": task.origin,
        "submission_sha256": task.submission_sha256, "grading_sha256": task.grading_sha256,
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": setup.run, "host": socket.gethostname(),
    }
    store.save(setup.out, record)
    return record


def _die_with_parent(parent: int) -> None:
    """Worker start-up: be killed when the grader dies (Linux), and stop at once if it already has."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def grade_all(setup: Setup, tasks: list[Task], jobs: int):
    """Grade tasks on jobs processes (in this process when jobs is 1), yielding (task, record or
    exception) as each finishes. An exception is the grader's own failure: no result is stored
    for that submission, and the others go on."""
    if jobs == 1:
        for task in tasks:
            try:
                yield task, grade_and_store(setup, task)
            except Exception as err:  # noqa: BLE001 (reported, never stored)
                yield task, err
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_die_with_parent,
                                                initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(grade_and_store, setup, task): task for task in tasks}
        try:
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
