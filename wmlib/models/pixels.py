"""The eyes and the paintbrush of every latent world model: a frame encoder and a frame decoder.

Every pixel-based family in the course reads frames with the same ``FrameEncoder`` and, if it
draws frames at all, draws them with the same ``FrameDecoder``; what differs between families
is what sits between the two, and what the training asks them to predict.

    frames (B, S, S, 3) uint8 | (B, 3, S, S) float in [0, 1]      S = 64
      -> FrameEncoder: 4 convolutions, stride 2 (64 -> 32 -> 16 -> 8 -> 4), then a linear layer
      -> embedding (B, E)
    latent (B, F)
      -> FrameDecoder: a linear layer, then 4 transposed convolutions (4 -> 8 -> 16 -> 32 -> 64)
      -> frames (B, 3, S, S), values in [0, 1] (a sigmoid), compared to the real ones by squared error

Inputs of any leading shape are accepted: (B, T, ...) frames come back as (B, T, E).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.encoder import preprocess
from wmlib.models.normaliser import Normaliser


def as_pixels(frames, size: int) -> tuple[torch.Tensor, torch.Size]:
    """Frames of any leading shape (..., S, S, 3) uint8 or (..., 3, S, S) -> ((N, 3, size, size) float in
    [0, 1], the leading shape), N being the product of the leading axes."""
    frames = torch.as_tensor(frames)
    lead = frames.shape[:-3]
    return preprocess(frames.reshape(-1, *frames.shape[-3:]), size), lead


class FrameEncoder(nn.Module):
    """(..., frame) -> (..., embed_dim). channels: the four convolutions' widths."""

    def __init__(self, embed_dim: int = 128, image_size: int = 64, channels: tuple[int, ...] = (16, 32, 64, 64)):
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(f"a frame side of {image_size} cannot be halved {len(channels)} times")
        layers, c_in = [], 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
            c_in = c_out
        self.image_size, self.embed_dim = image_size, embed_dim
        side = image_size // 2 ** len(channels)
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(c_in * side * side, embed_dim)

    def forward(self, frames) -> torch.Tensor:
        pixels, lead = as_pixels(frames, self.image_size)
        pixels = pixels.to(self.out.weight.device)
        return self.out(self.conv(pixels)).reshape(*lead, self.embed_dim)


class ObservationEncoder(nn.Module):
    """An observation, (frames (..., frame), proprio (..., P)) -> (..., embed_dim): the frame's embedding
    and the normalised proprioception, mixed by one linear layer. Fit ``proprio_norm`` on training data."""

    def __init__(self, proprio_dim: int, embed_dim: int = 128, image_size: int = 64):
        super().__init__()
        self.frame = FrameEncoder(embed_dim, image_size)
        self.proprio_norm = Normaliser(proprio_dim)
        self.mix = nn.Linear(embed_dim + proprio_dim, embed_dim)
        self.embed_dim = embed_dim

    def forward(self, frames, proprio) -> torch.Tensor:
        seen = self.frame(frames)
        proprio = self.proprio_norm.normalise(torch.as_tensor(proprio, dtype=torch.float32, device=seen.device))
        return self.mix(torch.cat([F.silu(seen), proprio], dim=-1))


class FrameDecoder(nn.Module):
    """(..., latent_dim) -> (..., 3, S, S) frames in [0, 1]; ``loss`` compares them with real frames."""

    def __init__(self, latent_dim: int, image_size: int = 64, channels: tuple[int, ...] = (64, 64, 32, 16)):
        super().__init__()
        self.side, self.channels, self.image_size = image_size // 2 ** len(channels), channels, image_size
        self.inp = nn.Linear(latent_dim, channels[0] * self.side * self.side)
        layers = []
        for c_in, c_out in zip(channels, channels[1:] + (3,)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
        self.deconv = nn.Sequential(*layers[:-1])          # no activation after the last: logits

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        lead = latent.shape[:-1]
        x = self.inp(latent.reshape(-1, latent.shape[-1])).reshape(-1, self.channels[0], self.side, self.side)
        return torch.sigmoid(self.deconv(F.silu(x))).reshape(*lead, 3, self.image_size, self.image_size)

    def loss(self, latent: torch.Tensor, frames) -> torch.Tensor:
        """Squared error per frame, summed over pixels and channels, averaged over frames (a unit-variance
        Gaussian's negative log-likelihood, up to a constant)."""
        target, lead = as_pixels(frames, self.image_size)
        drawn = self(latent).reshape(target.shape)
        return ((drawn - target.to(drawn.device)) ** 2).sum(dim=(1, 2, 3)).mean()
