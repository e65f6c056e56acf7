"""A tiny World Action Model and its two halves, sharing one backbone.

Three conditional distributions, each regressed (one prediction, no sampling):

    policy        a_t:t+K | o_t, l                 action head on the backbone
    world model   o_t+K   | o_t, l, a_t:t+K        future head on the backbone and the chunk
    WAM           (o_t+K, a_t:t+K) | o_t, l        both heads, trained together

o_t is a 64 x 64 frame and a robot vector (joints, gripper pose, goal); l is the instruction;
a_t:t+K is a chunk of K actions. The future head predicts o_t+K as a 32 x 32 frame, the robot
vector and the dense reward at t+K. The inverse-dynamics head reads (o_t, o_t+K) and gives the
chunk that joins them.

Every variant holds every module, so all have the same parameter count; a variant says which
losses train and which path acts (``VARIANTS``):

    policy     action loss only; the future head is never trained
    joint      action + weight * future loss; acts with the action head, the future skipped
    recon      action + weight * loss of the *current* frame: reconstruction, not the future
    cascade    future (given o_t and l only) + inverse dynamics on true futures; acts with
               idm(o_t, predicted o_t+K)
    idm_true   inverse dynamics only; acts with idm(o_t, true o_t+K): an upper bound, since the
               true future is only known offline (or from a simulator's oracle)

Shapes: B batch, K chunk, A action numbers (4), R robot numbers, S = 64 (frames), s = 32.
"""
from __future__ import annotations

import dataclasses
import re
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from wmlib.models.normaliser import Normaliser

FRAME, FUTURE_FRAME = 64, 32
VARIANTS = ("policy", "joint", "recon", "cascade", "idm_true")


