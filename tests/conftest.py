import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# Chapters run in parallel, one per core (`make test` uses pytest-xdist): each worker trains and
# plans on one thread, as each notebook would on a student's small CPU.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

# Work units for the workers, heaviest first, so that two workers finish at about the same time.
# A unit is one chapter's notebook checks (they share one execution) or one test module (they
# share its module-scoped fixtures); the order never changes what a test checks.
HEAVY_FIRST = ("grading", "chapter:06", "chapter:08", "chapter:07", "chapter:05", "chapter:04", "chapter:03",
               "chapter:02", "test_book.py", "chapter:01")

# `make test-fast` leaves out every test marked slow: those of these modules, and any test that
# uses a chapter's execution or a simulator (the `env` fixtures).
SLOW_MODULES = {"test_envs.py", "test_collect.py", "test_sim_model.py", "test_book.py", "test_grading.py",
                "test_grading_chapter.py", "test_grading_class.py", "test_grading_manual.py", "test_selfcheck.py",
                "test_setup.py", "test_twin.py", "test_lab_loop.py"}
SLOW_FIXTURES = {"chapter_run", "env"}


def run_python(code: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter of this venv (own process: own imports, own env vars)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def repo() -> pathlib.Path:
    return REPO


@pytest.fixture(scope="session")
def chapter_run():
    """chapter -> its ChapterRun: each solution notebook is executed once per session and its
    kernel kept while that chapter's checks run (then shut down when the next chapter starts)."""
    from notebook_run import ChapterRun

    live = {}

    def get(chapter: str) -> ChapterRun:
        if chapter not in live:
            for other in list(live):
                live.pop(other).close()
            live[chapter] = ChapterRun(chapter)
        return live[chapter]

    yield get
    for run in live.values():
        run.close()


def work_unit(nodeid: str) -> str:
    """The unit of work a test belongs to: its chapter (tests of test_notebooks.py parametrized by
    a chapter share that chapter's execution), the grader's tests together (they check that no
    sandboxed process outlives a grading run, which another run beside them would break), or its
    module (its module-scoped fixtures)."""
    path, _, rest = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1]
    chapter = re.search(r"\[(\d\d)_", rest)
    if module == "test_notebooks.py" and chapter:
        return f"chapter:{chapter.group(1)}"
    if module.startswith("test_grading"):
        return "grading"
    return module


@pytest.hookimpl(optionalhook=True)      # a hook of pytest-xdist: no error when it is not installed
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist hands whole work units to its workers (each unit runs on one worker, in order)."""
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnits(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Mark the slow tests and put each work unit's tests together, the heavy units first."""
    rank = {unit: i for i, unit in enumerate(HEAVY_FIRST)}
    unit_of = {id(item): work_unit(item.nodeid) for item in items}
    first_seen = {}
    for item in items:
        first_seen.setdefault(unit_of[id(item)], len(first_seen))
        if item.path.name in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    # a stable sort: within a unit, tests keep their collection order
    items.sort(key=lambda item: (rank.get(unit_of[id(item)], len(rank)), first_seen[unit_of[id(item)]]))
