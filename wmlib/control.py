"""The act / observe / correct loop: play one episode with any policy, from a chosen start.

A *policy* is a function ``policy(state (D,)) -> action (A,)`` that is handed the true state
at every step. A closed-loop controller looks at it; an open-loop replay (``replay``)
ignores it and returns the next recorded action, or None when it has run out, which ends
the episode.

    outcome = run_episode(env, controller, seed=3, start=lambda env: tasks.shift_cube(env, (0.02, 0)))
    outcome.success, outcome.steps, outcome.actions    # bool, int, (T, A)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


@dataclass
class Outcome:
    """One episode: did it succeed, in how many steps, through which states and actions."""
    success: bool
    steps: int
    states: torch.Tensor   # (T + 1, D): the start, then the state after each action
    actions: torch.Tensor  # (T, A)


def replay(actions) -> Callable:
    """An open-loop policy: the recorded actions (T, A) in order, whatever the state; then None."""
    actions = torch.as_tensor(actions if isinstance(actions, torch.Tensor) else np.asarray(actions),
                              dtype=torch.float32)
    position = iter(range(len(actions)))

    def policy(state):
        t = next(position, None)
        return None if t is None else actions[t]

    return policy


def run_episode(env, policy: Callable, *, seed: int, start: Callable | None = None,
                max_steps: int | None = None) -> Outcome:
    """Reset ``env`` with ``seed``, let ``start(env)`` change the initial state (optional), then
    act until the task succeeds, time runs out (the env's limit or ``max_steps``), or the policy
    returns None. Success is the simulator's own verdict after a step.

    The same seed and policy give the same episode only after the same history: the physics
    engine keeps a small memory of earlier contacts that ``reset`` does not clear, so an episode
    can come out slightly differently when other episodes ran before it in this env.
    """
    env.reset(seed=seed)
    if start is not None:
        start(env)
    state = env.true_state()[0][0]
    states, actions, success = [state], [], False
    while max_steps is None or len(actions) < max_steps:
        action = policy(state)
        if action is None:
            break
        action = action.float() if isinstance(action, torch.Tensor) else torch.as_tensor(np.asarray(action, np.float32))
        _, _, terminated, truncated, info = env.step(action)
        state = env.true_state()[0][0]
        states.append(state)
        actions.append(action)
        success = bool(info["success"].any())
        if success or bool(torch.as_tensor(terminated).any()) or bool(torch.as_tensor(truncated).any()):
            break
    action_dim = env.unwrapped.single_action_space.shape[0]
    return Outcome(success, len(actions), torch.stack(states),
                   torch.stack(actions) if actions else torch.zeros((0, action_dim)))


def open_vs_closed(env, seed: int, offset) -> tuple[bool, bool]:
    """One trial of chapter 2's experiment: record the scripted controller from the start of episode
    ``seed``, then move the cube by ``offset`` (x, y metres) after the reset and run both the recorded
    actions (open loop) and the controller again (closed loop). Returns (open_success, closed_success)."""
    from wmlib import scripted, tasks

    env.reset(seed=seed)                                       # the layout is known once the scene is built
    env_id, layout = env.unwrapped.spec.id, env.state_layout
    recorded = run_episode(env, scripted.controller_for(env_id, layout), seed=seed)
    shifted = lambda e: tasks.shift_cube(e, offset)  # noqa: E731
    replayed = run_episode(env, replay(recorded.actions), seed=seed, start=shifted)
    closed = run_episode(env, scripted.controller_for(env_id, layout), seed=seed, start=shifted)
    return (replayed.success, closed.success)

