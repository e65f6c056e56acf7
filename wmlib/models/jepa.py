"""A joint-embedding predictive model (I-JEPA, V-JEPA, here action-conditioned): predict the embedding of
the next observation, never its pixels.

    z_t      = encoder(o_t)                  the online encoder, trained
    z̄_t+k    = target(o_t+k)                 the target encoder: a moving average of the online one, no gradient
    ẑ_t+k+1  = ẑ_t+k + predictor(ẑ_t+k, a_t+k),   ẑ_t = z_t
    loss     = mean over k and dimensions of (ẑ_t+k - z̄_t+k)²  +  collapse_guard(z)

Predicting an embedding invites a cheap answer: an encoder that maps every frame to the same
point predicts perfectly. Two things stand against it here: the target is a slowly moving
copy, so the online encoder cannot simply chase its own output, and ``collapse_guard`` charges
for embedding dimensions whose spread over the batch falls below 1 and for dimensions that
repeat each other (VICReg's variance and covariance terms).

No decoder: what the embedding keeps is whatever helps predict the next embedding. The reward
head reads the embedding with its gradient stopped, so the task never shapes the representation;
the yardstick can then ask whether prediction alone kept what the task needs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.latent import Memoryless, ema_update, moving_average_copy
from wmlib.models.pixels import ObservationEncoder


def collapse_guard(z: torch.Tensor, target_std: float = 1.0, covariance_weight: float = 0.04) -> torch.Tensor:
    """z (N, D) embeddings of a batch -> a scalar that is 0 for a spread-out, decorrelated batch.

    variance: mean over dimensions of max(0, target_std - std_j), std_j the standard deviation of
      dimension j over the N rows (with 1e-4 added to the variance under the square root);
    covariance: the sum of squared off-diagonal entries of the (D, D) covariance matrix, over D.
    Returns variance + covariance_weight * covariance.
    """
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"collapse_guard needs a batch of embeddings (N >= 2, D), got shape {tuple(z.shape)}")
    std = torch.sqrt(z.var(dim=0) + 1e-4)
    variance = F.relu(target_std - std).mean()
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (len(z) - 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return variance + covariance_weight * (off_diagonal ** 2).sum() / z.shape[1]


class JEPA(Memoryless, nn.Module):
    """An action-conditioned joint-embedding predictive model; its feature is the embedding (latent_dim)."""

    def __init__(self, proprio_dim: int, action_dim: int, latent_dim: int = 64, embed_dim: int = 128,
                 hidden: int = 128, image_size: int = 64, tau: float = 0.99, guard_weight: float = 1.0,
                 guard=None):
        super().__init__()
        self.guard = guard or collapse_guard   # the guard's formula; a student's own can stand in
        self.action_dim, self.feature_dim, self.tau, self.guard_weight = action_dim, latent_dim, tau, guard_weight
        self.observe = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.project = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, latent_dim))
        self.predictor = nn.Sequential(nn.Linear(latent_dim + action_dim, hidden), nn.SiLU(),
                                       nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, latent_dim))
        self.reward_head = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.target_observe, self.target_project = moving_average_copy(self.observe), moving_average_copy(self.project)
        self.last_parts: dict[str, float] = {}

    def encode(self, frames, proprio) -> torch.Tensor:
        return self.project(self.observe(frames, proprio))

    @torch.no_grad()
    def encode_target(self, frames, proprio) -> torch.Tensor:
        return self.target_project(self.target_observe(frames, proprio))

    def step(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z + self.predictor(torch.cat([z, action], dim=-1))

    # the latent-model contract: no memory, the carry is the embedding
    def imagine(self, carry, actions: torch.Tensor):
        z, features = carry, []
        for t in range(actions.shape[1]):
            z = self.step(z, actions[:, t])
            features.append(z)
        features = torch.stack(features, dim=1)
        return features, self.reward_head(features).squeeze(-1)

    def update_target(self) -> None:
        """Move the target encoder towards the online one (call after each optimiser step)."""
        ema_update(self.target_observe, self.observe, self.tau)
        ema_update(self.target_project, self.project, self.tau)

    def loss(self, frames, proprio, action, reward, **_) -> torch.Tensor:
        """Windows: frames (B, L+1, ...), proprio (B, L+1, P), action (B, L, A), reward (B, L)."""
        device = self.reward_head[0].weight.device
        action, reward = action.to(device).float(), reward.to(device).float()
        z0 = self.encode(frames[:, 0], proprio[:, 0])
        targets = self.encode_target(frames[:, 1:], proprio[:, 1:])                     # (B, L, D)
        predicted, _ = self.imagine(z0, action)                                         # (B, L, D)
        prediction = ((predicted - targets) ** 2).mean()
        guard = self.guard(z0)
        reward_error = ((self.reward_head(predicted.detach()).squeeze(-1) - reward) ** 2).mean()
        self.last_parts = {"prediction": float(prediction.detach()), "collapse_guard": float(guard.detach()),
                           "reward": float(reward_error.detach())}
        return prediction + self.guard_weight * guard + reward_error
