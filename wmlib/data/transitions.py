"""The tuples models learn from, made from episodes: never across an episode's end.

    batch = transitions(episodes)        # (o_t, a_t, o_t+1), t = 0..T-1 of each episode
    tuples = wam_tuples(episodes)        # (o_t, l, a_t, o_t+1, a_t+1), t = 0..T-2
    for rows in iterate_batches(batch, 256): ...

The last step of an episode holds its final observation only (``wmlib.data.episodes``): it is
an o_t+1, never an o_t, so an episode of T + 1 steps gives T transitions.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from wmlib.data.episodes import DatasetError, Episode


@dataclasses.dataclass
class Transitions:
    """(o_t, a_t, o_t+1) for every meaningful action of every episode; never across episodes.

    state, next_state: (N, D) o_t and o_t+1, read from the observation key chosen (the
    proprio vector by default; a camera key gives frames); the names are the models'.
    action: (N, A); reward, terminal: (N,); episode, step: (N,) where each transition came from.
    ``terminal[i]`` is True when o_t+1 ended the episode by termination (not truncation).
    """
    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    episode: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.state)

    def rows(self, mask=None, keys=("state", "action", "next_state"), device=None) -> dict:
        """The rows a model trains on, as torch tensors: ``{key: (n, ...)}`` for the rows ``mask`` keeps.

        mask: None (every row), a boolean (N,) array or an index array.
        """
        import torch

        return {k: torch.as_tensor(getattr(self, k) if mask is None else getattr(self, k)[mask], device=device)
                for k in keys}

    def to_torch(self, device=None) -> dict:
        """Every field as a torch tensor."""
        return self.rows(keys=[f.name for f in dataclasses.fields(self)], device=device)


def transitions(episodes: Iterable[Episode], key: str = "observation/state") -> Transitions:
    """All (o_t, a_t, o_t+1) with t = 0..T-1 of each episode: the last step gives none of its own."""
    parts = []
    for ep in episodes:
        obs, T = ep.steps[key], ep.num_actions
        parts.append(dict(
            state=obs[:-1], action=ep.steps["action"][:-1], next_state=obs[1:], reward=ep.steps["reward"][:-1],
            terminal=ep.steps["is_terminal"][1:], episode=np.full(T, ep.index), step=np.arange(T),
        ))
    if not parts:
        raise DatasetError("no episodes to make transitions from")
    return Transitions(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


@dataclasses.dataclass
class WamTuples:
    """(o_t, l, a_t, o_t+1, a_t+1) for a World Action Model; t = 0..T-2 of each episode.

    a_t+1 must be a real action, so the step before the last gives none: an episode
    of T actions gives T-1 tuples. state/next_state: (N, D) (o_t, o_t+1); action/next_action: (N, A);
    language: (N,) str; episode, step: (N,).
    """
    state: np.ndarray
    language: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    next_action: np.ndarray
    episode: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.state)


def wam_tuples(episodes: Iterable[Episode], key: str = "observation/state") -> WamTuples:
    parts = []
    for ep in episodes:
        obs, act, n = ep.steps[key], ep.steps["action"], ep.num_actions - 1
        if n <= 0:
            continue
        parts.append(dict(
            state=obs[:n], language=np.array([ep.language] * n, dtype=object), action=act[:n],
            next_state=obs[1:n + 1], next_action=act[1:n + 1], episode=np.full(n, ep.index), step=np.arange(n),
        ))
    if not parts:
        raise DatasetError("no episode has two actions: no (o_t, l, a_t, o_t+1, a_t+1) tuple exists")
    return WamTuples(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def iterate_batches(data: Transitions | WamTuples, batch_size: int, shuffle: bool = True, seed: int = 0,
                    device=None, drop_last: bool = False):
    """Yield dicts of torch tensors of ``batch_size`` rows (text fields stay NumPy)."""
    import torch

    columns = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    tensors = {k: torch.as_tensor(v, device=device) for k, v in columns.items() if v.dtype != object}
    texts = {k: v for k, v in columns.items() if v.dtype == object}
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v[idx.to(v.device)] for k, v in tensors.items()}
        batch.update({k: v[idx.numpy()] for k, v in texts.items()})
        yield batch
