"""An ensemble of E delta models evaluated as one tensor program.

Each member is an MLP like ``DeltaModel``'s, but the E members' weights are stacked into
(E, in, out) tensors, so one batched matrix product (``torch.baddbmm``) evaluates every member
on its own batch at once: no Python loop over members or candidates. Rolling out N candidate
action sequences over H steps is then H steps of

    (E, N, D) states, (E, N, A) actions -> (E, N, D) next states.

Members differ by their initial weights and by the data they see: each training row carries
a Poisson(1) weight per member (an "online" bootstrap), so every member fits its own resample
of the data while all of them share the same minibatches. Where the data is dense the members
agree; where it is thin they fit different guesses, and their spread (``disagreement``) grows.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.dynamics import as_batch
from wmlib.models.normaliser import Normaliser

STILL = 1e-6  # a change whose spread is at most this is treated as no change at all


class EnsembleLinear(nn.Module):
    """E independent linear layers: (E, B, in) -> (E, B, out) in one batched matmul."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)     # the same initial range as nn.Linear
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)      # bias + x @ weight, per member

    def extra_repr(self) -> str:
        e, i, o = self.weight.shape
        return f"members={e}, in_dim={i}, out_dim={o}"


class EnsembleMLP(nn.Sequential):
    """(E, B, in_dim) -> (E, B, out_dim): E MLPs with SiLU between EnsembleLinear layers."""

    def __init__(self, members: int, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (256, 256)):
        layers, width = [], in_dim
        for h in hidden:
            layers += [EnsembleLinear(members, width, h), nn.SiLU()]
            width = h
        layers.append(EnsembleLinear(members, width, out_dim))
        super().__init__(*layers)


