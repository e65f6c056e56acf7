"""Checks, run inside the student's kernel before each graded test, that the code under
test has not rigged the machinery the tests rely on.

Student code shares the kernel with the tests, so it could replace an assert helper,
make IPython swallow errors, rewrite later cells before they run, or trace and
alter the tests. ``problems()`` looks for each of these and returns what it finds.
It compares the bytecode of every helper the tests use with a fresh compilation of
its source file on (read-only) disk, so a replaced function is caught even when it
keeps the old name.
"""
from __future__ import annotations

# The probe's own source is sent to the kernel as text, so it must not depend on
# anything the student's code could have changed before it runs: it imports what it needs.
PROBE_SOURCE = r'''
def __wmr_problems():
    import builtins, sys, types, importlib
    TRUSTED, BUILTINS, HELPERS = __TRUSTED__, __BUILTINS__, __HELPERS__
    found = []
    import os
    while True:  # reap children the grader has just ended, so they stop counting against the limits
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break

    def fresh_code(func):
        """The code object of func compiled afresh from its file, or None."""
        code = func.__code__
        try:
            with open(code.co_filename, encoding="utf-8") as f:
                module_code = compile(f.read(), code.co_filename, "exec")
        except OSError:
            return None
        stack = [module_code]
        while stack:
            c = stack.pop()
            if c.co_name == code.co_name and c.co_firstlineno == code.co_firstlineno:
                return c
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        return None

    def genuine(func, where):
        if type(func).__name__ == "_ArrayFunctionDispatcher" and type(func).__module__ == "numpy":
            func = func._implementation  # NumPy's dispatch wrapper around a Python function
        if isinstance(func, types.BuiltinFunctionType) and (func.__module__ or "").split(".")[0] == "numpy":
            return  # compiled NumPy code: cannot be redefined from Python without replacing the attribute
        if not isinstance(func, types.FunctionType):
            found.append(f"{where} is not a plain function")
            return
        if not any(func.__code__.co_filename.startswith(p) for p in TRUSTED):
            found.append(f"{where} comes from {func.__code__.co_filename}")
            return
        fresh = fresh_code(func)
        if fresh is None or fresh.co_code != func.__code__.co_code or fresh.co_consts != func.__code__.co_consts:
            found.append(f"{where} was replaced")

    for name in BUILTINS:
        value = getattr(builtins, name, None)
        if getattr(value, "__module__", None) != "builtins" or not isinstance(value, (types.BuiltinFunctionType, type)):
            found.append(f"builtins.{name} was replaced")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        found.append("a trace or profile function is set")
    if (sys.excepthook is not sys.__excepthook__
            and getattr(sys.excepthook, "__module__", "").split(".")[0] not in ("IPython", "ipykernel")):
        found.append("sys.excepthook was replaced")
    for module_name, attributes in HELPERS.items():
        module = sys.modules.get(module_name) or importlib.import_module(module_name)
        for attribute in attributes:
            genuine(getattr(module, attribute, None), f"{module_name}.{attribute}")

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    for name in ("run_cell", "run_cell_async", "run_ast_nodes", "run_code", "showtraceback", "_showtraceback",
                 "transform_cell", "transform_ast", "should_run_async", "showsyntaxerror"):
        own = vars(shell).get(name)
        if own is not None and getattr(own, "__func__", None) is not getattr(type(shell), name, None):
            found.append(f"IPython's {name} was replaced")
        else:
            method = getattr(type(shell), name, None)
            if method is not None and not method.__module__.startswith(("IPython.", "ipykernel.")):
                found.append(f"IPython's {name} was replaced")
    kernel = getattr(shell, "kernel", None)
    for name in ("do_execute", "execute_request", "send_response", "_publish_status"):
        if kernel is None:
            break
        own = vars(kernel).get(name)
        if (own is not None and getattr(own, "__func__", None) is not getattr(type(kernel), name, None)) or \
                not getattr(type(kernel), name).__module__.startswith("ipykernel."):
            found.append(f"the kernel's {name} was replaced")
    if kernel is not None and "session" in vars(kernel) and type(kernel.session).__module__ != "jupyter_client.session":
        found.append("the kernel's session was replaced")
    if shell.ast_transformers:
        found.append("IPython ast_transformers were added")
    for name in ("input_transformers_cleanup", "input_transformers_post"):
        for transformer in getattr(shell, name):
            module = getattr(transformer, "__module__", "") or ""
            if not module.startswith("IPython."):
                found.append(f"IPython {name} were changed")
    for event, callbacks in shell.events.callbacks.items():
        for callback in callbacks:
            module = getattr(callback, "__module__", "") or ""
            if not module.split(".")[0] in ("IPython", "ipykernel", "matplotlib_inline", "ipywidgets",
                                            "matplotlib", "comm"):
                found.append(f"a {event} event callback was added")
    if shell.user_ns.get("__builtins__", builtins) not in (builtins, builtins.__dict__):
        found.append("the notebook's __builtins__ was replaced")
    return found
'''

BUILTINS = ("isinstance", "type", "len", "print", "range", "abs", "all", "any", "sorted", "zip", "enumerate", "min",
            "max", "sum", "__import__", "exec", "eval", "getattr", "hasattr", "iter", "next", "repr", "list", "tuple",
            "dict", "set", "int", "float", "str", "bool", "object", "AssertionError", "Exception", "BaseException")
HELPERS = {
    "numpy.testing": ("assert_array_equal", "assert_allclose", "assert_equal", "assert_array_almost_equal"),
    "numpy": ("array_equal", "allclose", "isclose", "any", "all", "asarray", "flatnonzero"),
    "wmlib.grading.checks": ("same", "same_array"),
    "copy": ("deepcopy",),
}


def probe_expression(trusted_prefixes: list[str]) -> str:
    """A Python *expression* whose value is the list of problems found (empty when clean).

    The grader sends it as an execute request's ``user_expressions``, which IPython
    evaluates directly: no cell transformer, hook or replaced ``run_cell`` stands
    between it and the kernel, and the grader requires the value ``[]`` back.
    """
    body = (PROBE_SOURCE.replace("__TRUSTED__", repr(list(trusted_prefixes)))
            .replace("__BUILTINS__", repr(BUILTINS)).replace("__HELPERS__", repr(HELPERS)))
    return (f"(lambda b, ns: b.exec(b.compile({body!r}, '<grading probe>', 'exec'), ns) "
            "or ns['__wmr_problems']())(__import__('builtins'), {'get_ipython': get_ipython})")
