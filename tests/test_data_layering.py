"""wmlib.data is the bottom layer: it imports no simulator, no model and no planner, and its
modules import one another without a cycle (../DESIGN: data -> models -> planning -> loops)."""
import ast
import pathlib

from conftest import REPO, run_python

DATA = REPO / "wmlib" / "data"
ABOVE = ("wmlib.envs", "wmlib.collect", "wmlib.scripted", "wmlib.build_dataset", "wmlib.sim_model", "wmlib.tasks",
         "wmlib.models", "wmlib.planning", "wmlib.control", "wmlib.model_based", "wmlib.eval", "wmlib.viz",
         "mani_skill", "sapien", "gymnasium")


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module a file imports, at the top or inside a function; `from wmlib import x` -> wmlib.x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {f"wmlib.data.{p.stem}": p for p in DATA.glob("*.py") if p.stem != "__init__"}
    return {name: {m for m in imports_of(path) if m in modules} for name, path in modules.items()}


def test_no_data_module_imports_a_simulator_a_model_or_a_planner():
    offending = {p.name: sorted(m for m in imports_of(p) if m.startswith(ABOVE)) for p in DATA.glob("*.py")}
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_data_modules_import_one_another_without_a_cycle():
    edges, done, path = graph(), set(), []

    def visit(module):
        assert module not in path, f"import cycle: {' -> '.join(path[path.index(module):] + [module])}"
        if module in done:
            return
        path.append(module)
        for other in edges[module]:
            visit(other)
        path.pop()
        done.add(module)

    for module in edges:
        visit(module)
    assert edges["wmlib.data.validate"] == {"wmlib.data.episodes"}, "validate needs only the episode types"


def test_the_cycle_check_can_fail():
    """The same walk on a graph with a cycle must find it (a check that cannot fail proves nothing)."""
    import pytest

    cyclic = {"a": {"b"}, "b": {"a"}}

    def visit(module, path=()):
        assert module not in path, "cycle"
        for other in cyclic[module]:
            visit(other, (*path, module))

    with pytest.raises(AssertionError, match="cycle"):
        visit("a")


def test_importing_all_of_wmlib_data_loads_no_simulator_or_model():
    modules = sorted(f"wmlib.data.{p.stem}" for p in DATA.glob("*.py") if p.stem != "__init__")
    code = ("import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
            + f"print(sorted(m for m in sys.modules if m.startswith({ABOVE!r})))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
