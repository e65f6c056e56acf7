"""The actor: acts at a fixed rate behind the safety layer, records every step, feeds replay.

The lab's task works on the twin and on a real arm alike, since it needs no object perception:
*reach a point*. Each episode draws a goal point in the workspace (the tool point of a random
reachable joint configuration) and ends when the tool is within ``reach`` metres of it, or after
``max_steps``. The policy plans with the learner's joint-dynamics model: random shooting over
``candidates`` sequences of target changes, each rolled out ``horizon`` steps in the model and
scored by the distance of its predicted tool point to the goal (the arm's own kinematics). Before
the first checkpoint arrives it explores: a random walk of targets.

Per step: read the model checkpoint if ``reload_every`` seconds have passed (a missing or
unreadable checkpoint keeps the last good model: the learner may be down), propose, pass the
safety layer (``Guarded``), record the *executed* target (and the proposal, and the reasons),
wait for the next period (``Rate``). Per episode: finalise it on disk, then insert it into
replay (from a courier thread, so the loop never waits on the network); an episode replay
did not take stays in the outbox and goes when replay is back.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import numpy as np
import torch

from hardware import learner
from hardware.guard import Guarded, Operator, OperatorReset, SafetyStop
from hardware.recorder import EpisodeWriter
from hardware.replay import Courier, Outbox, Replay
from hardware.safety import Config
from hardware.timing import Rate
from wmlib.data import Episode

INSTRUCTION = "move the gripper to the point"


@dataclasses.dataclass
class Planner:
    """Random shooting with a joint-dynamics model through the arm's forward kinematics."""

    tool_position: callable
    lower: np.ndarray
    upper: np.ndarray
    max_step: float = 0.05
    candidates: int = 128
    horizon: int = 4
    seed: int = 0

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, model, q: np.ndarray, reference: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Measured joints q (J,) and the last executed target (J,) -> the next target (J,): the
        first step of the candidate whose predicted tool point ends nearest the goal."""
        n, h, j = self.candidates, self.horizon, len(q)
        steps = self.rng.uniform(-self.max_step, self.max_step, (n, h, j))
        steps[0] = 0                                                            # standing still is a candidate
        with torch.no_grad():
            state = torch.as_tensor(q, dtype=torch.float32).expand(n, j)
            target = torch.as_tensor(reference, dtype=torch.float32).expand(n, j)
            for t in range(h):
                target = torch.clamp(target + torch.as_tensor(steps[:, t], dtype=torch.float32),
                                     torch.as_tensor(self.lower, dtype=torch.float32),
                                     torch.as_tensor(self.upper, dtype=torch.float32))
                state = model(state, target)
        cost = np.linalg.norm(self.tool_position(state.numpy().astype(np.float64)) - goal, axis=-1)
        return np.clip(reference + steps[int(np.argmin(cost)), 0], self.lower, self.upper)


def goal_for(robot, config: Config, rng) -> np.ndarray:
    """A reachable goal: the tool point of random joints, kept if inside the workspace box."""
    lim = robot.limits
    for _ in range(1000):
        q = rng.uniform(lim.lower * 0.6, lim.upper * 0.6)
        point = robot.tool_position(q)
        if config.workspace.contains(point):
            return point
    raise ValueError(f"no reachable point inside the workspace box {config.workspace}: check the box")


def episode_of(states, executed, proposed, rewards, episode_id: int, success: bool) -> Episode:
    """What the actor just recorded, as the Episode replay takes (same fields as on disk)."""
    actions = np.concatenate([executed, np.zeros_like(executed[:1])])
    return Episode({"observation/state": np.asarray(states), "action": actions,
                    "action_proposed": np.concatenate([proposed, np.zeros_like(proposed[:1])]),
                    "reward": np.append(rewards, 0.0)}, {"episode_id": episode_id, "success": success})


def run(robot, config: Config, root, replay: Replay, learner_dir, minutes: float, max_steps: int = 60,
        reach: float = 0.03, reload_every: float = 5.0, seed: int = 0, operator: Operator | None = None,
        log=print, rules: dict | None = None) -> dict:
    """Act for ``minutes``; return a report (episodes, successes, rate misses, interventions). After each
    episode, a line of progress goes to ``actor.jsonl`` beside ``root``, so a killed actor's count is kept.

    rules: replacements for the safety and timing rules, by name: ``clamp`` and ``keep_in`` (the
    safety layer's ``clamp_target`` and ``workspace_filter``), ``decide`` (the watchdog's
    ``watchdog_state``), ``next_deadline`` (the rate's); chapter 7 runs the loop on a student's."""
    rng = np.random.default_rng(seed)
    lim = robot.limits
    planner = Planner(robot.tool_position, lim.lower, lim.upper, config.max_step if np.isscalar(config.max_step)
                      else float(np.min(config.max_step)), seed=seed)
    root = pathlib.Path(root)
    writer = EpisodeWriter(root, joint_names=lim.names, control_freq=robot.control_freq, robot=robot.name)
    outbox = Outbox(root / "replayed.txt")
    rules = rules or {}
    rate = Rate(robot.control_freq, next_deadline=rules.get("next_deadline"))
    model, version, last_load = None, -1, -np.inf
    report = {"episodes": [], "reloads": 0, "unsent_at_end": 0}
    end_time = time.monotonic() + 60 * minutes
    courier = Courier(replay, outbox, root)
    try:
        with Guarded(robot, config, operator=operator, rules=rules) as arm, writer:
            while time.monotonic() < end_time:
                goal = goal_for(robot, config, rng)
                obs = arm.reset(int(rng.integers(2**31)))
                episode_id = writer.begin(INSTRUCTION, seed, goal=goal.tolist())
                states, executed, proposed, rewards, success, end = [obs["state"]], [], [], [], False, "timeout"
                reference = arm.layer.reference.copy()
                rate.restart()                      # the time between episodes (writing, resetting) is no deadline
                try:
                    for _ in range(max_steps):
                        if time.monotonic() - last_load > reload_every:
                            last_load = time.monotonic()
                            fresh = learner.load(learner_dir)
                            if fresh is not None and fresh[1] != version:
                                model, version = fresh
                                report["reloads"] += 1
                        if model is None:                                  # explore: a random walk of targets
                            proposal = np.clip(reference + rng.uniform(-0.8, 0.8, reference.shape) * planner.max_step,
                                               lim.lower, lim.upper)
                        else:
                            proposal = planner(model, obs["state"], reference, goal)
                        _, target, reasons = arm.step(proposal)
                        reference = target
                        rate.wait()
                        obs = arm.observe()                   # the state one control period after the target
                        distance = float(np.linalg.norm(robot.tool_position(obs["state"]) - goal))
                        finite = np.all(np.isfinite(proposal)) and np.shape(proposal) == target.shape
                        asked = proposal if finite else target        # a NaN proposal is recorded as what ran
                        writer.add({"state": states[-1]}, target, asked, -distance, reasons)
                        states.append(obs["state"])
                        executed.append(target)
                        proposed.append(asked)
                        rewards.append(-distance)
                        if distance < reach:
                            success, end = True, "success"
                            break
                except OperatorReset:
                    end = "operator_reset"
                except SafetyStop:
                    writer.abandon("safety_stop")
                    raise
                except (KeyboardInterrupt, SystemExit):           # Ctrl-C, SIGTERM: a person stopped the run
                    writer.abandon("operator_stop")
                    raise
                arm.idle()                          # the arm stands still while the episode is written
                if not executed:
                    writer.abandon(end)
                    continue
                writer.end({"state": states[-1]}, success=success, terminated=success, end=end)
                courier.post(episode_of(states, np.array(executed), np.array(proposed), np.array(rewards),
                                        episode_id, success))
                report["episodes"].append({"id": episode_id, "success": success, "steps": len(executed), "end": end,
                                           "model_version": version, "time": time.monotonic()})
                with (root.parent / "actor.jsonl").open("a") as progress:    # survives a killed actor
                    progress.write(json.dumps({**report["episodes"][-1], "pid": os.getpid(), "rate": rate.report(),
                                               "interventions": len(arm.interventions)}) + "\n")
                log(f"[actor] episode {episode_id}: {end} in {len(executed)} steps (model update {version})")
    finally:
        courier.close()         # and every finalised episode replay still lacks, the last one included
    report["rate"] = rate.report()
    report["interventions"] = len(arm.interventions)
    report["unsent_at_end"] = len({e["id"] for e in report["episodes"]} - outbox.sent)
    return report
