"""What every latent world model offers the rest of the course, and the small pieces several of them share.

A latent world model reads observations (frames and proprioception) into a latent, moves the
latent forward under actions, and predicts the rewards on the way. The families differ in what
their training asks of the latent (redraw the frame, predict the next embedding, predict reward
and value only...), not in this contract, so one yardstick (probes, drift, ranking, planning)
measures them all:

    carry = model.initial(B)                                   # before the first observation
    carry = model.filter_step(carry, action, frames, proprio)  # take in the last action and what it led to
    z = model.feature(carry)                                   # (B, F): what probes and planners read
    carry = model.carry_of(z)                                  # and back
    features, rewards = model.imagine(carry, actions)          # (B, H, F), (B, H) for actions (B, H, A)
    model.value(features)                                      # (..., ) where the model has a value head

A model without memory ignores the carry it is given and encodes the observation alone.

``LatentPlanningModel`` puts a latent model behind ``wmlib.planning``'s contract, so chapter 5's
planners (random shooting, CEM, MPPI) plan in a latent unchanged: the "state" it plans from is
the carry, and ``latent_cost`` is minus the predicted reward plus, at the horizon, minus the
model's value (a terminal value), where it has one.
"""
from __future__ import annotations

import copy
from typing import Protocol

import torch
from torch import nn


class LatentModel(Protocol):
    feature_dim: int
    action_dim: int

    def initial(self, batch: int): ...

    def filter_step(self, carry, action: torch.Tensor, frames, proprio): ...

    def feature(self, carry) -> torch.Tensor: ...

    def carry_of(self, feature: torch.Tensor): ...

    def imagine(self, carry, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def loss(self, **window) -> torch.Tensor: ...


class Memoryless:
    """The latent-model contract for a model without memory: the carry is the encoding of the last
    observation (``self.encode(frames, proprio) -> (B, F)``), so filtering forgets the past."""

    def initial(self, batch: int):
        return None

    @torch.no_grad()
    def filter_step(self, carry, action, frames, proprio) -> torch.Tensor:
        return self.encode(frames, proprio)

    def feature(self, carry) -> torch.Tensor:
        return carry

    def carry_of(self, feature: torch.Tensor) -> torch.Tensor:
        return feature


def fit_proprio(model: nn.Module, proprio) -> nn.Module:
    """Fit the proprioception normaliser of every observation encoder in a model (its target copies
    included) on training proprioception (N, P); returns the model."""
    from wmlib.models.pixels import ObservationEncoder

    encoders = [m for m in model.modules() if isinstance(m, ObservationEncoder)]
    if not encoders:
        raise ValueError(f"{type(model).__name__} has no observation encoder to fit")
    for encoder in encoders:
        encoder.proprio_norm.fit(torch.as_tensor(proprio, dtype=torch.float32).reshape(-1, encoder.proprio_norm.dim))
    return model


def moving_average_copy(online: nn.Module) -> nn.Module:
    """A frozen copy of a network, to be moved slowly towards it by ``ema_update`` (a target network)."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- tau * target + (1 - tau) * online, parameter by parameter (buffers are copied)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, 1.0 - tau)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)


def n_step_return(rewards: torch.Tensor, continues: torch.Tensor, terminal_value: torch.Tensor,
                  discount: float) -> torch.Tensor:
    """The n-step return with a terminal value: r_0 + g c_0 r_1 + ... + g^n c_0...c_n-1 V(s_n).

    rewards, continues: (B, n): the rewards of n consecutive actions, and 0 where an action ended the
    episode (nothing after it counts, the terminal value included); terminal_value: (B,) the value of
    the state after the n-th action. Returns (B,).
    """
    alive = torch.ones_like(terminal_value)
    total = torch.zeros_like(terminal_value)
    for k in range(rewards.shape[1]):
        total = total + alive * rewards[:, k]
        alive = alive * discount * continues[:, k]
    return total + alive * terminal_value


class LatentPlanningModel:
    """A latent model behind ``wmlib.planning``'s model contract.

    The planner's "state" (F + 1,) is the model's feature with a slot for the reward;
    ``rollout(state, actions (N, H, A)) -> (1, N, H, F + 1)`` holds each predicted feature with
    its predicted reward in that slot, which ``latent_cost`` reads.
    """

    def __init__(self, model):
        self.model = model

    def state_of(self, carry) -> torch.Tensor:
        """A carry of batch 1 -> the planner's state (F + 1,)."""
        feature = self.model.feature(carry)[0]
        return torch.cat([feature, feature.new_zeros(1)])

    @torch.no_grad()
    def rollout(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        carry = self.model.carry_of(state[:-1].expand(actions.shape[0], -1))
        features, rewards = self.model.imagine(carry, actions)
        return torch.cat([features, rewards[..., None]], dim=-1)[None]


def latent_cost(model, terminal_value: bool = True, discount: float = 0.99):
    """The cost of predicted (features, reward) (E, N, H, F + 1): minus the reward of each step, discounted,
    and at the last step minus the discounted value of the feature there, where the model has a value."""
    def cost(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        horizon = states.shape[2]
        weights = discount ** torch.arange(horizon, dtype=states.dtype, device=states.device)
        per_step = -states[..., -1] * weights
        if terminal_value and hasattr(model, "value"):
            with torch.no_grad():
                last = model.value(states[:, :, -1, :-1])
            per_step = per_step.clone()
            per_step[..., -1] = per_step[..., -1] - discount ** horizon * last
        return per_step
    return cost
