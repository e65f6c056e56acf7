"""nbgrader: instructors' source notebooks in solutions/, the student release in course/."""
import pathlib

c = get_config()  # noqa: F821  (provided by nbgrader)

ROOT = pathlib.Path(__file__).resolve().parent
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
# Graded answers of instructors live outside the repository (see `make grade`).
c.CourseDirectory.db_url = f"sqlite:///{ROOT / '.nbgrader' / 'gradebook.db'}"
# The student copy keeps no outputs, so it is the same whoever generates it.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
