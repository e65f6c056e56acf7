# World Models for Robots: the two commands are `make lab` and `make test`.
# Each runs `setup` first, which is idempotent: a second run only checks (a few seconds).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Extra arguments for pip, e.g. PIP_ARGS="--index-url <PyTorch CUDA or CPU wheel index>"
PIP_ARGS ?=
# Extra arguments for JupyterLab, e.g. LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
# Extra arguments for pytest, e.g. TEST_ARGS="-k envs -x"
TEST_ARGS ?=
# Test workers: one per core. Each chapter's notebook runs once, on one worker, with its checks.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(BIN)/python -m pytest -n $(JOBS) --no-loadscope-reorder
# Jupyter refuses to run as root unless told; containers and CI often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help setup system browser venv lab test test-fast lint dataset fixture release grade grade-merge student-edition book book-instructor book-screenshots
.DEFAULT_GOAL := help

help:
	@echo "make lab      set up everything, then open JupyterLab on course/"
	@echo "make test     set up everything, then run every test (JOBS=N workers, default: one per core)"
	@echo "make test-fast  the linter and every test that executes no notebook and starts no simulator"
	@echo "make lint     ruff on the whole tree"
	@echo "make setup    only the set-up: system packages where missing (Vulkan driver, libGL, bubblewrap) and .venv"
	@echo "make dataset  build the default RLDS dataset under datasets/ (kept if already built)"
	@echo "make fixture  rebuild the small test dataset under datasets/fixture/"
	@echo "make release  instructors: regenerate the student notebooks in course/ from solutions/ (nbgrader)"
	@echo "make grade SUBMISSIONS=dir [OUT=grades] [JOBS=N] [SHARD=K/N] [ANONYMISE=1]  instructors: autograde what is new or changed, N kernels at once; export the hand-graded answers to OUT/manual/"
	@echo "make grade-merge MANUAL='a.csv b.csv' [OUT=grades]  instructors: merge filled hand-grading CSVs into the grades and feedback"
	@echo "make student-edition DEST=dir  instructors: what students are given (notebooks, wmlib, dataset recipe, safe tests; no solutions)"
	@echo "make book     the course site, offline (student build: no solutions) -> book/_build/student/_build/html"
	@echo "make book-instructor  the same site with solutions and hidden tests -> book/_build/instructor/_build/html"
	@echo "make book-screenshots  both builds, then headless-Chromium screenshots of every page"

setup: system venv
	@echo "[setup] ready: $(BIN)/python ($$($(BIN)/python -c 'import wmlib, torch; print("wmlib", wmlib.__version__, "| torch", torch.__version__, "| device", wmlib.device())'))"

system:
	@bash wmlib/setup_system.sh

# Chromium, only for the book's screenshot check (`make test` and `make book-screenshots`).
browser:
	@bash wmlib/setup_system.sh browser

venv: $(VENV)/.installed

# Reinstall only when the package's requirements change.
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "[setup] $(PYTHON) not found: the course needs Python 3.11 (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(BIN)/python || { echo "[setup] creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "[setup] installing wmlib and its pinned stack into $(VENV) (first time: a few minutes)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q $(PIP_ARGS) -e '.[hardware,book,test]'
	@$(BIN)/python -m pip check
	@touch $@

dataset: setup
	@$(BIN)/python -m wmlib.build_dataset --out datasets

fixture: setup
	@rm -rf datasets/fixture
	@$(BIN)/python -m wmlib.build_dataset --out datasets/fixture --seed 7 --workers 1 \
		--episodes random=1,scripted_success=1,scripted_failure=1,recovery=1

# Student copies: solutions removed, hidden tests removed, outputs cleared.
release: setup
	@for dir in solutions/*/; do \
		name=$$(basename $$dir); \
		if [ -z "$(FORCE)" ] && [ -n "$$(git status --porcelain -- course/$$name 2>/dev/null)" ]; then \
			echo "[release] course/$$name has uncommitted changes (a student's work?): commit or move them, or run make release FORCE=1"; exit 1; \
		fi; \
		echo "[release] course/$$name from solutions/$$name"; \
		$(BIN)/nbgrader generate_assignment "$$name" --force --no-db --log-level=WARN || exit 1; \
	done

OUT ?= grades
# Kernels at once: JOBS only when given (make grade ... JOBS=2); its default above counts cores for the tests.
GRADE_JOBS = $(if $(filter command line environment,$(origin JOBS)),$(JOBS),1)
GRADE_ARGS ?=
grade: setup dataset
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder of submissions> [OUT=grades] [JOBS=N] [SHARD=K/N] [ANONYMISE=1] [GRADE_ARGS=--regrade]"; exit 2; }
	@$(BIN)/python -m wmlib.grading "$(SUBMISSIONS)" --out "$(OUT)" --jobs "$(GRADE_JOBS)" $(if $(SHARD),--shard "$(SHARD)") $(if $(ANONYMISE),--anonymise) $(GRADE_ARGS)

# Hand grades: the CSVs `make grade` exported to OUT/manual/<assignment>/<grade id>.csv, filled in.
grade-merge: setup
	@test -n "$(MANUAL)" || { echo "usage: make grade-merge MANUAL='<filled csv> ...' [OUT=grades]"; exit 2; }
	@$(BIN)/python -m wmlib.grading --manual $(MANUAL) --out "$(OUT)" $(if $(ANONYMISE),--anonymise)

# What students are given: course/, wmlib, the dataset recipe, the student-safe tests; no solutions.
student-edition: setup
	@test -n "$(DEST)" || { echo "usage: make student-edition DEST=<new or empty folder>"; exit 2; }
	@$(BIN)/python -m wmlib.grading.edition "$(DEST)"

lab: setup dataset
	@echo "[lab] JupyterLab on course/ (Ctrl-C to stop)"
	@$(BIN)/jupyter lab --ServerApp.root_dir=course $(ROOT_FLAG) $(LAB_ARGS)

# The site shows the outputs committed in solutions/; it executes nothing.
book: setup
	@$(BIN)/python book/build.py student

book-instructor: setup
	@$(BIN)/python book/build.py instructor

book-screenshots: book book-instructor browser
	@$(BIN)/python book/screenshots.py book/_build/student/_build/html
	@$(BIN)/python book/screenshots.py book/_build/instructor/_build/html

lint: setup
	@$(BIN)/ruff check .

# Every solution notebook is executed once, by tests/test_notebooks.py (it needs the default dataset).
test: setup dataset browser lint
	@$(PYTEST) tests $(TEST_ARGS)

test-fast: setup lint
	@$(PYTEST) -m "not slow" tests $(TEST_ARGS)