class Vocabulary:
    """Words -> ids for a bag-of-words instruction embedding; built from the training instructions."""

    def __init__(self, instructions):
        words = sorted({w for text in instructions for w in self.words(text)})
        if not words:
            raise ValueError("no instruction has a word: a language-conditioned model needs instructions")
        self.index = {w: i for i, w in enumerate(words)}

    @staticmethod
    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", str(text).lower())

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, instructions) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) texts -> (ids, offsets) for ``nn.EmbeddingBag``.

        A word never seen in training is refused rather than skipped: the model could not have
        learnt what it means, and acting on the rest of the sentence would be a silent guess.
        """
        ids, offsets = [], []
        for text in instructions:
            words = self.words(text)
            unknown = sorted({w for w in words if w not in self.index})
            if unknown or not words:
                raise ValueError(f"instruction {text!r} has words the model was never trained on: {unknown} "
                                 f"(it knows {sorted(self.index)})")
            offsets.append(len(ids))
            ids += [self.index[w] for w in words]
        return torch.tensor(ids), torch.tensor(offsets)


def conv_encoder(side: int, out: int) -> nn.Sequential:
    """(B, 3, side, side) in [0, 1] -> (B, out): strided convolutions down to 4 x 4, then a linear layer."""
    layers, channels, size = [], 3, side
    for width in (16, 32, 32, 64)[: int(np.log2(side // 4))]:
        layers += [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.SiLU()]
        channels, size = width, size // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 16, out), nn.SiLU())


class FrameDecoder(nn.Module):
    """(B, in) -> (B, 3, 32, 32) in [0, 1]: a linear layer to 4 x 4, then three transposed convolutions."""

    def __init__(self, dim_in: int):
        super().__init__()
        self.start = nn.Linear(dim_in, 64 * 16)
        self.up = nn.Sequential(nn.SiLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.SiLU(),
                                nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(16, 3, 4, 2, 1))

    def forward(self, h):
        return torch.sigmoid(self.up(self.start(h).view(-1, 64, 4, 4)))


def mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, dim_out))


@dataclasses.dataclass
class Prediction:
    """What the heads give for a batch: chunk (B, K, A); future frame (B, 3, 32, 32), robot (B, R)
    (normalised), reward (B,)."""
    chunk: torch.Tensor
    frame: torch.Tensor | None = None
    robot: torch.Tensor | None = None
    reward: torch.Tensor | None = None


class TinyWAM(nn.Module):
    """The backbone and its three heads (see the module docstring). ``variant`` picks losses and acting path."""

    def __init__(self, variant: str, vocabulary: Vocabulary, robot_dim: int, chunk: int, action_dim: int = 4,
                 width: int = 128, future_weight: float = 1.0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.variant, self.vocabulary, self.chunk, self.action_dim = variant, vocabulary, chunk, action_dim
        self.future_weight = future_weight
        self.robot_norm = Normaliser(robot_dim)
        self.frames = conv_encoder(FRAME, width)
        self.robot = nn.Sequential(nn.Linear(robot_dim, 64), nn.SiLU())
        self.words = nn.EmbeddingBag(len(vocabulary), 32, mode="mean")
        self.trunk = mlp(width + 64 + 32, 256, width)
        self.action_head = mlp(width, 256, chunk * action_dim)
        future_in = width + chunk * action_dim + 1                   # + 1: is the chunk known?
        self.future_frame = FrameDecoder(future_in)
        self.future_rest = mlp(future_in, 256, robot_dim + 1)        # robot vector and reward at t+K
        self.idm_frames = conv_encoder(FUTURE_FRAME, width)
        self.idm_head = mlp(2 * width + robot_dim, 256, chunk * action_dim)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def fit_normaliser(self, robot: np.ndarray) -> "TinyWAM":
        self.robot_norm.fit(torch.as_tensor(robot, dtype=torch.float32))
        return self

    # ---------------------------------------------------------------- the pieces

    def frames_in(self, frames) -> torch.Tensor:
        """(B, 64, 64, 3) uint8 -> (B, 3, 64, 64) float in [0, 1]; any other size is refused."""
        frames = torch.as_tensor(np.asarray(frames), device=self.device)
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (FRAME, FRAME, 3):
            raise ValueError(f"the model reads frames of shape (B, {FRAME}, {FRAME}, 3) uint8, got "
                             f"{tuple(frames.shape)}: downsample with wmlib.data.downsample(frames, {FRAME})")
        return frames.permute(0, 3, 1, 2).float() / 255.0

    def encode(self, frames, robot, instructions) -> torch.Tensor:
        """o_t, l -> h (B, width): the backbone every variant shares."""
        ids, offsets = self.vocabulary.encode(instructions)
        robot = self.robot_norm(torch.as_tensor(robot, dtype=torch.float32, device=self.device))
        parts = [self.frames(self.frames_in(frames)), self.robot(robot),
                 self.words(ids.to(self.device), offsets.to(self.device))]
        return self.trunk(torch.cat(parts, dim=-1))

    def small_frames(self, frames) -> torch.Tensor:
        """(B, 64, 64, 3) uint8 -> (B, 3, 32, 32) in [0, 1]: frames at the size the future head predicts."""
        return F.avg_pool2d(self.frames_in(frames), FRAME // FUTURE_FRAME)

    def act_chunk(self, h) -> torch.Tensor:
        """h -> (B, K, A) chunk from the action head."""
        return self.action_head(h).view(-1, self.chunk, self.action_dim)

    def imagine(self, h, chunk=None, known=None) -> Prediction:
        """h and a chunk (B, K, A) -> the future at t+K.

        known (B,): 1 where the chunk is given, 0 where it is not (an action-free clip, or the
        cascade's future, which depends on o_t and l only); chunk=None: no chunk for any row.
        """
        if chunk is None:
            chunk = torch.zeros(len(h), self.chunk, self.action_dim, device=h.device)
            known = torch.zeros(len(h), device=h.device)
        elif known is None:
            known = torch.ones(len(h), device=h.device)
        known = known.float()
        x = torch.cat([h, chunk.reshape(len(h), -1) * known[:, None], known[:, None]], dim=-1)
        rest = self.future_rest(x)
        return Prediction(chunk=chunk, frame=self.future_frame(x), robot=rest[:, :-1], reward=rest[:, -1])

    def inverse_dynamics(self, h, future_frame, future_robot) -> torch.Tensor:
        """h (of o_t), future frame (B, 3, 32, 32), future robot (B, R) normalised -> (B, K, A)."""
        x = torch.cat([h, self.idm_frames(future_frame), future_robot], dim=-1)
        return self.idm_head(x).view(-1, self.chunk, self.action_dim)

    # ---------------------------------------------------------------- training and acting

    def loss(self, batch: dict, combine=None) -> tuple[torch.Tensor, dict]:
        """The variant's training loss on a batch of windows (see ``batch_of``) and its two parts.

        Every variant's loss is ``joint_loss``: the error of the chunk its acting path learns
        (the action head's; the inverse-dynamics head's, on true futures, for cascade and
        idm_true), plus ``weight`` times the error of what its future head learns.
        combine: the function that makes the two one number (default ``joint_loss``).
        """
        h = self.encode(batch["frame"], batch["robot"], batch["instruction"])
        labelled = batch["labelled"].float()
        target_frame = self.small_frames(batch["future_frame"])
        target_robot = self.robot_norm(batch["future_robot"])
        if self.variant in ("cascade", "idm_true"):
            chunk = self.inverse_dynamics(h, target_frame, target_robot)
        else:
            chunk = self.act_chunk(h)
        action_error = ((chunk - batch["actions"]) ** 2).mean((1, 2))                       # (B,)
        weight, future = self.future_weight, torch.zeros_like(action_error)
        if self.variant == "joint":
            imagined = self.imagine(h, batch["actions"], known=labelled)
            future = future_error(imagined, target_frame, target_robot, batch["future_reward"])
        elif self.variant == "cascade":
            future = future_error(self.imagine(h), target_frame, target_robot, batch["future_reward"])
        elif self.variant == "recon":
            current = self.small_frames(batch["frame"])
            future = 10 * ((self.imagine(h).frame - current) ** 2).mean((1, 2, 3))
        else:
            weight = 0.0                                                                   # policy, idm_true
        total = (combine or joint_loss)(action_error, future, labelled, weight)
        parts = {"action": masked_mean(action_error, labelled), "future": weight * future.mean()}
        return total, {k: float(v.detach()) for k, v in parts.items()}

    @torch.no_grad()
    def act(self, frames, robot, instructions, future_frame=None, future_robot=None) -> torch.Tensor:
        """o_t, l -> (B, K, A) chunk, by the variant's acting path. ``idm_true`` needs the true future."""
        return self.chunk_from(self.encode(frames, robot, instructions), future_frame, future_robot)

    def chunk_from(self, h, future_frame=None, future_robot=None) -> torch.Tensor:
        """The acting path from an encoded o_t, l (h: (B, width)) -> (B, K, A), clamped to [-1, 1]."""
        if self.variant in ("policy", "joint", "recon"):
            return self.act_chunk(h).clamp(-1, 1)
        if self.variant == "cascade":
            imagined = self.imagine(h)
            return self.inverse_dynamics(h, imagined.frame, imagined.robot).clamp(-1, 1)
        if future_frame is None:
            raise ValueError("idm_true acts from the true future frame: pass future_frame and future_robot")
        target_frame = self.small_frames(future_frame)
        target_robot = self.robot_norm(torch.as_tensor(future_robot, dtype=torch.float32, device=self.device))
        return self.inverse_dynamics(h, target_frame, target_robot).clamp(-1, 1)


def joint_loss(action_error: torch.Tensor, future_error: torch.Tensor, labelled: torch.Tensor,
               weight: float) -> torch.Tensor:
    """The WAM's training loss from per-window errors, all (B,): scalar.

    The action error counts only where the window is labelled (an action-free clip has no
    action to imitate), averaged over those windows; the future error counts on every window,
    averaged over all of them, times ``weight``. A batch without a labelled window has no action
    term (0), not a division by zero.
    """
    return masked_mean(action_error, labelled.float()) + weight * future_error.mean()


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B,) values over the rows where mask (B,) is 1; 0 when no row counts."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def future_error(imagined: Prediction, frame: torch.Tensor, robot: torch.Tensor, reward: torch.Tensor):
    """Squared error of each predicted future, (B,): frame pixels (x10, so a frame weighs like the
    rest), robot vector (normalised) and reward."""
    return (10 * ((imagined.frame - frame) ** 2).mean((1, 2, 3)) + ((imagined.robot - robot) ** 2).mean(1)
            + (imagined.reward - reward) ** 2)


