"""The conventions of the course's own data, stated once: the collectors write them, the readers
and the dataset's metadata.json repeat them, and nothing else defines them.

RLDS itself records none of these, so ``metadata`` writes them beside the episodes.
"""
from __future__ import annotations

import numpy as np

# Where an episode came from: the data pyramid (metadata "source").
SOURCES = ("random", "scripted_success", "scripted_failure", "recovery")

# Proprioception: these parts of the state, concatenated in this order.
PROPRIO_KEYS = ("agent/qpos", "agent/qvel", "extra/tcp_pose")

# Actions: pd_ee_delta_pos, four numbers in [-1, 1].
ACTION_NAMES = ("dx", "dy", "dz", "gripper")
ACTION_LOW, ACTION_HIGH = (-1.0,) * 4, (1.0,) * 4
ACTION_UNITS = "normalised: x/y/z 1.0 = a 0.1 m move of the gripper target; gripper absolute"
GRIPPER_CONVENTION = "absolute: +1 open, -1 closed"
STEP_CONVENTION = ("step t holds o_t and the action a_t sent from it; "
                   "the is_last step's action, reward and discount mean nothing")


def proprio_layout(state_layout: dict[str, slice]) -> dict[str, slice]:
    """Where the proprioceptive parts of the state land in the proprio vector."""
    layout, start = {}, 0
    for key in PROPRIO_KEYS:
        width = state_layout[key].stop - state_layout[key].start
        layout[key] = slice(start, start + width)
        start += width
    return layout


def proprio_of(state: np.ndarray, state_layout: dict[str, slice]) -> np.ndarray:
    """(..., D) state -> (..., P) proprioception: joint positions, velocities, gripper pose."""
    return np.concatenate([state[..., state_layout[k]] for k in PROPRIO_KEYS], axis=-1)


def metadata(state_layout: dict[str, slice]) -> dict:
    """What a course dataset records beside its episodes: layouts, action space, conventions."""
    as_pairs = lambda lay: {k: [s.start, s.stop] for k, s in lay.items()}  # noqa: E731
    return {
        "state_layout": as_pairs(state_layout),
        "proprio_layout": as_pairs(proprio_layout(state_layout)),
        "action_names": list(ACTION_NAMES),
        "action_low": list(ACTION_LOW),
        "action_high": list(ACTION_HIGH),
        "action_units": ACTION_UNITS,
        "gripper_convention": GRIPPER_CONVENTION,
        "step_convention": STEP_CONVENTION,
    }
