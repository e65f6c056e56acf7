"""From camera frames to a state estimate: image preprocessing and a small convolutional encoder.

The encoder reads an RGB frame and outputs a few numbers, here the positions a task
needs (the gripper's and the cube's). Its bottleneck is a *spatial soft-argmax*: each
feature map of the last convolution is turned into a probability map over the image,
and the map's expected (x, y) position becomes two features. The network thus
describes a frame by *where* things are, which is what a position estimate needs,
with few parameters.

    images (B, H, W, 3) uint8 | (B, 3, H, W) uint8 or float in [0, 1]
      -> preprocess     (B, 3, S, S) float in [0, 1]        S = image_size
      -> conv           (B, C, S/4, S/4) feature maps
      -> soft-argmax    (B, C, 2) expected (x, y) of each map, in [-1, 1]
      -> head (MLP)     (B, out_dim), normalised units (``out_norm`` maps them back)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wmlib.models.normaliser import Normaliser


def preprocess(images, size: int | None = None) -> torch.Tensor:
    """Frames as the network wants them: (B, 3, size, size) float32 in [0, 1], on the input's device.

    images: (B, H, W, 3) channels-last (as the dataset stores frames) or (B, 3, H, W);
    uint8 (0..255) or floating point already in [0, 1]; a NumPy array or a tensor.
    size: the side length to resize to (antialiased bilinear), or None to keep H x W.
    """
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # frames read from a dataset are often read-only; torch wants to own writable memory
    images = torch.as_tensor(images)
    if images.ndim != 4:
        raise ValueError(f"images must be a batch (B, H, W, 3) or (B, 3, H, W); got shape {tuple(images.shape)}"
                         " (for one frame, add a batch axis: images[None])")
    if images.shape[1] != 3:
        if images.shape[-1] != 3:
            raise ValueError(f"images must have 3 colour channels, first (B, 3, H, W) or last (B, H, W, 3); "
                             f"got shape {tuple(images.shape)}")
        images = images.permute(0, 3, 1, 2)  # (B, H, W, 3) -> (B, 3, H, W)
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    elif images.is_floating_point():
        if images.numel() and (images.min() < 0 or images.max() > 1):
            raise ValueError("floating-point images must be in [0, 1]; these span "
                             f"[{float(images.min()):.3g}, {float(images.max()):.3g}] "
                             "(pass uint8 frames, or divide by 255)")
        images = images.float()
    else:
        raise TypeError(f"images must be uint8 (0..255) or float in [0, 1], not {images.dtype}")
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return images.contiguous()


def soft_argmax(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) feature maps -> (B, C, 2): the expected (x, y) of each map under a softmax over its H*W cells.

    x runs along the width from -1 (left column) to +1 (right column), y along the height
    from -1 (top row) to +1 (bottom row): a map with one dominant cell points at that cell.
    """
    if features.ndim != 4:
        raise ValueError(f"features must be (B, C, H, W), got shape {tuple(features.shape)}")
    B, C, H, W = features.shape
    weights = features.reshape(B, C, H * W).softmax(dim=-1).reshape(B, C, H, W)
    xs = torch.linspace(-1.0, 1.0, W, device=features.device, dtype=weights.dtype)  # (W,)
    ys = torch.linspace(-1.0, 1.0, H, device=features.device, dtype=weights.dtype)  # (H,)
    x = (weights.sum(dim=2) * xs).sum(dim=-1)  # column marginal (B, C, W) -> (B, C)
    y = (weights.sum(dim=3) * ys).sum(dim=-1)  # row marginal (B, C, H) -> (B, C)
    return torch.stack([x, y], dim=-1)


class ConvEncoder(nn.Module):
    """RGB frames -> (B, out_dim) estimate, through convolutions and a spatial soft-argmax.

    out_dim: how many numbers to estimate (e.g. 6: gripper xyz and cube xyz).
    image_size: frames are resized to image_size x image_size first (64 keeps a CPU fast).
    channels: output channels of the convolutions; the first is 5x5 with stride 2, the
      others 3x3, all with stride 2 but the last, so a 64-pixel frame gives 16x16 maps
      with three layers. The last layer's channels are the keypoints.
    hidden: width of the head, an MLP from the 2 * channels[-1] keypoint coordinates.

    ``forward`` returns normalised units; ``out_norm`` (fit it on the training targets)
    maps them to physical ones, and ``estimate`` does it all for a whole set of frames.
    """

    def __init__(self, out_dim: int, image_size: int = 64, channels: tuple[int, ...] = (16, 32, 32),
                 hidden: int = 128):
        super().__init__()
        if len(channels) < 1:
            raise ValueError("ConvEncoder needs at least one convolution")
        self.out_dim, self.image_size = out_dim, image_size
        layers, c_in = [], 3
        for i, c_out in enumerate(channels):
            last = i == len(channels) - 1
            kernel = 5 if i == 0 else 3
            stride = 1 if last and i > 0 else 2
            layers.append(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2))
            if not last:  # the last maps are logits for the soft-argmax
                layers.append(nn.ReLU())
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * c_in, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
        self.out_norm = Normaliser(out_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def preprocess(self, images) -> torch.Tensor:
        """Any accepted frames -> (B, 3, image_size, image_size) float in [0, 1] on this encoder's device."""
        if isinstance(images, np.ndarray) and not images.flags.writeable:
            images = images.copy()
        return preprocess(torch.as_tensor(images).to(self.device), self.image_size)

    def keypoints(self, images) -> torch.Tensor:
        """(B, ...) frames -> (B, C, 2) expected (x, y) of each last-layer feature map."""
        return soft_argmax(self.conv(self.preprocess(images)))

    def forward(self, images) -> torch.Tensor:
        """(B, ...) frames -> (B, out_dim) estimate in normalised units."""
        return self.head(self.keypoints(images).flatten(1))

    def loss(self, images, targets: torch.Tensor) -> torch.Tensor:
        """``encoder_loss(self, images, targets)``."""
        return encoder_loss(self, images, targets)

    @torch.no_grad()
    def estimate(self, images, batch_size: int = 256) -> torch.Tensor:
        """(N, ...) frames -> (N, out_dim) estimates in physical units, computed in batches."""
        was_training = self.training
        self.eval()
        try:
            parts = [self.out_norm.denormalise(self(images[i:i + batch_size]))
                     for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        if not parts:
            return torch.zeros(0, self.out_dim, device=self.device)
        return torch.cat(parts)


def encoder_loss(encoder: ConvEncoder, images, targets) -> torch.Tensor:
    """Chapter 3's training loss: the mean squared error of the encoder's output for ``images`` (B, ...)
    against ``targets`` (B, out_dim) in physical units, both compared in the encoder's normalised
    units (``out_norm``), so every target counts by its spread rather than by its unit. A scalar."""
    prediction = encoder(images)
    targets = torch.as_tensor(targets, dtype=torch.float32, device=prediction.device)
    if targets.shape != prediction.shape:
        raise ValueError(f"targets must be (B, {encoder.out_dim}) = {tuple(prediction.shape)}, "
                         f"got {tuple(targets.shape)}")
    return F.mse_loss(prediction, encoder.out_norm.normalise(targets))

