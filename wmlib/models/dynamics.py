"""One-step dynamics: predict the next state from the current state and action.

The network does not predict s_t+1 itself but the *change* s_t+1 - s_t: most of the
next state is the current one, and a change is small, centred and easy to scale. Inputs
and changes are normalised with statistics of the training data (``fit_normalisers``).

    (s_t, a_t)  (B, D), (B, A)
      -> normalise [s_t, a_t]             (B, D + A)
      -> MLP                              (B, D) normalised change
      -> s_t + denormalise(change)        (B, D) = predicted s_t+1
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.normaliser import Normaliser


class MLP(nn.Sequential):
    """(B, in_dim) -> (B, out_dim): Linear layers of the given hidden widths with SiLU between them."""

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (128, 128)):
        layers, width = [], in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, out_dim))
        super().__init__(*layers)


def as_batch(x, dim: int, name: str) -> torch.Tensor:
    """Check that x is a (B, dim) floating-point tensor (or array), with a message that names it."""
    x = torch.as_tensor(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (B, {dim}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be floating point, not {x.dtype}")
    return x


class DeltaModel(nn.Module):
    """s_t+1 = s_t + MLP(normalised s_t, a_t): a one-step forward model of dimension D with A actions."""

    def __init__(self, state_dim: int, action_dim: int, hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        self.net = MLP(state_dim + action_dim, state_dim, hidden)
        self.input_norm = Normaliser(state_dim + action_dim)
        self.delta_norm = Normaliser(state_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _checked(self, state, action, next_state=None):
        """The inputs as float32 tensors on this model's device, after checking their shapes."""
        state = as_batch(state, self.state_dim, "state")
        action = as_batch(action, self.action_dim, "action")
        tensors = [state, action] + ([as_batch(next_state, self.state_dim, "next_state")] if next_state is not None
                                     else [])
        if len({len(t) for t in tensors}) != 1:
            raise ValueError(f"state, action (and next_state) must have the same batch size, got "
                             f"{[len(t) for t in tensors]}")
        return [t.to(self.device, torch.float32) for t in tensors]

    @torch.no_grad()
    def fit_normalisers(self, state, action, next_state) -> "DeltaModel":
        """Fit the input and change normalisers on training transitions (N, D), (N, A), (N, D)."""
        state, action, next_state = self._checked(state, action, next_state)
        self.input_norm.fit(torch.cat([state, action], dim=1))
        self.delta_norm.fit(next_state - state)
        return self

    def predict_change(self, state, action) -> torch.Tensor:
        """(B, D), (B, A) -> (B, D): the predicted s_t+1 - s_t in normalised units."""
        state, action = self._checked(state, action)
        return self.net(self.input_norm.normalise(torch.cat([state, action], dim=1)))

    def forward(self, state, action) -> torch.Tensor:
        """(B, D), (B, A) -> (B, D): the predicted next state, in the state's units."""
        state, action = self._checked(state, action)
        return state + self.delta_norm.denormalise(self.predict_change(state, action))

    def loss(self, state, action, next_state) -> torch.Tensor:
        """Mean squared error of the predicted change, in normalised units (every component weighs the same)."""
        state, action, next_state = self._checked(state, action, next_state)
        return F.mse_loss(self.predict_change(state, action), self.delta_norm.normalise(next_state - state))
