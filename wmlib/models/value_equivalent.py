"""A value-equivalent model (MuZero): a latent asked for nothing but the rewards and values a planner needs.

    s_t      = representation(o_t)
    s_t+k+1  = dynamics(s_t+k, a_t+k)        r̂_t+k = reward(s_t+k, a_t+k)        v̂_t+k = value(s_t+k)
    losses over the window, unrolled from the real s_t:
      reward  (r̂_t+k - r_t+k)²
      value   (v̂_t+k - G_t+k)²,   G_t+k = r_t+k + g r_t+k+1 + ... + g^n V̄(o_t+k+n)   (``n_step_return``)

No reconstruction, no consistency with the next observation's latent: two observations that
promise the same rewards and values may share a latent, whatever else differs between them.
The latent is free to forget the scene; the yardstick's probe measures how much of it survives.
V̄ is a moving average of the value read off the real observation's latent (a target network).
"""
from __future__ import annotations

import torch
from torch import nn

from wmlib.models.latent import Memoryless, ema_update, moving_average_copy, n_step_return
from wmlib.models.pixels import ObservationEncoder


class ValueEquivalent(Memoryless, nn.Module):
    """Representation, dynamics, reward and value: trained on rewards and n-step returns only."""

    def __init__(self, proprio_dim: int, action_dim: int, latent_dim: int = 64, embed_dim: int = 128,
                 hidden: int = 128, image_size: int = 64, discount: float = 0.9, tau: float = 0.99,
                 td_target=None):
        super().__init__()
        self.td_target = td_target or n_step_return   # the return's formula; a student's own can stand in
        self.action_dim, self.feature_dim, self.discount, self.tau = action_dim, latent_dim, discount, tau
        self.observe = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.project = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, latent_dim), nn.LayerNorm(latent_dim))
        self.dynamics = nn.Sequential(nn.Linear(latent_dim + action_dim, hidden), nn.SiLU(),
                                      nn.Linear(hidden, latent_dim), nn.LayerNorm(latent_dim))
        self.reward_head = nn.Sequential(nn.Linear(latent_dim + action_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.value_head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.target = nn.ModuleDict({"observe": moving_average_copy(self.observe),
                                     "project": moving_average_copy(self.project),
                                     "value": moving_average_copy(self.value_head)})
        self.last_parts: dict[str, float] = {}

    def encode(self, frames, proprio) -> torch.Tensor:
        return self.project(self.observe(frames, proprio))

    def value(self, s: torch.Tensor) -> torch.Tensor:
        return self.value_head(s).squeeze(-1)

    def imagine(self, carry, actions: torch.Tensor):
        s, features, rewards = carry, [], []
        for t in range(actions.shape[1]):
            sa = torch.cat([s, actions[:, t]], dim=-1)
            rewards.append(self.reward_head(sa).squeeze(-1))
            s = s + self.dynamics(sa)
            features.append(s)
        return torch.stack(features, dim=1), torch.stack(rewards, dim=1)

    def update_target(self) -> None:
        for name, online in (("observe", self.observe), ("project", self.project), ("value", self.value_head)):
            ema_update(self.target[name], online, self.tau)

    def loss(self, frames, proprio, action, reward, continues, **_) -> torch.Tensor:
        """Windows: frames (B, L+1, ...), proprio (B, L+1, P), action, reward, continues (B, L[, A])."""
        device = self.reward_head[0].weight.device
        action, reward, continues = (x.to(device).float() for x in (action, reward, continues))
        L = action.shape[1]
        with torch.no_grad():
            last = self.target["project"](self.target["observe"](frames[:, -1], proprio[:, -1]))
            bootstrap = self.target["value"](last).squeeze(-1)                          # V̄(o_t+L)
            returns = torch.stack([self.td_target(reward[:, k:], continues[:, k:], bootstrap, self.discount)
                                   for k in range(L)], dim=1)                            # (B, L)
        s0 = self.encode(frames[:, 0], proprio[:, 0])
        features, predicted_reward = self.imagine(s0, action)
        states = torch.cat([s0[:, None], features[:, :-1]], dim=1)                      # s_t+k, k = 0..L-1
        reward_error = ((predicted_reward - reward) ** 2).mean()
        value_error = ((self.value(states) - returns) ** 2).mean()
        self.last_parts = {"reward": float(reward_error.detach()), "value": float(value_error.detach())}
        return reward_error + value_error
