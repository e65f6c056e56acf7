"""Per-feature normalisation, fitted once on training data and stored with the model.

Networks learn best when every input and target has a similar scale: positions in
metres (a few hundredths) beside joint angles in radians (a few units) would
otherwise make some features nearly invisible to the loss. A ``Normaliser`` keeps
the mean and standard deviation of each feature as buffers, so it moves with
``model.to(device)`` and is saved in ``model.state_dict()``.
"""
from __future__ import annotations

import torch
from torch import nn


class Normaliser(nn.Module):
    """z = (x - mean) / std per feature, and back; x: (..., D).

    Fit it on training data only (``fit``); held-out data is normalised with the
    training statistics. Features that never vary get std 1, so they pass through
    shifted but not blown up.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor, min_std: float = 1e-6) -> "Normaliser":
        """Set mean and std from x: (N, D) (or (..., D)); returns self."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"Normaliser({self.dim}) cannot be fitted on data of shape {tuple(x.shape)}: "
                             f"the last axis must have {self.dim} features")
        x = x.reshape(-1, self.dim)
        if len(x) < 2:
            raise ValueError(f"Normaliser needs at least 2 rows to measure a spread, got {len(x)}")
        if not torch.isfinite(x).all():
            raise ValueError("Normaliser: the data contains NaN or inf")
        std = x.std(dim=0)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.where(std > min_std, std, torch.ones_like(std)))
        return self

    def _check(self, x: torch.Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"Normaliser({self.dim}) got data with {x.shape[-1]} features (shape {tuple(x.shape)})")

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) physical units -> (..., D) zero mean, unit spread (on the training data)."""
        self._check(x)
        return (x - self.mean) / self.std

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) normalised -> (..., D) physical units."""
        self._check(z)
        return z * self.std + self.mean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(x)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
