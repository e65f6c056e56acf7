"""A task-oriented latent (TD-MPC2): no decoder; the latent is trained to predict reward, value and itself.

    z_t      = encoder(o_t)                         SimNorm keeps it on a product of simplices
    z_t+k+1  = dynamics(z_t+k, a_t+k)               rolled from z_t through the window's actions
    r̂_t+k    = reward(z_t+k, a_t+k)
    V(z)                                            the value of the latent, as the data's behaviour earns it
    losses, each step k weighted rho^k (nearer steps count more):
      consistency  || z_t+k+1 - z̄_t+k+1 ||²          z̄ = target encoder (a moving average, no gradient)
      reward       (r̂_t+k - r_t+k)²
      value        (V(z_t+k) - (r_t+k + g c_t+k V̄(z̄_t+k+1)))²     V̄: the value head's moving average

Nothing asks the latent to redraw the frame: it keeps what predicts rewards, values and its own
future. Planning (MPPI in ``wmlib.planning``) sums the predicted rewards over a short horizon
and adds the value at its end: the terminal value stands for everything after the horizon.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.latent import Memoryless, ema_update, moving_average_copy, n_step_return
from wmlib.models.pixels import ObservationEncoder


class SimNorm(nn.Module):
    """(..., D) -> (..., D): a softmax over each group of ``group`` entries, so every group sums to 1."""

    def __init__(self, group: int = 8):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.group:
            raise ValueError(f"SimNorm: {x.shape[-1]} entries do not split into groups of {self.group}")
        return F.softmax(x.reshape(*x.shape[:-1], -1, self.group), dim=-1).reshape(x.shape)


def consistency_loss(predicted: torch.Tensor, target: torch.Tensor, rho: float = 0.5) -> torch.Tensor:
    """Latent consistency: predicted (B, H, D) latents, rolled through the model from a real start,
    against target (B, H, D), the target encoder's latents of the real observations.
    Returns sum_k rho^k * mean_b ||predicted_bk - target_bk||² / sum_k rho^k; no gradient reaches target."""
    if predicted.shape != target.shape or predicted.ndim != 3:
        raise ValueError(f"predicted and target must both be (B, H, D), got {tuple(predicted.shape)} and "
                         f"{tuple(target.shape)}")
    weights = rho ** torch.arange(predicted.shape[1], dtype=predicted.dtype, device=predicted.device)
    per_step = ((predicted - target.detach()) ** 2).sum(-1).mean(0)
    return (weights * per_step).sum() / weights.sum()


class TaskLatent(Memoryless, nn.Module):
    """A decoder-free latent trained on consistency, reward and a temporal-difference value."""

    def __init__(self, proprio_dim: int, action_dim: int, latent_dim: int = 64, embed_dim: int = 128,
                 hidden: int = 128, image_size: int = 64, discount: float = 0.9, rho: float = 0.5,
                 tau: float = 0.99, consistency=None, td_target=None):
        super().__init__()
        # the two formulas of the loss; a student's own can stand in for either
        self.consistency, self.td_target = consistency or consistency_loss, td_target or n_step_return
        self.action_dim, self.feature_dim = action_dim, latent_dim
        self.discount, self.rho, self.tau = discount, rho, tau
        self.observe = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.project = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, latent_dim), SimNorm())
        mlp = lambda out: nn.Sequential(nn.Linear(latent_dim + action_dim, hidden), nn.SiLU(),  # noqa: E731
                                        nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, out))
        self.dynamics = nn.Sequential(mlp(latent_dim), SimNorm())
        self.reward_head = mlp(1)
        self.value_head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.target_observe, self.target_project = moving_average_copy(self.observe), moving_average_copy(self.project)
        self.target_value = moving_average_copy(self.value_head)
        self.last_parts: dict[str, float] = {}

    def encode(self, frames, proprio) -> torch.Tensor:
        return self.project(self.observe(frames, proprio))

    def value(self, z: torch.Tensor) -> torch.Tensor:
        return self.value_head(z).squeeze(-1)

    def imagine(self, carry, actions: torch.Tensor):
        z, features, rewards = carry, [], []
        for t in range(actions.shape[1]):
            za = torch.cat([z, actions[:, t]], dim=-1)
            rewards.append(self.reward_head(za).squeeze(-1))
            z = self.dynamics(za)
            features.append(z)
        return torch.stack(features, dim=1), torch.stack(rewards, dim=1)

    def update_target(self) -> None:
        ema_update(self.target_observe, self.observe, self.tau)
        ema_update(self.target_project, self.project, self.tau)
        ema_update(self.target_value, self.value_head, self.tau)

    def loss(self, frames, proprio, action, reward, continues, **_) -> torch.Tensor:
        """Windows: frames (B, L+1, ...), proprio (B, L+1, P), action, reward, continues (B, L[, A])."""
        device = self.reward_head[0].weight.device
        action, reward, continues = (x.to(device).float() for x in (action, reward, continues))
        L = action.shape[1]
        with torch.no_grad():
            targets = self.target_project(self.target_observe(frames, proprio))       # (B, L+1, D)
            next_value = self.target_value(targets[:, 1:]).squeeze(-1)                # (B, L)
        z0 = self.encode(frames[:, 0], proprio[:, 0])
        predicted, predicted_reward = self.imagine(z0, action)                        # (B, L, D), (B, L)
        starts = torch.cat([z0[:, None], predicted[:, :-1]], dim=1)                   # z_t+k, k = 0..L-1
        td = torch.stack([self.td_target(reward[:, k:k + 1], continues[:, k:k + 1], next_value[:, k], self.discount)
                          for k in range(L)], dim=1)                                  # (B, L)
        weights = self.rho ** torch.arange(L, dtype=reward.dtype, device=device)
        weights = weights / weights.sum()
        consistency = self.consistency(predicted, targets[:, 1:], self.rho)
        reward_error = (weights * ((predicted_reward - reward) ** 2).mean(0)).sum()
        value_error = (weights * ((self.value(starts) - td) ** 2).mean(0)).sum()
        self.last_parts = {"consistency": float(consistency.detach()), "reward": float(reward_error.detach()),
                           "value": float(value_error.detach())}
        return 20 * consistency + reward_error + value_error
