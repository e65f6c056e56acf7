"""World Models (Ha and Schmidhuber): Vision compresses each frame, Memory predicts the next code,
a small Controller acts, trained inside the model.

    V: a variational autoencoder   q(z_t | o_t) = N(mu, sigma),  o_t ~ N(decoder(z_t), 1),  prior N(0, I)
    M: a recurrent memory          h_t+1 = GRU(h_t, [z_t, a_t]);  p(z_t+1 | h_t+1) = sum_k pi_k N(mu_k, sigma_k)
                                   (a mixture: the next frame may go one of several ways); r̂_t = reward(h_t+1, z̄_t+1)
    C: a linear controller         a_t = tanh(W [h_t, z_t] + b), its few weights searched by the
                                   cross-entropy method on returns imagined by M, never on the real task
V and M are trained from the same windows but separately: M reads V's codes with their
gradient stopped, so the codes are what redraws frames, not what M finds easy to predict. The
feature for probes and planners is [h_t, z_t] (z_t: V's mean when filtering, the mixture's mean
when imagining).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.pixels import FrameDecoder, ObservationEncoder
from wmlib.models.rssm import MIN_STD, gaussian


def mixture_nll(z: torch.Tensor, logits: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """-log sum_k pi_k N(z; mean_k, std_k) with pi = softmax(logits): z (..., Z), logits (..., K),
    mean and std (..., K, Z) -> (...)."""
    log_normal = (-0.5 * ((z[..., None, :] - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    return -torch.logsumexp(F.log_softmax(logits, dim=-1) + log_normal, dim=-1)


class VMC(nn.Module):
    """Vision (a VAE) and Memory (a GRU with a mixture head and a reward head); the Controller is below."""

    def __init__(self, proprio_dim: int, action_dim: int, code: int = 16, deter: int = 128, mixtures: int = 5,
                 embed_dim: int = 128, hidden: int = 128, image_size: int = 64, beta: float = 1.0):
        super().__init__()
        self.action_dim, self.code, self.deter, self.mixtures, self.beta = action_dim, code, deter, mixtures, beta
        self.feature_dim = deter + code
        self.observe = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.to_code = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, 2 * code))
        self.decoder = FrameDecoder(code, image_size)
        self.memory = nn.GRUCell(code + action_dim, deter)
        self.mixture_head = nn.Linear(deter, mixtures * (1 + 2 * code))
        self.reward_head = nn.Sequential(nn.Linear(self.feature_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.last_parts: dict[str, float] = {}

    def vision(self, frames, proprio) -> tuple[torch.Tensor, torch.Tensor]:
        """Observations -> the code's mean and std (..., code)."""
        return gaussian(self.to_code(self.observe(frames, proprio)))

    def mixture(self, h: torch.Tensor):
        """h (..., deter) -> logits (..., K), means and stds (..., K, code) of the next code."""
        out = self.mixture_head(h)
        logits, rest = out[..., :self.mixtures], out[..., self.mixtures:]
        mean, raw = rest.reshape(*h.shape[:-1], self.mixtures, 2 * self.code).chunk(2, dim=-1)
        return logits, mean, F.softplus(raw) + MIN_STD

    def expected_code(self, h: torch.Tensor) -> torch.Tensor:
        logits, mean, _ = self.mixture(h)
        return (logits.softmax(-1)[..., None] * mean).sum(-2)

    # the latent-model contract: the carry is (h, z)
    def initial(self, batch: int):
        device = self.reward_head[0].weight.device
        return torch.zeros(batch, self.deter, device=device), torch.zeros(batch, self.code, device=device)

    @torch.no_grad()
    def filter_step(self, carry, action, frames, proprio):
        h, z = carry
        h = self.memory(torch.cat([z, torch.as_tensor(action, dtype=torch.float32, device=h.device)], dim=-1), h)
        return h, self.vision(frames, proprio)[0]

    @staticmethod
    def feature(carry) -> torch.Tensor:
        return torch.cat(carry, dim=-1)

    def carry_of(self, feature: torch.Tensor):
        return feature[..., :self.deter], feature[..., self.deter:]

    def dream(self, carry, action: torch.Tensor):
        """One imagined step: (h, z), a (B, A) -> the next (h, z), z the mixture's expected code."""
        h, z = carry
        h = self.memory(torch.cat([z, action], dim=-1), h)
        return h, self.expected_code(h)

    def imagine(self, carry, actions: torch.Tensor):
        features = []
        for t in range(actions.shape[1]):
            carry = self.dream(carry, actions[:, t])
            features.append(self.feature(carry))
        features = torch.stack(features, dim=1)
        return features, self.reward_head(features).squeeze(-1)

    def loss(self, frames, proprio, action, reward, **_) -> torch.Tensor:
        """Windows: frames (B, L+1, ...), proprio (B, L+1, P), action (B, L, A), reward (B, L)."""
        device = self.reward_head[0].weight.device
        action, reward = action.to(device).float(), reward.to(device).float()
        mean, std = self.vision(frames, proprio)                                      # (B, L+1, code)
        z = mean + std * torch.randn_like(std)
        reconstruction = self.decoder.loss(z, frames)
        kl = (0.5 * (mean ** 2 + std ** 2 - 1) - torch.log(std)).sum(-1).mean()      # KL(q || N(0, I))
        codes = mean.detach()                                                         # M does not shape V
        h, memory_nll, features = self.initial(len(action))[0], [], []
        for t in range(action.shape[1]):
            h = self.memory(torch.cat([codes[:, t], action[:, t]], dim=-1), h)
            memory_nll.append(mixture_nll(codes[:, t + 1], *self.mixture(h)))
            features.append(torch.cat([h, codes[:, t + 1]], dim=-1))
        memory_nll = torch.stack(memory_nll, dim=1).mean()
        reward_error = ((self.reward_head(torch.stack(features, dim=1)).squeeze(-1) - reward) ** 2).mean()
        self.last_parts = {"reconstruction": float(reconstruction.detach()), "kl": float(kl.detach()),
                           "memory_nll": float(memory_nll.detach()), "reward": float(reward_error.detach())}
        return reconstruction + self.beta * kl + memory_nll + reward_error


