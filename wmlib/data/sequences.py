"""Episodes laid end to end, cut into windows of consecutive steps for models that learn from pixels.

A latent world model trains on short stretches of experience: L + 1 observations and the L
actions between them, never across the end of an episode. ``Sequences`` keeps every episode's
rows once (frames downsampled, proprioception, the simulator's state, actions, rewards) and
hands out such windows by their first row, so a training set is a list of start rows, not
copies of frames.

    seq = sequences(episodes, frame_size=64)      # episodes loaded with images=True
    starts = seq.starts(length=8)                 # (N,) rows where a window of 8 actions fits
    batch = seq.window(starts[:32], length=8)     # frames (32, 9, 64, 64, 3) uint8, action (32, 8, A), ...

Row t of an episode holds o_t and the action a_t sent from it, with the reward r_t that
action earned and ``continues`` c_t: 0 when o_t+1 is terminal (the task was solved and the
episode stopped there), else 1. An episode's last row holds its final observation; its action,
reward and ``continues`` are zeros that no window reads. ``state`` is the simulator's true
state: for judging a model (probes, success), never for training one that claims to see pixels.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np
import torch

from wmlib.data.chunks import downsample
from wmlib.data.episodes import DatasetError, Episode


@dataclasses.dataclass
class Sequences:
    """Every row of every episode, end to end: T_all rows in all."""
    frames: np.ndarray        # (T_all, S, S, 3) uint8, channels last as the dataset stores them
    proprio: np.ndarray       # (T_all, P) float32: what the robot knows of itself
    state: np.ndarray         # (T_all, D) float32: the simulator's state, to judge with only
    action: np.ndarray        # (T_all, A) float32
    reward: np.ndarray        # (T_all,) float32: r_t, earned by a_t
    continues: np.ndarray     # (T_all,) float32: 0 if o_t+1 is terminal, else 1
    episode: np.ndarray       # (T_all,) int: the episode's position in the list given
    step: np.ndarray          # (T_all,) int: t within its episode
    last: np.ndarray          # (T_all,) bool: the episode's final observation (no action)

    def __len__(self) -> int:
        return len(self.step)

    @property
    def num_episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self) else 0

    def starts(self, length: int) -> np.ndarray:
        """(N,) the rows from which ``length`` actions (and ``length`` + 1 observations) stay in one episode."""
        if length < 1:
            raise ValueError(f"a window needs at least one action, not {length}")
        rows = np.arange(len(self) - length)
        same = self.episode[rows] == self.episode[rows + length]
        return rows[same & ~self.last[rows]]

    def window(self, starts, length: int) -> dict[str, torch.Tensor]:
        """Windows from start rows (B,): frames (B, L+1, S, S, 3) uint8, proprio (B, L+1, P),
        state (B, L+1, D), action (B, L, A), reward (B, L), continues (B, L); L = length.
        Refuses a start whose window would cross the end of its episode."""
        starts = np.asarray(starts, dtype=np.int64).reshape(-1)
        ends = starts + length
        inside = (starts >= 0) & (ends < len(self))
        crossing = ~inside
        crossing[inside] = self.episode[starts[inside]] != self.episode[ends[inside]]
        if crossing.any():
            bad = int(starts[np.argmax(crossing)])
            known = 0 <= bad < len(self)
            raise DatasetError(f"a window of {length} actions from row {bad} crosses the end of its episode "
                               "(take starts from .starts(length))", episode=int(self.episode[bad]) if known else None,
                               step=int(self.step[bad]) if known else None)
        obs = starts[:, None] + np.arange(length + 1)          # (B, L+1) rows of the observations
        act = obs[:, :-1]                                      # (B, L) rows of the actions
        return {"frames": torch.from_numpy(self.frames[obs]), "proprio": torch.from_numpy(self.proprio[obs]),
                "state": torch.from_numpy(self.state[obs]), "action": torch.from_numpy(self.action[act]),
                "reward": torch.from_numpy(self.reward[act]), "continues": torch.from_numpy(self.continues[act])}


def sequences(episodes: Iterable[Episode], frame_size: int = 64, proprio_key: str = "observation/proprio",
              state_key: str = "observation/state") -> Sequences:
    """Episodes (loaded with images) -> ``Sequences``, frames averaged down to frame_size x frame_size."""
    parts = []
    for position, ep in enumerate(episodes):
        where = dict(dataset=ep.dataset, episode=ep.index)
        for key in ("observation/image", proprio_key, state_key, "action", "reward", "is_terminal"):
            if key not in ep.steps:
                hint = ": load the episodes with images=True" if key == "observation/image" else ""
                raise DatasetError(f"no {key!r} in this episode{hint}", field=key, **where)
        n = len(ep)
        if n < 2:
            raise DatasetError("an episode needs at least one action", **where)
        continues = np.ones(n, np.float32)
        continues[-1] = 0.0
        if ep.terminated:
            continues[-2] = 0.0                                # the last action led to the terminal state
        action = np.asarray(ep.steps["action"], np.float32).copy()
        reward = np.asarray(ep.steps["reward"], np.float32).copy()
        action[-1], reward[-1] = 0.0, 0.0
        for name, values in (("action", action), ("reward", reward)):
            bad = np.flatnonzero(~np.isfinite(values).reshape(n, -1).all(axis=1))
            if len(bad):
                raise DatasetError(f"{name} is not finite", step=int(bad[0]), field=name, **where)
        parts.append(dict(
            frames=downsample(ep.steps["observation/image"], frame_size, f"episode {ep.index} ({ep.dataset})"),
            proprio=np.asarray(ep.steps[proprio_key], np.float32), state=np.asarray(ep.steps[state_key], np.float32),
            action=action, reward=reward, continues=continues, episode=np.full(n, position),
            step=np.arange(n), last=np.arange(n) == n - 1))
    if not parts:
        raise DatasetError("no episodes to make sequences from")
    return Sequences(**{f.name: np.concatenate([p[f.name] for p in parts]) for f in dataclasses.fields(Sequences)})