class EnsembleDeltaModel(nn.Module):
    """E models of s_t+1 = s_t + f_e(normalised s_t, a_t), sharing their normalisers."""

    def __init__(self, state_dim: int, action_dim: int, members: int = 5, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one member, got {members}")
        self.state_dim, self.action_dim, self.members = state_dim, action_dim, members
        self.net = EnsembleMLP(members, state_dim + action_dim, state_dim, hidden)
        self.input_norm = Normaliser(state_dim + action_dim)
        self.delta_norm = Normaliser(state_dim)

    @property
    def device(self) -> torch.device:
        return self.net[0].weight.device

    @torch.no_grad()
    def fit_normalisers(self, state, action, next_state) -> "EnsembleDeltaModel":
        """Fit both normalisers on training transitions (N, D), (N, A), (N, D)."""
        state = as_batch(state, self.state_dim, "state").float()
        action = as_batch(action, self.action_dim, "action").float()
        next_state = as_batch(next_state, self.state_dim, "next_state").float()
        self.input_norm.fit(torch.cat([state, action], dim=1))
        change = next_state - state
        self.delta_norm.fit(change)
        # A component that never changes in the training data (the goal, fixed during an episode)
        # is predicted not to change: its scale stays tiny instead of the Normaliser's default of 1,
        # which would turn any small output of the network into a change of that many units.
        self.delta_norm.std[change.std(dim=0) <= STILL] = STILL
        return self.to(self.device)

    def _per_member(self, x: torch.Tensor, dim: int, name: str) -> torch.Tensor:
        """(B, dim) -> (E, B, dim) shared by every member; (E, B, dim) is kept as it is."""
        x = torch.as_tensor(x, device=self.device, dtype=torch.float32)
        if x.ndim == 2 and x.shape[1] == dim:
            return x.expand(self.members, *x.shape)
        if x.ndim == 3 and x.shape[0] == self.members and x.shape[2] == dim:
            return x
        raise ValueError(f"{name} must have shape (B, {dim}) or ({self.members}, B, {dim}), got {tuple(x.shape)}")

    def predict_change(self, state, action) -> torch.Tensor:
        """(E or -, B, D), (E or -, B, A) -> (E, B, D): each member's change, in normalised units."""
        state = self._per_member(state, self.state_dim, "state")
        action = self._per_member(action, self.action_dim, "action")
        return self.net(self.input_norm(torch.cat([state, action], dim=-1)))

    def forward(self, state, action) -> torch.Tensor:
        """(E or -, B, D), (E or -, B, A) -> (E, B, D): each member's predicted next state."""
        state = self._per_member(state, self.state_dim, "state")
        return state + self.delta_norm.denormalise(self.predict_change(state, action))

    def loss(self, state, action, next_state, weight=None) -> torch.Tensor:
        """Mean squared error of the normalised change, averaged over members.

        state (B, D), action (B, A), next_state (B, D); weight (B, E): how often each row
        counts for each member (bootstrap weights); None = every row once for every member.
        """
        state = as_batch(state, self.state_dim, "state").to(self.device, torch.float32)
        next_state = torch.as_tensor(next_state, device=self.device).float()
        return delta_loss(self.predict_change(state, action), state, next_state, self.delta_norm.mean,
                          self.delta_norm.std, weight)

    def bootstrap_weights(self, rows: int, seed: int = 0) -> torch.Tensor:
        """(rows, E) Poisson(1) counts: member e sees row i that many times (a bootstrap resample)."""
        generator = torch.Generator().manual_seed(seed)
        return torch.poisson(torch.ones(rows, self.members), generator=generator)

    @torch.no_grad()
    def folded_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The linear layers' (weight (E, in, out), bias (E, 1, out)) with both normalisers folded in.

        Normalising the input is affine, and so is denormalising the output, so both can be
        absorbed into the first and last layers once per rollout instead of being applied at
        every step. With z = (x - m) / s and a first layer z @ W + b,

            z @ W + b = x @ (W / s[:, None]) + (b - (m / s) @ W),

        and with a last layer h @ W + b giving the normalised change, the change itself is
        (h @ W + b) * s_d + m_d = h @ (W * s_d) + (b * s_d + m_d). The first layer's rows
        keep the input order [state | action].
        """
        layers = [(m.weight, m.bias) for m in self.net if isinstance(m, EnsembleLinear)]
        mean, std = self.input_norm.mean, self.input_norm.std
        w, b = layers[0]
        layers[0] = (w / std[:, None], b - ((mean / std) @ w).unsqueeze(1))
        w, b = layers[-1]                                 # (the same layer when there is no hidden one)
        d_mean, d_std = self.delta_norm.mean, self.delta_norm.std
        layers[-1] = (w * d_std, b * d_std + d_mean)
        return layers

    @torch.no_grad()
    def rollout(self, state, actions) -> torch.Tensor:
        """Open-loop predictions of every member for every candidate action sequence.

        state: (D,) one start for all, (N, D) one per candidate, or (E, N, D) one per member
        and candidate. actions: (N, H, A). Returns (E, N, H, D): s_t+1 .. s_t+H.

        The same numbers as calling the model H times (up to float rounding), with less work
        per step: the normalisers are folded into the first and last layers (``folded_layers``),
        and the activations work in place. The only Python loop is over the horizon; each
        step is one batched matrix product per layer over all members and candidates.
        """
        actions = torch.as_tensor(actions, device=self.device, dtype=torch.float32)
        if actions.ndim != 3 or actions.shape[2] != self.action_dim:
            raise ValueError(f"actions must have shape (N, H, {self.action_dim}), got {tuple(actions.shape)}")
        n, horizon, _ = actions.shape
        state = torch.as_tensor(state, device=self.device, dtype=torch.float32)
        if state.ndim == 1:
            state = state.expand(n, -1)
        s = self._per_member(state, self.state_dim, "state").contiguous()            # (E, N, D)
        if s.shape[1] != n:
            raise ValueError(f"{s.shape[1]} start states for {n} action sequences")
        layers = self.folded_layers()
        activations = [m for m in self.net if not isinstance(m, EnsembleLinear)]
        plans = actions.transpose(0, 1).expand(self.members, horizon, n, self.action_dim)   # (E, H, N, A), no copy
        out = []
        for t in range(horizon):
            x = torch.cat([s, plans[:, t]], dim=-1)                                  # (E, N, D + A), raw units
            x = torch.baddbmm(layers[0][1], x, layers[0][0])                         # first layer, normaliser folded in
            for (w, b), activation in zip(layers[1:], activations):
                x = torch.baddbmm(b, activate(activation, x), w)
            s = s + x                                                  # the last layer gives the change, (E, N, D)
            out.append(s)
        return torch.stack(out, dim=2)


def delta_loss(predicted_change: torch.Tensor, state: torch.Tensor, next_state: torch.Tensor,
               delta_mean: torch.Tensor, delta_std: torch.Tensor, weight=None) -> torch.Tensor:
    """Chapter 4's training loss: each member's predicted change (E, B, D), in normalised units, against
    the true change of rows state, next_state (B, D), normalised with delta_mean, delta_std (D,).

    The squared error is averaged over components, then over members and rows; with ``weight`` (B, E)
    (how often row b counts for member e: bootstrap counts) it is the weighted mean over
    (member, row) pairs, sum w * error / sum w (the sum kept at least 1, so a batch no member
    draws costs 0, not NaN). A scalar."""
    target = (next_state - state - delta_mean) / delta_std                  # (B, D)
    error = (predicted_change - target).pow(2).mean(dim=-1)                  # (E, B)
    if weight is None:
        return error.mean()
    weight = torch.as_tensor(weight, device=error.device, dtype=error.dtype).T   # (E, B)
    if weight.shape != error.shape:
        raise ValueError(f"weight must have shape (B, E) = {tuple(error.shape[::-1])}, got {tuple(weight.T.shape)}")
    return (weight * error).sum() / weight.sum().clamp_min(1.0)


def activate(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """activation(x), in place for SiLU (saves a fresh (E, N, W) tensor per layer and step; no gradients here)."""
    return F.silu(x, inplace=True) if isinstance(activation, nn.SiLU) else activation(x)


def disagreement(predictions: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """How much the members disagree: (E, ..., D) -> (...,).

    The standard deviation across members (dim 0) of each component, divided by `scale`
    (D,) when given so that components in different units weigh alike, averaged over D.
    """
    if predictions.shape[0] < 2:
        raise ValueError("disagreement needs at least two ensemble members")
    spread = predictions.std(dim=0)
    if scale is not None:
        spread = spread / scale
    return spread.mean(dim=-1)
