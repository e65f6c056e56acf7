"""Chunk windows for models that act several steps at a time and predict what follows.

    w = chunk_windows(episodes, chunk=4, robot_keys=ROBOT_KEYS, frame_size=64)
    w.frames[w.now]      # (N, 64, 64, 3) o_t        w.robot[w.now]    (N, R) robot vector at t
    w.actions            # (N, K, A)  a_t .. a_t+K-1 (zeros where ``w.labelled`` is False)
    w.frames[w.future]   # (N, 64, 64, 3) o_t+K      w.instruction     (N,) text

A window starts at every step t with t + K <= T (T: the episode's number of actions), so the
chunk's actions are all real ones and o_t+K is a recorded observation; nothing crosses an
episode's end. Frames are stored once per episode and windows point into them (``now``,
``future``), so a dataset of 64 x 64 frames costs its frames once, not once per window.

An episode can be given as *action-free*: its windows keep frames, robot vector and
instruction, and ``labelled`` is False, so a model can learn the future from it and never
the action (video without action labels).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from wmlib.data.episodes import DatasetError, Episode


@dataclasses.dataclass
class ChunkWindows:
    """Windows of ``chunk`` actions; see the module docstring. N windows, F stored frames."""
    frames: np.ndarray        # (F, S, S, 3) uint8
    robot: np.ndarray         # (F, R) float32: the robot vector of each stored frame
    arrival_reward: np.ndarray  # (F,) float32: the reward of the action that led to each frame (0 at a start)
    now: np.ndarray           # (N,) index of o_t in frames
    future: np.ndarray        # (N,) index of o_t+K in frames
    actions: np.ndarray       # (N, K, A) float32
    labelled: np.ndarray      # (N,) bool: False for windows of action-free episodes
    instruction: np.ndarray   # (N,) object (str)
    task: np.ndarray          # (N,) object (str): the episode's env_id, or its dataset name
    episode: np.ndarray       # (N,) episode index
    step: np.ndarray          # (N,) t
    chunk: int

    def __len__(self) -> int:
        return len(self.now)

    def select(self, mask) -> "ChunkWindows":
        """The windows a boolean (N,) mask or index array keeps (the frames are shared)."""
        keep = {f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)
                if f.name not in ("frames", "robot", "arrival_reward", "chunk")}
        return ChunkWindows(frames=self.frames, robot=self.robot, arrival_reward=self.arrival_reward,
                            chunk=self.chunk, **keep)


def join(*parts: ChunkWindows) -> ChunkWindows:
    """Several ChunkWindows (e.g. one per task, each made with its own state layout) as one."""
    if len({p.chunk for p in parts}) != 1 or len({p.robot.shape[1] for p in parts}) != 1:
        raise ValueError("only windows of the same chunk and robot vector can be joined")
    offsets = np.cumsum([0] + [len(p.frames) for p in parts[:-1]])
    shifted = lambda name, p, o: getattr(p, name) + o if name in ("now", "future") else getattr(p, name)  # noqa: E731
    columns = {f.name: np.concatenate([shifted(f.name, p, o) for p, o in zip(parts, offsets)])
               for f in dataclasses.fields(ChunkWindows) if f.name != "chunk"}
    return ChunkWindows(chunk=parts[0].chunk, **columns)


def downsample(frames: np.ndarray, size: int, where: str = "frames") -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, size, size, 3) uint8 by averaging blocks of H/size x W/size pixels.

    Only whole blocks: a frame whose side is not a multiple of ``size`` is refused, since any
    other resampling would differ from the one the environment's frames get at test time.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise DatasetError(f"{where}: frames should be (T, H, W, 3), got {frames.shape}")
    t, h, w, _ = frames.shape
    if h % size or w % size or h != w:
        raise DatasetError(f"{where}: frames of {h} x {w} cannot be averaged down to {size} x {size} "
                           f"(square frames whose side is a multiple of {size} only)")
    f = h // size
    if f == 1:
        return frames.astype(np.uint8)
    blocks = frames.reshape(t, size, f, size, f, 3).astype(np.float32).mean(axis=(2, 4))
    return np.round(blocks).astype(np.uint8)


def robot_vector(state: np.ndarray, layout: dict[str, slice], keys: tuple[str, ...]) -> np.ndarray:
    """(..., D) states -> (..., R): the named parts of the state, in the order of ``keys``."""
    missing = [k for k in keys if k not in layout]
    if missing:
        raise DatasetError(f"the state layout has no {missing}; it has {sorted(layout)}")
    return np.concatenate([state[..., layout[k]] for k in keys], axis=-1).astype(np.float32)


def chunk_windows(episodes: Iterable[Episode], chunk: int, layout: dict[str, slice], robot_keys: tuple[str, ...],
                  frame_size: int = 64, action_free: Iterable[Episode] = ()) -> ChunkWindows:
    """Every window of ``chunk`` actions of ``episodes`` (labelled) and ``action_free`` (not).

    layout: the state layout (``data.state_layout``); robot_keys: the parts of the state the
    robot vector holds. Every episode needs ``observation/image`` and an instruction.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, not {chunk}")
    frames, robot, arrival, parts, offset = [], [], [], [], 0
    for labelled, group in ((True, episodes), (False, action_free)):
        for ep in group:
            where = dict(dataset=ep.dataset, episode=ep.index)
            if "observation/image" not in ep.steps:
                raise DatasetError("no frames: load the episodes with images=True", field="observation/image", **where)
            if not ep.language:
                raise DatasetError(f"no instruction for its task ({ep.metadata.get('env_id', 'unknown task')}): "
                                   "a language-conditioned model needs one per task", field="language_instruction",
                                   **where)
            T = ep.num_actions
            if chunk > T:
                raise DatasetError(f"{T} actions, fewer than a chunk of {chunk}: use a shorter chunk or leave "
                                   "the episode out", field="action", **where)
            frames.append(downsample(ep.steps["observation/image"], frame_size,
                                     f"episode {ep.index} ({ep.dataset or 'dataset'})"))
            robot.append(robot_vector(ep.steps["observation/state"], layout, robot_keys))
            arrival.append(np.r_[0.0, ep.steps["reward"][:-1]].astype(np.float32))
            t = np.arange(T - chunk + 1)
            actions = np.stack([ep.steps["action"][t + k] for k in range(chunk)], axis=1)
            n = len(t)
            parts.append(dict(now=offset + t, future=offset + t + chunk,
                              actions=(actions if labelled else np.zeros_like(actions)).astype(np.float32),
                              labelled=np.full(n, labelled), instruction=np.array([ep.language] * n, dtype=object),
                              task=np.array([ep.metadata.get("env_id", ep.dataset)] * n, dtype=object),
                              episode=np.full(n, ep.index), step=t))
            offset += len(ep)
    if not parts:
        raise DatasetError("no episodes to make chunk windows from")
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return ChunkWindows(frames=np.concatenate(frames), robot=np.concatenate(robot),
                        arrival_reward=np.concatenate(arrival), chunk=chunk, **columns)
