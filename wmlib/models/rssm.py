"""A recurrent state-space model (PlaNet, Dreamer): a deterministic memory and a stochastic state, learned
from frames by redrawing them.

The state at step t has two parts: h_t, a GRU's memory (what the past makes certain), and z_t,
a Gaussian sample (what the past leaves open). Per step:

    h_t = GRU(h_t-1, [z_t-1, a_t-1])
    prior      p(z_t | h_t)       = N(mu_p, sigma_p)     the model's guess before it looks
    posterior  q(z_t | h_t, e_t)  = N(mu_q, sigma_q)     after it looks: e_t encodes o_t (frame + proprio)
    decoder    o_t ~ N(decode(h_t, z_t), 1)              the state must be enough to redraw the frame
    reward     r_t-1 ~ N(reward(h_t, z_t), 1)            the reward a_t-1 earned, read on arrival

Training runs the posterior along a window (L + 1 observations, L actions) and minimises
reconstruction + reward error + ``kl_balanced(posterior, prior)``: the prior learns to predict
what the posterior will see, and the posterior is kept close to what the prior could have
guessed. Imagination runs the prior alone: no frames, only actions. The feature that probes,
reward heads and planners read is [h_t, z_t] (z_t's mean when filtering, a sample when training).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.pixels import FrameDecoder, ObservationEncoder

MIN_STD = 0.1


def gaussian_kl(mean_q, std_q, mean_p, std_p) -> torch.Tensor:
    """KL(N(mean_q, std_q) || N(mean_p, std_p)) of diagonal Gaussians, summed over the last axis: (..., Z) -> (...)."""
    return (torch.log(std_p / std_q) + (std_q ** 2 + (mean_q - mean_p) ** 2) / (2 * std_p ** 2) - 0.5).sum(-1)


def kl_balanced(post_mean, post_std, prior_mean, prior_std, balance: float = 0.8,
                free_nats: float = 1.0) -> torch.Tensor:
    """The KL term of a latent world model's loss, balanced and with free nats (DreamerV2).

    All four (..., Z). Two copies of KL(posterior || prior), each with one side held fixed
    (``detach``): ``balance`` of the weight on the copy that moves the prior towards the
    posterior, 1 - ``balance`` on the copy that moves the posterior towards the prior. Each copy,
    averaged over the leading axes, counts only above ``free_nats``: below it the latent is
    allowed that much information for free. Returns a scalar.
    """
    train_prior = gaussian_kl(post_mean.detach(), post_std.detach(), prior_mean, prior_std).mean()
    train_post = gaussian_kl(post_mean, post_std, prior_mean.detach(), prior_std.detach()).mean()
    floor = torch.tensor(free_nats, device=train_prior.device)
    return balance * torch.maximum(train_prior, floor) + (1 - balance) * torch.maximum(train_post, floor)


def gaussian(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 2Z) network output -> mean (..., Z), std (..., Z) >= MIN_STD."""
    mean, raw = params.chunk(2, dim=-1)
    return mean, F.softplus(raw) + MIN_STD


