"""Comparisons for exercise tests that a clever return value cannot fool.

``a == b`` asks ``a`` (or, failing that, ``b``) whether they are equal, so an answer
whose ``__eq__`` always says yes passes every ``assert answer == expected``.
``same`` checks the answer's *type* first, then compares plain values only.
"""
from __future__ import annotations

import numbers

import numpy as np


def same(actual, expected, path: str = "answer") -> None:
    """Raise AssertionError unless ``actual`` has the type and value of ``expected``.

    Containers (tuple, list, dict) are compared element by element; numbers accept
    NumPy scalars; arrays must be real ndarrays with equal shape and values.
    """
    if expected is None:
        if actual is not None:
            raise AssertionError(f"{path}: expected None, got {type(actual).__name__}")
    elif isinstance(expected, bool):
        if type(actual) not in (bool, np.bool_) or bool(actual) != expected:
            raise AssertionError(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, numbers.Number):
        if isinstance(actual, bool) or type(actual) not in (int, float, np.int32, np.int64, np.float32, np.float64):
            raise AssertionError(f"{path}: expected a number, got {type(actual).__name__}")
        if not float(actual) == float(expected):
            raise AssertionError(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, str):
        if type(actual) is not str or str.__eq__(actual, expected) is not True:
            raise AssertionError(f"{path}: expected {expected!r}, got {actual!r}")
    elif isinstance(expected, (tuple, list)):
        if type(actual) is not type(expected) or len(actual) != len(expected):
            raise AssertionError(f"{path}: expected a {type(expected).__name__} of {len(expected)}, got {actual!r}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            same(a, e, f"{path}[{i}]")
    elif isinstance(expected, dict):
        if type(actual) is not dict or sorted(map(str, actual)) != sorted(map(str, expected)):
            raise AssertionError(f"{path}: expected a dict with keys {sorted(expected)}")
        for key in expected:
            same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, np.ndarray):
        same_array(actual, expected, path)
    else:
        raise TypeError(f"same() does not compare {type(expected).__name__}")


def same_array(actual, expected, path: str = "answer", atol: float = 0.0) -> None:
    """``actual`` is a real ndarray of expected's shape with equal (or, with atol, close) values."""
    if type(actual) is not np.ndarray:
        raise AssertionError(f"{path}: expected a numpy array, got {type(actual).__name__}")
    if actual.shape != np.shape(expected):
        raise AssertionError(f"{path}: expected shape {np.shape(expected)}, got {actual.shape}")
    if actual.dtype == object or np.asarray(expected).dtype == object:
        values_equal = all(type(a) is type(e) and a == e for a, e in zip(actual.ravel().tolist(),
                                                                        np.asarray(expected).ravel().tolist()))
    elif atol:
        values_equal = bool(np.allclose(actual, expected, atol=atol, rtol=0))
    else:
        values_equal = bool(np.array_equal(actual, expected))
    if not values_equal:
        raise AssertionError(f"{path}: values differ from the expected ones")
