"""How `make test` shares work between its workers (tests/conftest.py): one execution per chapter
needs every check of a chapter on one worker, and a module's tests share its fixtures."""
from conftest import HEAVY_FIRST, REPO, work_unit


def test_a_chapters_checks_form_one_unit_whatever_the_check():
    ids = ["tests/test_notebooks.py::test_solution_notebook_runs_every_cell_and_prints_what_it_committed[05_planning]",
           "tests/test_notebooks.py::test_wrong_answer_passes_visible_tests_but_fails_hidden_ones[05_planning-ex1_cem]",
           "tests/test_notebooks.py::test_released_stub_fails_its_test_cell_with_not_implemented[05_planning-ex4_x]"]
    assert {work_unit(nodeid) for nodeid in ids} == {"chapter:05"}
    assert work_unit("tests/test_notebooks.py::test_wrong_answer[01_episodes-ex1]") == "chapter:01"


def test_other_tests_form_one_unit_per_module():
    assert work_unit("tests/test_book.py::test_student_site_has_no_solution_and_no_hidden_test[05_planning]") \
        == "test_book.py"
    assert work_unit("tests/test_notebooks.py::test_committed_course_is_exactly_the_release_of_the_solutions") \
        == "test_notebooks.py"



def test_the_graders_tests_form_one_unit_since_each_checks_that_no_sandboxed_process_survives():
    for module in ("test_grading.py", "test_grading_class.py", "test_grading_chapter.py"):
        assert work_unit(f"tests/{module}::test_x[loop]") == "grading"


def test_every_heavy_unit_named_for_ordering_exists():
    assert len(set(HEAVY_FIRST)) == len(HEAVY_FIRST)
    modules = {p.name for p in (REPO / "tests").glob("test_*.py")}
    assert all(unit.startswith("chapter:") or unit == "grading" or unit in modules for unit in HEAVY_FIRST)
    chapters = {f"chapter:{p.name[:2]}" for p in (REPO / "solutions").iterdir() if p.is_dir() and p.name[:2].isdigit()}
    assert {u for u in HEAVY_FIRST if u.startswith("chapter:")} <= chapters
