"""Episodes as arrays, and the error that names where bad data was found.

An ``Episode`` holds one RLDS episode as NumPy arrays keyed by flat field names
(``"observation/state"``, ``"action"``, ``"is_last"``, ...), each with the step
axis first: ``steps["observation/state"]`` is ``(T + 1, D)`` for an episode of T
actions. Conventions (the same for every dataset the course reads):

- step t holds observation o_t and the action a_t sent from it, and the reward
  that action earned;
- the last step (``is_last``) holds the final observation o_T only: its action,
  reward and discount mean nothing and never enter a target or a statistic;
- ``is_last`` without ``is_terminal`` is a truncation (time ran out), not a
  termination: the world would have gone on.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

STEP_FIELDS = ("observation/state", "action", "reward", "discount", "is_first", "is_last", "is_terminal",
               "language_instruction")


class DatasetError(ValueError):
    """Bad data, with the dataset, episode, step and field it was found in."""

    def __init__(self, problem: str, dataset: str = "", episode: int | None = None, step: int | None = None,
                 field: str | None = None):
        self.problem, self.dataset, self.episode, self.step, self.field = problem, dataset, episode, step, field
        where = [f"dataset {dataset!r}" if dataset else "", f"episode {episode}" if episode is not None else "",
                 f"step {step}" if step is not None else "", f"field {field!r}" if field else ""]
        super().__init__(", ".join(w for w in where if w) + f": {problem}")


@dataclasses.dataclass
class Episode:
    steps: dict[str, np.ndarray]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    index: int = 0
    dataset: str = ""

    def __len__(self) -> int:
        """Number of steps, T + 1 (the last holds only the final observation)."""
        return len(self.steps["is_last"])

    @property
    def num_actions(self) -> int:
        """T: the steps whose action means something."""
        return len(self) - 1

    @property
    def terminated(self) -> bool:
        return bool(self.steps["is_terminal"][-1])

    @property
    def language(self) -> str | None:
        """The task instruction, or None when the episode is unlabelled (empty text is no task)."""
        text = self.steps["language_instruction"][0] if "language_instruction" in self.steps else ""
        return text or None

    def __repr__(self) -> str:
        source = self.metadata.get("source", "?")
        success = self.metadata.get("success")
        return f"Episode({self.dataset}#{self.index}, {len(self)} steps, source={source}, success={success})"
