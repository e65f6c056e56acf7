"""Planning from pixels in ManiSkill (chapter 8): a latent world model filters what the camera sees, and
chapter 5's MPPI plans in its latent.

The robot sees what a camera-based robot sees: the frame (rendered at the dataset's 128 x 128,
averaged down to 64 x 64 exactly as the training frames were) and its proprioception (joints,
joint velocities, gripper pose); never the cube's or the goal's position. Each step the model
takes in the action just sent and the frame it led to (``filter_step``); every ``replan_every``
steps MPPI searches action sequences of ``horizon`` steps in the latent, scored by the model's
predicted rewards plus, where it has one, its value at the horizon (``wmlib.models.latent``).

    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128)
    planner = LatentPlanner(model, horizon=8)
    run = play(env, planner, seed=700_000)          # run.success, run.steps, run.decision_seconds
    ranking(model, env, seeds)                      # does the model order candidate plans as the simulator does?
"""
from __future__ import annotations

import dataclasses
import time

import torch
from scipy.stats import spearmanr

from wmlib import planning, sim_model
from wmlib.data.chunks import downsample
from wmlib.data.conventions import proprio_of
from wmlib.models.latent import LatentPlanningModel, latent_cost

FRAME = 64


def observe(env, raw) -> tuple[torch.Tensor, torch.Tensor]:
    """An rgb-mode observation -> (frame (1, 64, 64, 3) uint8, proprio (1, P)), as the dataset stores them."""
    rgb = raw["rgb"][0, ..., :3].cpu().numpy()
    frame = downsample(rgb[None], FRAME, "the camera's frame")
    state, layout = env.true_state()
    proprio = proprio_of(state[0].cpu().numpy(), layout)[None]
    return torch.as_tensor(frame), torch.as_tensor(proprio, dtype=torch.float32)


class Filtering:
    """What every policy on a latent model does first each step: take in the action it sent last and the
    observation that followed (``filter_step``). Subclasses set ``model`` and choose the action in ``act``."""

    def reset(self) -> None:
        self.carry = self.model.initial(1)
        self.last_action = torch.zeros(1, self.model.action_dim)

    def take_in(self, frame, proprio) -> None:
        self.carry = self.model.filter_step(self.carry, self.last_action, frame, proprio)

    def sent(self, action: torch.Tensor) -> torch.Tensor:
        self.last_action = action[None]
        return action


@dataclasses.dataclass
class LatentPlanner(Filtering):
    """A policy that plans in a latent model's imagination: call ``reset`` at an episode's start, then
    ``act(frame, proprio)`` once per step; ``terminal_value`` adds the model's value at the horizon."""
    model: object
    horizon: int = 8
    num_samples: int = 256
    iterations: int = 2
    replan_every: int = 1
    temperature: float = 0.05
    terminal_value: bool = True
    seed: int = 0

    def __post_init__(self):
        self.planning = LatentPlanningModel(self.model)
        self.cost = latent_cost(self.model, terminal_value=self.terminal_value)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.plan, self.since = None, 0

    @torch.no_grad()
    def act(self, frame, proprio) -> torch.Tensor:
        self.take_in(frame, proprio)
        if self.plan is None or self.since >= self.replan_every:
            warm = planning.shift(self.plan, self.since) if self.plan is not None else None
            self.plan = planning.mppi(self.planning, self.cost, self.planning.state_of(self.carry),
                                      horizon=self.horizon, num_samples=self.num_samples, low=-torch.ones(4),
                                      high=torch.ones(4), iterations=self.iterations, temperature=self.temperature,
                                      mean=warm, generator=self.generator)
            self.since = 0
        self.since += 1
        return self.sent(self.plan[self.since - 1])


@dataclasses.dataclass
class ControllerPolicy(Filtering):
    """A policy that needs no planning: a controller on the model's filtered feature (World Models' C),
    ``act(frame, proprio)`` once per step after ``reset``."""
    model: object
    controller: object

    def __post_init__(self):
        self.reset()

    @torch.no_grad()
    def act(self, frame, proprio) -> torch.Tensor:
        self.take_in(frame, proprio)
        return self.sent(self.controller(self.model.feature(self.carry))[0])


@dataclasses.dataclass
class Run:
    success: bool
    steps: int
    decision_seconds: float       # mean time of one call of the policy


def play(env, policy, seed: int, max_steps: int | None = None) -> Run:
    """One episode from ``seed``: act until success or the time limit."""
    raw, _ = env.reset(seed=seed)
    policy.reset()
    steps, spent, success = 0, 0.0, False
    while max_steps is None or steps < max_steps:
        frame, proprio = observe(env, raw)
        start = time.perf_counter()
        action = policy.act(frame, proprio)
        spent += time.perf_counter() - start
        raw, _, terminated, truncated, info = env.step(action[None])
        steps += 1
        success = bool(info["success"].any())
        if success or bool(torch.as_tensor(terminated).any()) or bool(torch.as_tensor(truncated).any()):
            break
    return Run(success, steps, spent / max(steps, 1))


def true_returns(env, copy, candidates: torch.Tensor) -> torch.Tensor:
    """The simulator's summed reward of each candidate (N, H, A) from env's current state, tried in ``copy``."""
    saved = sim_model.snapshot(env)
    out = torch.zeros(len(candidates))
    for i, plan in enumerate(candidates):
        sim_model.restore(copy, saved)
        for action in plan:
            _, reward, *_ = copy.step(action[None])
            out[i] += float(reward[0])
    return out


@torch.no_grad()
def ranking(model, env, seeds, candidates: int = 16, horizon: int = 8, seed: int = 0) -> list[float]:
    """For each start, Spearman's rank correlation between the model's predicted return (its summed
    imagined rewards) and the simulator's true return over ``candidates`` random action sequences."""
    copy = sim_model.make_copy(env)
    generator = torch.Generator().manual_seed(seed)
    imagining = LatentPlanningModel(model)
    out = []
    try:
        for s in seeds:
            raw, _ = env.reset(seed=int(s))
            frame, proprio = observe(env, raw)
            carry = model.filter_step(model.initial(1), torch.zeros(1, model.action_dim), frame, proprio)
            plans = torch.rand(candidates, horizon, model.action_dim, generator=generator) * 2 - 1
            imagined = imagining.rollout(imagining.state_of(carry), plans)[0, ..., -1].sum(1)   # summed rewards
            out.append(float(spearmanr(imagined.numpy(), true_returns(env, copy, plans).numpy()).statistic))
    finally:
        copy.close()
    return out
