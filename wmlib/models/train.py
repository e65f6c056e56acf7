"""A generic, seeded training loop with early stopping, and an episode-wise data split.

    split = episode_split(transitions.episode, val=0.1, test=0.2, seed=0)   # masks over rows
    torch.manual_seed(0); model = DeltaModel(6, 4)                          # seeded initial weights
    history = fit(model, train={...}, val={...}, seed=0)                    # seeded minibatches

``fit`` knows nothing about the model except that ``model.loss(**batch)`` returns a
scalar (or pass ``loss=``): the same loop trains the encoder and the dynamics models.
"""
from __future__ import annotations

import copy
import dataclasses
import time
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable numbers in a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def episode_split(episode, val: float = 0.1, test: float = 0.2, seed: int = 0) -> dict[str, np.ndarray]:
    """Boolean masks {"train", "val", "test"} over rows, splitting whole episodes.

    episode: (N,) the episode id of each row (e.g. ``Transitions.episode``). Steps of one
    episode are strongly correlated, so held-out rows must come from held-out episodes:
    a row-wise split would test the model on near-copies of its training data.
    val, test: fractions of the episodes (rounded, at least one each when asked for).
    """
    episode = np.asarray(episode)
    if episode.ndim != 1:
        raise ValueError(f"episode must be a 1-D array of episode ids, got shape {episode.shape}")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val ({val}) and test ({test}) must be fractions that leave some episodes to train on")
    ids = np.unique(episode)
    rng = np.random.default_rng(seed)
    ids = ids[rng.permutation(len(ids))]
    n_val = max(int(round(val * len(ids))), 1 if val > 0 else 0)
    n_test = max(int(round(test * len(ids))), 1 if test > 0 else 0)
    if n_val + n_test >= len(ids):
        raise ValueError(f"{len(ids)} episodes are too few for a split with val={val}, test={test}")
    groups = {"val": ids[:n_val], "test": ids[n_val:n_val + n_test], "train": ids[n_val + n_test:]}
    return {name: np.isin(episode, members) for name, members in groups.items()}


@dataclasses.dataclass
class History:
    """What happened during ``fit``: mean losses per epoch, the epoch whose weights were kept, the time taken."""
    train_loss: list[float]
    val_loss: list[float]
    best_epoch: int
    stopped_early: bool
    seconds: float

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_val_loss(self) -> float:
        return self.val_loss[self.best_epoch]


def rows(data: dict) -> int:
    """The common number of rows of a dict of tensors (checked)."""
    lengths = {name: len(value) for name, value in data.items()}
    if not lengths or len(set(lengths.values())) != 1:
        raise ValueError(f"every tensor of a training set needs the same number of rows, got {lengths}")
    return next(iter(lengths.values()))


def to_device(data: dict, device) -> dict:
    return {name: torch.as_tensor(value).to(device) for name, value in data.items()}


@torch.no_grad()
def mean_loss(model, loss: Callable, data: dict, batch_size: int) -> float:
    """The loss averaged over every row of data (in batches, weights unchanged)."""
    was_training = model.training
    model.eval()
    total, n = 0.0, rows(data)
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in data.items()}
        total += float(loss(model, batch)) * len(next(iter(batch.values())))
    model.train(was_training)
    return total / n


def default_loss(model, batch: dict) -> torch.Tensor:
    return model.loss(**batch)


def fit(model: torch.nn.Module, train: dict, val: dict, *, loss: Callable = default_loss, epochs: int = 100,
        batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.0, patience: int = 10, seed: int = 0,
        progress: bool = True, desc: str = "training", after_step: Callable | None = None,
        keep_best: bool = True) -> History:
    """Train with Adam on minibatches; stop when the held-out loss has not improved for `patience` epochs.

    train, val: dicts of tensors (or arrays) with the same number of rows, e.g.
      {"state": (N, D), "action": (N, A), "next_state": (N, D)}; they are moved to the
      model's device once. loss(model, batch) -> scalar tensor; by default ``model.loss(**batch)``.
    after_step(model): called after every optimiser step (e.g. to move a target network).
    seed: fixes the order of the minibatches (the initial weights are fixed by seeding
      before the model is built). The same seed, data and initial weights give the same
      trained weights on the same machine.
    The model ends with the weights of its best held-out epoch, or of its last with ``keep_best=False``
    (for losses whose targets move as training goes, such as a target network's: their held-out
    values at different epochs measure different things). Returns a ``History``.
    """
    device = next(model.parameters()).device
    train, val = to_device(train, device), to_device(val, device)
    n = rows(train)
    rows(val)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History([], [], best_epoch=0, stopped_early=False, seconds=0.0)
    best_state, best_val = None, float("inf")
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc=desc, disable=not progress, leave=True)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total = 0.0
        for first in range(0, n, batch_size):
            index = order[first:first + batch_size]
            value = loss(model, {k: v[index] for k, v in train.items()})
            optimiser.zero_grad(set_to_none=True)
            value.backward()
            optimiser.step()
            if after_step is not None:
                after_step(model)
            total += float(value.detach()) * len(index)
        history.train_loss.append(total / n)
        history.val_loss.append(mean_loss(model, loss, val, batch_size))
        if history.val_loss[-1] < best_val:
            best_val, history.best_epoch = history.val_loss[-1], epoch
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(train=f"{history.train_loss[-1]:.4f}", val=f"{history.val_loss[-1]:.4f}")
        if epoch - history.best_epoch >= patience:
            history.stopped_early = epoch + 1 < epochs
            break
    bar.close()
    if best_state is not None and keep_best:
        model.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start
    return history
