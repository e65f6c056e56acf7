"""An action-conditioned frame predictor (UniSim, Cosmos, at toy scale): the model's state is the observation
itself, and its rollouts are frames.

    e_t      = encoder(o_t)                         o = (frame, proprio)
    e'_t+1   = e_t + transition(e_t, a_t)
    ô_t+1    = (decoder(e'_t+1), proprio_head(e'_t+1))
    r̂_t      = reward(encoder(ô_t+1))               a reward model that reads observations, real or drawn
Training is one step at a time from real observations (teacher forcing): frame error (squared,
summed over pixels), proprioception error, and the reward model on the real next observation.
Imagining feeds each drawn frame back through the encoder, so every step of a rollout passes
through pixels: errors in what is drawn become the next step's input. A sharp frame is not
the same as a useful one: the yardstick reports PSNR beside how well the predictor ranks actions.
"""
from __future__ import annotations

import torch
from torch import nn

from wmlib.models.latent import Memoryless
from wmlib.models.normaliser import Normaliser
from wmlib.models.pixels import FrameDecoder, ObservationEncoder, as_pixels


def psnr(drawn: torch.Tensor, real) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of frames in [0, 1]: drawn (..., 3, S, S) against real (same frames,
    any layout ``as_pixels`` takes). Returns (...,): 10 log10(1 / mean squared error) per frame."""
    target, lead = as_pixels(real, drawn.shape[-1])
    error = ((drawn.reshape(target.shape) - target.to(drawn.device)) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / error)).reshape(lead)


class FramePredictor(Memoryless, nn.Module):
    """Predicts the next observation (frame and proprioception) from the observation and the action."""

    def __init__(self, proprio_dim: int, action_dim: int, embed_dim: int = 128, hidden: int = 128,
                 image_size: int = 64):
        super().__init__()
        self.action_dim, self.feature_dim, self.proprio_dim = action_dim, embed_dim, proprio_dim
        self.observe = ObservationEncoder(proprio_dim, embed_dim, image_size)
        self.transition = nn.Sequential(nn.Linear(embed_dim + action_dim, hidden), nn.SiLU(),
                                        nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, embed_dim))
        self.decoder = FrameDecoder(embed_dim, image_size)
        self.proprio_head = nn.Linear(embed_dim, proprio_dim)          # normalised units
        self.reward_head = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.last_parts: dict[str, float] = {}

    @property
    def proprio_norm(self) -> Normaliser:
        return self.observe.proprio_norm

    def encode(self, frames, proprio) -> torch.Tensor:
        return self.observe(frames, proprio)

    def next_embedding(self, e: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return e + self.transition(torch.cat([e, action], dim=-1))

    def draw(self, e_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A predicted next embedding -> (frames (B, 3, S, S) in [0, 1], proprio (B, P) in physical units)."""
        return self.decoder(e_next), self.proprio_norm.denormalise(self.proprio_head(e_next))

    def imagine(self, carry, actions: torch.Tensor, frames_out: list | None = None):
        """Roll through pixels: each predicted observation is drawn, then read again. frames_out, if given,
        receives the drawn frames (B, 3, S, S) of each step."""
        e, features = carry, []
        for t in range(actions.shape[1]):
            frames, proprio = self.draw(self.next_embedding(e, actions[:, t]))
            if frames_out is not None:
                frames_out.append(frames)
            e = self.observe(frames, proprio)
            features.append(e)
        features = torch.stack(features, dim=1)
        return features, self.reward_head(features).squeeze(-1)

    def loss(self, frames, proprio, action, reward, **_) -> torch.Tensor:
        """Windows: frames (B, L+1, ...), proprio (B, L+1, P), action (B, L, A), reward (B, L); one step each."""
        device = self.reward_head[1].weight.device
        action, reward = action.to(device).float(), reward.to(device).float()
        proprio = torch.as_tensor(proprio, dtype=torch.float32, device=device)
        e = self.observe(frames, proprio)                                            # (B, L+1, E)
        e_next = self.next_embedding(e[:, :-1], action)                              # (B, L, E)
        frame_error = self.decoder.loss(e_next, frames[:, 1:])
        proprio_error = ((self.proprio_head(e_next) - self.proprio_norm.normalise(proprio[:, 1:])) ** 2).sum(-1).mean()
        reward_error = ((self.reward_head(e[:, 1:]).squeeze(-1) - reward) ** 2).mean()
        self.last_parts = {"frame": float(frame_error.detach()), "proprio": float(proprio_error.detach()),
                           "reward": float(reward_error.detach())}
        return frame_error + proprio_error + reward_error
