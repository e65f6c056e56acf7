"""Chapter 6's experiment in one place: data, the variants, both evaluation axes.

    split = demonstrations(chunk=4, demos=20)                 # windows of both tasks
    model, log = train_variant("joint", split, seed=0)       # a TinyWAM, trained
    offline(model, split.test, judge)                         # world-model quality (held-out demos)
    closed_loop(model, "PushCube-v1", seeds)                  # policy quality (ManiSkill)

Data. The course's PushCube and PickCube datasets, each with its instruction. The first
``demos`` scripted successes of each task (by seed) are the demonstrations; the last
``HELD_OUT`` successes of each task are never trained on and measure the offline metrics;
every other episode (random, failed, recovering) is an *action-free clip*: its frames may teach
the future, never the action. Evaluation episodes start from seeds no dataset episode uses.

The world-model axis: how far the imagined future is from the real one (frame and robot
vector), and whether an inverse-dynamics judge, trained on true futures, recovers the action
chunk from the imagined change (``recoverability``). The policy axis: closed-loop success with
Wilson intervals, after a shove, with the cube repainted, and with the instruction swapped.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from wmlib import data, device
from wmlib.data.conventions import PROPRIO_KEYS
from wmlib.models import wam

TASKS = {"PushCube-v1": "push_cube", "PickCube-v1": "pick_cube"}
ROBOT_KEYS = PROPRIO_KEYS + ("extra/goal_pos",)
HELD_OUT = 10                      # successes per task kept for the offline metrics
EVAL_SEED = 700_000                # closed-loop starts: no dataset episode starts here
REPAINT = (0.15, 0.75, 0.2, 1.0)   # the repainted cube: green (the datasets' are blue, PushCube, and red, PickCube)
# Variants: (kind, future weight, uses action-free clips)
VARIANTS = {
    "policy": ("policy", 0.0, False),
    "joint": ("joint", 1.0, True),
    "joint_w0.1": ("joint", 0.1, True),
    "joint_no_clips": ("joint", 1.0, False),
    "recon": ("recon", 1.0, True),
    "cascade": ("cascade", 1.0, True),
    "idm_true": ("idm_true", 0.0, False),
}


@dataclasses.dataclass
class Split:
    train: data.ChunkWindows       # demonstrations (labelled) and action-free clips
    test: data.ChunkWindows        # held-out demonstrations, labelled
    instructions: dict             # env_id -> instruction
    robot_layout: dict             # name -> slice of the robot vector (e.g. "extra/tcp_pose")


def demonstrations(chunk: int = 4, demos: int = 40, root=None) -> Split:
    """Windows of ``demos`` demonstrations per task, the action-free clips, and the held-out demos."""
    train, test, instructions, robot_layout = [], [], {}, None
    for env_id, name in TASKS.items():
        path = data.default_path(name, root)
        episodes, layout = data.load(path, images=True), data.state_layout(path)
        good = sorted((e for e in episodes if e.metadata["source"] == "scripted_success" and e.metadata["success"]),
                      key=lambda e: e.metadata["seed"])
        if len(good) < demos + HELD_OUT:
            raise ValueError(f"{path}: {len(good)} successful demonstrations of {env_id}, fewer than "
                             f"{demos} + {HELD_OUT} held out")
        chosen = {id(e) for e in good}
        clips = [e for e in episodes if id(e) not in chosen and e.num_actions >= chunk]
        train.append(data.chunk_windows(good[:demos], chunk, layout, ROBOT_KEYS, action_free=clips))
        test.append(data.chunk_windows(good[-HELD_OUT:], chunk, layout, ROBOT_KEYS))
        instructions[env_id] = good[0].language
        widths = [layout[k].stop - layout[k].start for k in ROBOT_KEYS]
        robot_layout = {k: slice(int(a), int(a + w)) for k, a, w in zip(ROBOT_KEYS, np.cumsum([0] + widths), widths)}
    return Split(data.join(*train), data.join(*test), instructions, robot_layout)


def train_variant(name: str, split: Split, seed: int = 0, steps: int = 1500, progress: bool = False,
                  combine=None):
    """Build the variant ``name`` of ``VARIANTS`` under ``seed`` and train it for ``steps`` steps
    (``combine``: the loss's combination of its parts, ``wam.joint_loss`` by default)."""
    clips = VARIANTS[name][2]
    windows = split.train if clips else split.train.select(split.train.labelled)
    model = build_variant(name, split, seed)
    log = wam.train(model, windows, steps=steps, seed=seed, progress=progress, combine=combine)
    return model, log


def build_variant(name: str, split: Split, seed: int = 0) -> wam.TinyWAM:
    """The untrained variant ``name``, its initial weights fixed by ``seed`` (load trained ones into it)."""
    kind, weight, _ = VARIANTS[name]
    torch.manual_seed(seed)
    vocabulary = wam.Vocabulary(sorted(set(split.train.instruction)))
    model = wam.TinyWAM(kind, vocabulary, split.train.robot.shape[1], split.train.chunk, future_weight=weight)
    return model.to(device())


# ---------------------------------------------------------------- world-model quality (offline)


@torch.no_grad()
def offline(model: wam.TinyWAM, windows: data.ChunkWindows, judge: wam.TinyWAM | None = None,
            batch_size: int = 256, robot_layout: dict | None = None) -> dict:
    """Action error of the acting path; future errors and recoverability where the model imagines.

    action_mse: mean squared error of the chunk the model acts with (idm_true: from true futures).
    future_frame_mse / future_robot_mse: the imagined o_t+K against the real one (32 x 32 frame in
    [0, 1]; robot vector in units of its spread), where the model's future head was trained.
    recoverability: ``recoverability`` of the judge's chunks from imagined futures;
    recoverability_frame_only: the same with the imagined frame alone (the robot vector given to the
    judge is the present one), i.e. what the pixels of the imagined future tell about the action.
    plausible: with ``robot_layout``, the fraction of imagined futures that ``plausible`` accepts
    (and ``plausible_real``, the same test on the real futures, which should pass it).
    """
    sums, n = {}, 0
    for first in range(0, len(windows), batch_size):
        index = np.arange(first, min(first + batch_size, len(windows)))
        batch = wam.batch_of(windows, index, model.device)
        h = model.encode(batch["frame"], batch["robot"], batch["instruction"])
        target = model.small_frames(batch["future_frame"])
        chunk = model.chunk_from(h, batch["future_frame"], batch["future_robot"])   # only idm_true reads the future
        add(sums, "action_mse", ((chunk - batch["actions"]) ** 2).mean((1, 2)))
        if model.variant in ("joint", "cascade"):
            imagined = model.imagine(h, batch["actions"]) if model.variant == "joint" else model.imagine(h)
            add(sums, "future_frame_mse", ((imagined.frame - target) ** 2).mean((1, 2, 3)))
            add(sums, "future_robot_mse", ((imagined.robot - model.robot_norm(batch["future_robot"])) ** 2).mean(1))
            if robot_layout is not None:
                tcp, now = robot_layout["extra/tcp_pose"], batch["robot"]
                add(sums, "plausible", plausible(now[:, tcp], model.robot_norm.denormalise(imagined.robot)[:, tcp],
                                                 windows.chunk))
                add(sums, "plausible_real", plausible(now[:, tcp], batch["future_robot"][:, tcp], windows.chunk))
            if judge is not None:
                jh = judge.encode(batch["frame"], batch["robot"], batch["instruction"])
                from_imagined = judge.inverse_dynamics(jh, imagined.frame, imagined.robot)
                from_true = judge.inverse_dynamics(jh, target, judge.robot_norm(batch["future_robot"]))
                # the imagined frame alone: the robot vector K steps ahead replaced by the present one
                from_frame = judge.inverse_dynamics(jh, imagined.frame, judge.robot_norm(batch["robot"]))
                for key, chunk_ in (("judge_imagined", from_imagined), ("judge_true", from_true),
                                    ("judge_imagined_frame", from_frame)):
                    add(sums, key, ((chunk_.clamp(-1, 1) - batch["actions"]) ** 2).mean((1, 2)))
        n += len(index)
    out = {k: float(v / n) for k, v in sums.items()}
    if "judge_imagined" in out:
        spread = float(((windows.actions - windows.actions.mean(0)) ** 2).mean())
        out["recoverability"] = recoverability(out["judge_imagined"], out["judge_true"], spread)
        out["recoverability_frame_only"] = recoverability(out["judge_imagined_frame"], out["judge_true"], spread)
    return out


def plausible(tcp_now: torch.Tensor, tcp_future: torch.Tensor, steps: int, max_step: float = 0.1,
              below_table: float = 0.005) -> torch.Tensor:
    """(B,) 1.0 where an imagined gripper pose is physically possible, else 0.0.

    tcp_*: (B, >=3) gripper poses (x, y, z first), now and ``steps`` steps later. Possible means:
    the gripper is not inside the table (z >= -``below_table`` m) and it moved no farther than the
    controller can take it (``max_step`` m per step: a full-scale pd_ee_delta_pos action).
    """
    above = tcp_future[:, 2] >= -below_table
    reachable = (tcp_future[:, :3] - tcp_now[:, :3]).norm(dim=1) <= steps * max_step
    return (above & reachable).float()


def add(sums: dict, key: str, values: torch.Tensor) -> None:
    sums[key] = sums.get(key, 0.0) + float(values.sum())


def recoverability(error_imagined: float, error_true: float, error_blind: float) -> float:
    """How much of the action an inverse-dynamics judge recovers from an imagined future, 0..1.

    error_*: the judge's mean squared action error given the imagined future, the true future,
    and none at all (the spread of the actions around their mean). 1: the imagined change says as
    much about the action as the real one; 0: no more than guessing the mean action.
    """
    if error_blind <= error_true:
        raise ValueError(f"the judge recovers nothing from true futures (error {error_true:.4g} >= "
                         f"blind {error_blind:.4g}): it cannot judge imagined ones")
    return float(np.clip((error_blind - error_imagined) / (error_blind - error_true), 0.0, 1.0))


@torch.no_grad()
def instruction_effect(model: wam.TinyWAM, windows: data.ChunkWindows, other: dict) -> float:
    """Mean squared change of the acted chunk when each window's instruction is swapped for
    ``other[instruction]`` (another task's), over the windows; 0 means the words are ignored."""
    swapped = np.array([other[t] for t in windows.instruction], dtype=object)
    index = np.arange(len(windows))
    batch = wam.batch_of(windows, index, model.device)
    if model.variant == "idm_true":
        return float("nan")
    own = model.act(batch["frame"], batch["robot"], batch["instruction"])
    theirs = model.act(batch["frame"], batch["robot"], swapped)
    return float(((own - theirs) ** 2).mean())


# ---------------------------------------------------------------- the WAM as an evaluator


@torch.no_grad()
def rank_chunks(model: wam.TinyWAM, frames, robot, instructions, candidates: int = 16, noise: float = 0.3,
                seed: int = 0) -> torch.Tensor:
    """Act by ranking: the action head's chunk and ``candidates - 1`` noisy variants of it, each
    imagined by the future head; the chunk whose imagined reward at t+K is highest wins. (1, K, A)."""
    h = model.encode(frames, robot, instructions)
    proposal = model.act_chunk(h)                                      # (1, K, A)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    jitter = torch.randn((candidates - 1, *proposal.shape[1:]), generator=generator).to(h.device) * noise
    chunks = torch.cat([proposal, (proposal + jitter)]).clamp(-1, 1)    # (N, K, A)
    imagined = model.imagine(h.expand(candidates, -1), chunks)
    return chunks[best_chunk(imagined.reward)][None]


def best_chunk(scores: torch.Tensor) -> int:
    """Index of the highest score (N,); the first on ties, so the proposal wins when nothing is better."""
    return int(torch.argmax(scores))


def latency(model: wam.TinyWAM, windows: data.ChunkWindows, repeats: int = 30) -> dict[str, float]:
    """Milliseconds per decision on one held-out observation, after one warm-up call:
    the action head alone (the future skipped) vs ranking 16 imagined chunks (the future used)."""
    import time

    now = windows.now[:1]
    frames, robot, text = windows.frames[now], windows.robot[now], windows.instruction[:1]
    decisions = {"future_skipped": lambda: model.act(frames, robot, text),
                 "future_used_16_chunks": lambda: rank_chunks(model, frames, robot, text)}
    timings = {}
    for name, decide in decisions.items():
        decide()
        start = time.perf_counter()
        for _ in range(repeats):
            decide()
        timings[name] = 1000 * (time.perf_counter() - start) / repeats
    return timings


# ---------------------------------------------------------------- policy quality (closed loop)


def closed_loop(policy, env_id: str, instruction: str, seeds, env=None, **stress) -> list[bool]:
    """Success of ``policy(frames, robot, instructions)`` on each seed (``wam_control.play``)."""
    from wmlib import envs, wam_control

    own = env is None
    env = env or envs.make(env_id, obs_mode="rgb", image_size=128, seed=int(seeds[0]))
    try:
        return [wam_control.play(env, policy, instruction, ROBOT_KEYS, seed=int(s), **stress).success for s in seeds]
    finally:
        if own:
            env.close()
