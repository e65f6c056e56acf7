"""Check episodes before anything learns from them; name the episode, step and field of each fault.

Bad data is never dropped or repaired here: the first fault raises ``DatasetError``.
Checks, in order: required fields present; every field as long as the episode;
at least one action; each field's per-step shape and dtype; ``is_first`` only at
step 0, ``is_last`` only at the last step, ``is_terminal`` nowhere else; no NaN or
inf; actions inside the action space. The last step's action, reward and discount
mean nothing (see ``wmlib.data.episodes``), so only their shape and dtype are checked.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from wmlib.data.episodes import DatasetError, Episode

REQUIRED = ("observation/state", "action", "reward", "discount", "is_first", "is_last", "is_terminal")
MEANINGLESS_ON_LAST_STEP = ("action", "reward", "discount")
ACTION_TOLERANCE = 1e-5


@dataclasses.dataclass
class EpisodeSpec:
    """fields: name -> (per-step shape, dtype); action bounds per dimension, or None if unbounded."""
    fields: dict[str, tuple[tuple, np.dtype]]
    action_low: np.ndarray | None = None
    action_high: np.ndarray | None = None
    required: tuple[str, ...] = REQUIRED


def dtype_matches(actual: np.dtype, expected: np.dtype) -> bool:
    if expected == np.dtype(object):  # text: str or bytes objects
        return actual == np.dtype(object) or actual.kind in "US"
    return actual == expected


def first_true(mask: np.ndarray) -> int:
    """First step index where a (T, ...) mask holds anywhere."""
    return int(np.argmax(mask.reshape(len(mask), -1).any(axis=1)))


def validate_episode(ep: Episode, spec: EpisodeSpec) -> None:
    def fail(problem, step=None, field=None):
        raise DatasetError(problem, dataset=ep.dataset, episode=ep.index, step=step, field=field)

    steps = ep.steps
    for key in dict.fromkeys((*spec.required, *spec.fields)):
        if key not in steps:
            fail("missing key", field=key)

    n = len(steps["is_last"])
    for key in spec.fields:
        if len(steps[key]) != n:
            fail(f"has {len(steps[key])} steps but is_last has {n}: fields are misaligned",
                 step=min(len(steps[key]), n), field=key)
    if n < 2:
        fail(f"has {n} step(s): an episode needs at least one action and the observation after it")

    for key, (shape, dtype) in spec.fields.items():
        array = np.asarray(steps[key])
        if tuple(array.shape[1:]) != tuple(shape):
            fail(f"each step should have shape {tuple(shape)}, got {tuple(array.shape[1:])}", field=key)
        if not dtype_matches(array.dtype, np.dtype(dtype)):
            fail(f"dtype should be {np.dtype(dtype)}, got {array.dtype}", field=key)

    expected_first = np.arange(n) == 0
    expected_last = np.arange(n) == n - 1
    for key, expected in (("is_first", expected_first), ("is_last", expected_last)):
        wrong = steps[key].astype(bool) != expected
        if wrong.any():
            t = first_true(wrong)
            fail(f"is {bool(steps[key][t])} at step {t} of {n}: it must be True at step "
                 f"{0 if key == 'is_first' else n - 1} and nowhere else", step=t, field=key)
    early_terminal = steps["is_terminal"].astype(bool) & ~expected_last
    if early_terminal.any():
        t = first_true(early_terminal)
        fail("is_terminal is True before the last step: a terminated episode ends there", step=t, field="is_terminal")

    for key, (shape, dtype) in spec.fields.items():
        if np.dtype(dtype).kind != "f":
            continue
        values = np.asarray(steps[key])
        if key in MEANINGLESS_ON_LAST_STEP:
            values = values[:-1]
        bad = ~np.isfinite(values)
        if bad.any():
            t = first_true(bad)
            dims = np.flatnonzero(bad[t].reshape(-1))
            fail(f"non-finite value {values[t].reshape(-1)[dims[0]]} at index {dims[0]}", step=t, field=key)

    if spec.action_low is not None and spec.action_high is not None:
        actions = np.asarray(steps["action"])[:-1]
        outside = (actions < spec.action_low - ACTION_TOLERANCE) | (actions > spec.action_high + ACTION_TOLERANCE)
        if outside.any():
            t = first_true(outside)
            d = int(np.flatnonzero(outside[t])[0])
            fail(f"action[{d}] = {actions[t, d]:.4g} is outside the action space "
                 f"[{spec.action_low[d]:.4g}, {spec.action_high[d]:.4g}]", step=t, field="action")


def validate_dataset(episodes: Iterable[Episode], spec: EpisodeSpec) -> int:
    """Validate every episode; return how many there were (an empty dataset is an error)."""
    count = 0
    for ep in episodes:
        validate_episode(ep, spec)
        count += 1
    if count == 0:
        raise DatasetError("the dataset has no episodes")
    return count
