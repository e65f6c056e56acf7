"""Closed-loop runs of a chunking, language-conditioned pixel policy in ManiSkill (chapter 6).

The policy sees what a camera-based robot sees: the frame (rendered at the dataset's 128 x 128,
averaged down to 64 x 64 exactly as the training frames were) and the robot vector (joints,
gripper pose, and the goal position, which is part of the task it is given: PickCube's goal
marker is invisible to the camera); never the cube's pose. It answers with a chunk of K actions, of which
the first ``execute`` are sent before it is asked again (receding horizon).

    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128)
    run = play(env, model.act, "push the cube into the goal region", robot_keys, seed=500_000)
    run.success, run.steps, run.decision_seconds

Stress tests of the same loop: ``shove`` (the arm pushed off course for a few steps, as in the
dataset's recovery episodes), ``swap`` (the instruction replaced mid-episode) and
``recolour`` (the cube painted another colour: a visual change the training data never showed).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np
import torch

from wmlib.data.chunks import downsample, robot_vector

FRAME = 64


@dataclasses.dataclass
class Run:
    success: bool
    steps: int
    decisions: int
    decision_seconds: float     # mean time of one call of the policy
    actions: np.ndarray         # (T, A) the actions sent


@dataclasses.dataclass(frozen=True)
class Shove:
    """From step ``start``, ``length`` steps of one fixed push of the arm (gripper open)."""
    start: int
    length: int
    direction: tuple[float, float, float]

    @staticmethod
    def random(seed: int) -> "Shove":
        rng = np.random.default_rng(seed)
        d = rng.normal(size=3)
        return Shove(int(rng.integers(4, 10)), int(rng.integers(3, 6)), tuple(d / np.linalg.norm(d)))

    def action(self) -> np.ndarray:
        return np.r_[self.direction, 1.0].astype(np.float32)


def cube_of(env):
    task = env.unwrapped
    for name in ("obj", "cube"):
        if hasattr(task, name):
            return getattr(task, name)
    raise ValueError(f"{type(task).__name__} has no cube to recolour (looked for .obj and .cube)")


def recolour(env, rgba) -> list:
    """Paint the task's cube ``rgba`` (four numbers in [0, 1]) for the renderer; returns its old colour.

    The paint outlasts ``reset`` (it is the scene's material), so put the old colour back after use.
    """
    import sapien

    previous = None
    for entity in cube_of(env)._objs:
        body = entity.find_component_by_type(sapien.render.RenderBodyComponent)
        for shape in body.render_shapes:
            for part in shape.parts:
                previous = previous or list(part.material.base_color)
                part.material.set_base_color(list(rgba))
    return previous


def observe(env, obs: dict, robot_keys) -> tuple[np.ndarray, np.ndarray]:
    """The env's rgb observation -> frame (1, 64, 64, 3) uint8 and robot vector (1, R) (only the
    ``robot_keys`` parts of the state, as in the training data)."""
    frame = downsample(obs["rgb"][..., :3].cpu().numpy(), FRAME, "the camera frame")
    state, layout = env.true_state()
    return frame, robot_vector(state.cpu().numpy(), layout, robot_keys)


def play(env, policy: Callable, instruction: str, robot_keys, *, seed: int, execute: int = 2,
         max_steps: int = 50, shove: Shove | None = None, swap: tuple[int, str] | None = None,
         colour=None) -> Run:
    """One episode: reset with ``seed``, then ask ``policy(frames, robot, instructions) -> (1, K, A)``
    for a chunk every ``execute`` steps until success or ``max_steps``.

    swap=(t, text): from step t on, the policy is given ``text`` instead. colour: the cube's rgba.
    """
    if execute < 1:
        raise ValueError(f"execute must be at least 1, not {execute}")
    obs, _ = env.reset(seed=seed)
    if colour is None:
        return _play(env, obs, policy, instruction, robot_keys, execute, max_steps, shove, swap)
    from wmlib.envs import flatten_obs

    old = recolour(env, colour)
    try:
        obs = flatten_obs(env.unwrapped.get_obs(), "rgb")
        return _play(env, obs, policy, instruction, robot_keys, execute, max_steps, shove, swap)
    finally:
        recolour(env, old)


def _play(env, obs, policy, instruction, robot_keys, execute, max_steps, shove, swap) -> Run:
    sent, plan, spent, decisions, success = [], [], 0.0, 0, False
    for t in range(max_steps):
        if shove is not None and shove.start <= t < shove.start + shove.length:
            action, plan = shove.action(), []      # after the shove, the policy looks again
        else:
            if not plan:
                text = swap[1] if swap is not None and t >= swap[0] else instruction
                frame, robot = observe(env, obs, robot_keys)
                start = time.perf_counter()
                chunk = policy(frame, robot, np.array([text], dtype=object))
                spent += time.perf_counter() - start
                decisions += 1
                chunk = torch.as_tensor(chunk).reshape(-1, chunk.shape[-1])
                plan = [np.asarray(a.cpu(), np.float32) for a in chunk[:execute]]
            action = plan.pop(0)
        obs, _, terminated, truncated, info = env.step(torch.as_tensor(action))
        sent.append(action)
        success = bool(info["success"].any())
        if success or bool(torch.as_tensor(terminated).any()) or bool(torch.as_tensor(truncated).any()):
            break
    return Run(success, len(sent), decisions, spent / max(decisions, 1), np.stack(sent))