class LinearController(nn.Module):
    """a = tanh(W [h, z] + b): (B, feature_dim) -> (B, action_dim); its weights as one vector for a search."""

    def __init__(self, feature_dim: int, action_dim: int):
        super().__init__()
        self.linear = nn.Linear(feature_dim, action_dim)

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(feature))

    def vector(self) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(self.parameters()).detach().clone()

    def load_vector(self, vector: torch.Tensor) -> "LinearController":
        torch.nn.utils.vector_to_parameters(vector, self.parameters())
        return self


@torch.no_grad()
def imagined_return(model: VMC, controller: LinearController, carry, horizon: int, discount: float = 0.99):
    """The controller acting inside the model from a batch of carries: (B,) discounted predicted returns."""
    total = torch.zeros(len(carry[0]), device=carry[0].device)
    for t in range(horizon):
        carry = model.dream(carry, controller(model.feature(carry)))
        total = total + discount ** t * model.reward_head(model.feature(carry)).squeeze(-1)
    return total


@torch.no_grad()
def train_controller(model: VMC, carry, horizon: int = 20, generations: int = 30, population: int = 64,
                     elites: int = 8, seed: int = 0) -> tuple[LinearController, list[float]]:
    """Search the controller's weights by the cross-entropy method, scoring each candidate by its mean
    imagined return from the starts ``carry`` (h (N, deter), z (N, code)). Returns the controller and
    the best mean return of each generation."""
    generator = torch.Generator().manual_seed(seed)
    controller = LinearController(model.feature_dim, model.action_dim).to(carry[0].device)
    mean = torch.zeros_like(controller.vector())
    std = torch.full_like(mean, 0.5)
    best = []
    for _ in range(generations):
        candidates = mean + std * torch.randn(population, len(mean), generator=generator).to(mean.device)
        candidates[0] = mean
        scores = torch.stack([imagined_return(model, controller.load_vector(c), carry, horizon).mean()
                              for c in candidates])
        top = candidates[scores.topk(elites).indices]
        mean, std = top.mean(0), top.std(0) + 0.01
        best.append(float(scores.max()))
    return controller.load_vector(mean), best