class RSSM(nn.Module):
    """A recurrent state-space model on (frames, proprio) observations and actions (A,).

    deter, stoch: sizes of h and z; the feature is their concatenation, ``feature_dim`` = deter + stoch.
    The carry between steps is (h (B, deter), z (B, stoch)).
    """

    def __init__(self, proprio_dim: int, action_dim: int, deter: int = 128, stoch: int = 16, embed_dim: int = 128,
                 hidden: int = 128, image_size: int = 64, balance: float = 0.8, free_nats: float = 1.0,
                 kl=None):
        super().__init__()
        self.kl = kl or kl_balanced           # the KL term's formula; a student's own can stand in
        self.action_dim, self.deter, self.stoch = action_dim, deter, stoch
        self.feature_dim = deter + stoch
        self.balance, self.free_nats = balance, free_nats
        self.encoder = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.into_memory = nn.Sequential(nn.Linear(stoch + action_dim, hidden), nn.SiLU())
        self.memory = nn.GRUCell(hidden, deter)
        self.prior_net = nn.Sequential(nn.Linear(deter, hidden), nn.SiLU(), nn.Linear(hidden, 2 * stoch))
        self.post_net = nn.Sequential(nn.Linear(deter + embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, 2 * stoch))
        self.decoder = FrameDecoder(self.feature_dim, image_size)
        self.reward_head = nn.Sequential(nn.Linear(self.feature_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.last_parts: dict[str, float] = {}

    # ---------------------------------------------------------------- one step
    def initial(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.reward_head[0].weight.device
        return torch.zeros(batch, self.deter, device=device), torch.zeros(batch, self.stoch, device=device)

    def advance(self, carry, action: torch.Tensor) -> torch.Tensor:
        """(h_t-1, z_t-1), a_t-1 (B, A) -> h_t (B, deter)."""
        h, z = carry
        return self.memory(self.into_memory(torch.cat([z, action], dim=-1)), h)

    def prior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gaussian(self.post_net(torch.cat([h, embedding], dim=-1)))

    @staticmethod
    def feature(carry) -> torch.Tensor:
        """(h, z) -> (B, deter + stoch)."""
        return torch.cat(carry, dim=-1)

    def carry_of(self, feature: torch.Tensor):
        """(B, deter + stoch) -> (h, z)."""
        return feature[..., :self.deter], feature[..., self.deter:]

    # ---------------------------------------------------------------- filtering and imagining
    @torch.no_grad()
    def filter_step(self, carry, action, frames, proprio):
        """Take in the action just sent (B, A) and the observation it led to (frames (B, ...), proprio (B, P));
        return the new carry, its z the posterior's mean. At an episode's start pass ``initial(B)`` and zeros."""
        h = self.advance(carry, torch.as_tensor(action, dtype=torch.float32, device=carry[0].device))
        mean, _ = self.posterior(h, self.encoder(frames, proprio))
        return h, mean

    def imagine(self, carry, actions: torch.Tensor, sample: bool = False):
        """From a carry, roll the prior through actions (B, H, A): features (B, H, F), rewards (B, H)."""
        features = []
        for t in range(actions.shape[1]):
            h = self.advance(carry, actions[:, t])
            mean, std = self.prior(h)
            carry = (h, mean + std * torch.randn_like(std) if sample else mean)
            features.append(self.feature(carry))
        features = torch.stack(features, dim=1)
        return features, self.reward_head(features).squeeze(-1)

    # ---------------------------------------------------------------- training
    def loss(self, frames, proprio, action, reward, **_) -> torch.Tensor:
        """A batch of windows (``wmlib.data.Sequences.window``): frames (B, L+1, ...), proprio (B, L+1, P),
        action (B, L, A), reward (B, L). Returns the scalar loss; its parts go to ``last_parts``."""
        device = self.reward_head[0].weight.device
        action, reward = action.to(device).float(), reward.to(device).float()
        embedded = self.encoder(frames, proprio)                              # (B, L+1, E)
        B, L = action.shape[:2]
        carry = self.initial(B)
        previous = torch.zeros(B, self.action_dim, device=device)            # no action before the first frame
        features, post, prior = [], [], []
        for t in range(L + 1):
            h = self.advance(carry, previous)
            prior.append(self.prior(h))
            mean, std = self.posterior(h, embedded[:, t])
            post.append((mean, std))
            carry = (h, mean + std * torch.randn_like(std))                  # reparameterised sample
            features.append(self.feature(carry))
            if t < L:
                previous = action[:, t]
        features = torch.stack(features, dim=1)                              # (B, L+1, F)
        stack = lambda pairs, i: torch.stack([p[i] for p in pairs], dim=1)   # noqa: E731
        kl = self.kl(stack(post, 0), stack(post, 1), stack(prior, 0), stack(prior, 1), self.balance,
                         self.free_nats)
        recon = self.decoder.loss(features, frames)
        reward_error = ((self.reward_head(features[:, 1:]).squeeze(-1) - reward) ** 2).mean()
        self.last_parts = {"reconstruction": float(recon.detach()), "reward": float(reward_error.detach()),
                           "kl": float(kl.detach())}
        return recon + reward_error + kl