def batch_of(windows, index: np.ndarray, device=None) -> dict:
    """The windows (``wmlib.data.ChunkWindows``) at ``index`` as a batch, frames gathered from the store."""
    now, future = windows.now[index], windows.future[index]
    as_tensor = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    return {"frame": windows.frames[now], "robot": as_tensor(windows.robot[now]),
            "instruction": windows.instruction[index], "actions": as_tensor(windows.actions[index]),
            "labelled": as_tensor(windows.labelled[index]), "future_frame": windows.frames[future],
            "future_robot": as_tensor(windows.robot[future]),
            "future_reward": as_tensor(windows.arrival_reward[future])}


@dataclasses.dataclass
class Training:
    """Mean loss (and its parts) per logged interval; seconds taken."""
    steps: int
    loss: list[float]
    parts: list[dict]
    seconds: float


def train(model: TinyWAM, windows, steps: int = 1500, batch_size: int = 64, lr: float = 1e-3,
          seed: int = 0, progress: bool = True, log_every: int = 100, combine=None) -> Training:
    """Adam for a fixed number of gradient steps (the same for every variant), seeded minibatches.

    Each batch holds ``batch_size`` labelled windows, plus as many action-free ones when
    ``windows`` has any: every variant sees the same number of labelled windows per step, and
    the clips add to what the future loss sees, never take from the action loss.
    """
    model.fit_normaliser(windows.robot[np.unique(np.r_[windows.now, windows.future])])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    labelled, action_free = np.flatnonzero(windows.labelled), np.flatnonzero(~windows.labelled)
    if len(labelled) == 0:
        raise ValueError("no labelled window: the action loss has nothing to learn from")
    history = Training(steps, [], [], 0.0)
    start, running, parts = time.perf_counter(), [], []
    model.train()
    for step in tqdm(range(steps), desc=f"training {model.variant}", disable=not progress, leave=False):
        index = rng.choice(labelled, batch_size)
        if len(action_free):
            index = np.r_[index, rng.choice(action_free, batch_size)]
        value, part = model.loss(batch_of(windows, index, model.device), combine)
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
        running.append(float(value.detach()))
        parts.append(part)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history.loss.append(float(np.mean(running)))
            history.parts.append({k: float(np.mean([p[k] for p in parts])) for k in parts[0]})
            running, parts = [], []
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
