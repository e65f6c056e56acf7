"""Chapter 8's experiment in one place: latent world models learned from pixels, measured with one yardstick.

    pix = pixel_data()                                  # PushCube episodes: frames, proprioception, splits
    model = build("rssm", pix, seed=0)                  # one of FAMILIES, seeded
    history = train(model, pix, epochs=5, seed=0)       # the shared training loop (wmlib.models.fit)
    probe(model, pix)                                   # what the latent keeps: R² of the cube and the goal
    drift(model, pix, horizon=8)                        # imagined vs filtered latents, and frames where drawn

Data. The course's PushCube episodes (all four sources). A model sees 64 x 64 frames and the
robot's proprioception (joints, joint velocities, gripper pose); the cube and the goal are only
in the pixels. The simulator's state judges (probes, success) and never trains. Whole episodes
are split into train / validation / test.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from wmlib import data
from wmlib.eval import linear_probe, ridge_fit
from wmlib.models import fit, frame_predictor, jepa, latent, rssm, task_latent, value_equivalent, vmc
from wmlib.models.train import episode_split

FAMILIES = {
    "vmc": vmc.VMC,                                    # World Models: V, M (and C, found inside M)
    "rssm": rssm.RSSM,                                 # PlaNet / Dreamer
    "frame_predictor": frame_predictor.FramePredictor,  # UniSim / Cosmos, tiny
    "jepa": jepa.JEPA,                                 # I-JEPA / V-JEPA, action-conditioned
    "task_latent": task_latent.TaskLatent,             # TD-MPC2
    "value_equivalent": value_equivalent.ValueEquivalent,  # MuZero
}
# the positions the probes read, x and y on the table (their heights hardly vary: nothing to explain)
JUDGED = {"cube": ("extra/obj_pose", slice(0, 2)), "goal": ("extra/goal_pos", slice(0, 2))}


@dataclasses.dataclass
class PixelData:
    seq: data.Sequences
    layout: dict[str, slice]
    split: dict[str, np.ndarray]          # "train" / "val" / "test": boolean masks over rows
    length: int                           # actions per training window

    def starts(self, part: str) -> np.ndarray:
        """The window starts (rows) of one part of the split."""
        starts = self.seq.starts(self.length)
        return starts[self.split[part][starts]]

    def judged(self, rows) -> np.ndarray:
        """(N, 2 * len(JUDGED)) the true positions the probes read, from the simulator's state."""
        return judged_of(self.seq.state[rows], self.layout)


def judged_of(state: np.ndarray, layout: dict[str, slice], names=tuple(JUDGED)) -> np.ndarray:
    """States (N, D) -> (N, 2 * len(names)): the x, y of each judged position named, in that order."""
    return np.concatenate([state[:, layout[JUDGED[n][0]]][:, JUDGED[n][1]] for n in names], axis=1)


def pixel_data(config: str = "push_cube", frame_size: int = 64, length: int = 8, seed: int = 0,
               path=None, episodes=None) -> PixelData:
    """Load (or take) the episodes, lay them end to end, split them by episode (70 / 10 / 20)."""
    path = path or data.default_path(config)
    episodes = data.load(path, images=True) if episodes is None else episodes
    seq = data.sequences(episodes, frame_size=frame_size)
    return PixelData(seq, data.state_layout(path), episode_split(seq.episode, val=0.1, test=0.2, seed=seed), length)


def state_rows(pix: PixelData, part: str = "train") -> dict[str, torch.Tensor]:
    """The true-state transitions of one part of the split, as chapter 5's ``model_based`` wants rows:
    state (N, D), action (N, A), next_state (N, D), episode (N,)."""
    rows = np.flatnonzero(pix.split[part] & ~pix.seq.last)
    return {"state": torch.as_tensor(pix.seq.state[rows]), "action": torch.as_tensor(pix.seq.action[rows]),
            "next_state": torch.as_tensor(pix.seq.state[rows + 1]), "episode": torch.as_tensor(pix.seq.episode[rows])}


def build(family: str, pix: PixelData, seed: int = 0, **size) -> torch.nn.Module:
    """A family's model, its weights drawn under ``seed``, its proprioception normaliser fitted on training rows."""
    if family not in FAMILIES:
        raise ValueError(f"no family {family!r}; the families are {sorted(FAMILIES)}")
    torch.manual_seed(seed)
    model = FAMILIES[family](pix.seq.proprio.shape[1], pix.seq.action.shape[1],
                             image_size=pix.seq.frames.shape[1], **size)
    return latent.fit_proprio(model, pix.seq.proprio[pix.split["train"]])


def train(model, pix: PixelData, *, epochs: int = 10, batch_size: int = 32, lr: float = 3e-4, seed: int = 0,
          max_windows: int | None = None, progress: bool = True):
    """Train on the training windows for ``epochs`` epochs (``wmlib.models.fit``) and keep the last weights:
    every family gets the same number of steps, and no early stopping, since the losses of the
    families with target networks chase moving targets (their validation loss is still recorded).
    max_windows: use at most this many training windows (drawn under ``seed``), for short runs."""
    rng = np.random.default_rng(seed)
    train_starts, val_starts = pix.starts("train"), pix.starts("val")
    if max_windows is not None and len(train_starts) > max_windows:
        train_starts = np.sort(rng.choice(train_starts, max_windows, replace=False))

    def loss(m, batch):
        return m.loss(**pix.seq.window(batch["start"].cpu().numpy(), pix.length))

    step = (lambda m: m.update_target()) if hasattr(model, "update_target") else None
    return fit(model, {"start": torch.as_tensor(train_starts)}, {"start": torch.as_tensor(val_starts)}, loss=loss,
               epochs=epochs, batch_size=batch_size, lr=lr, patience=epochs, seed=seed, progress=progress,
               desc=type(model).__name__, after_step=step, keep_best=False)


@torch.no_grad()
def filtered_features(model, seq: data.Sequences, batch: int = 64) -> torch.Tensor:
    """(T_all, F): every row's feature, the model filtering each episode from its first frame on,
    the action before each frame included (zeros before the first). Episodes run side by side."""
    model.eval()
    out = torch.zeros(len(seq), model.feature_dim)
    firsts = np.flatnonzero(seq.step == 0)
    lengths = np.diff(np.r_[firsts, len(seq)])
    for group in range(0, len(firsts), batch):
        first, n = firsts[group:group + batch], lengths[group:group + batch]
        carry = model.initial(len(first))
        for t in range(int(n.max())):
            rows = first + np.minimum(t, n - 1)                          # an ended episode repeats its last row
            previous = seq.action[rows - 1] if t > 0 else np.zeros_like(seq.action[rows])
            carry = model.filter_step(carry, torch.as_tensor(previous), torch.as_tensor(seq.frames[rows]),
                                      torch.as_tensor(seq.proprio[rows]))
            alive = t < n
            out[rows[alive]] = model.feature(carry)[torch.as_tensor(alive)].float().cpu()
    return out


def probe(model, pix: PixelData, features: torch.Tensor | None = None) -> dict[str, float]:
    """R² of a linear probe from the filtered feature to each judged position (cube, goal: x and y
    averaged), fitted on training rows, scored on test rows. ``model=None`` probes the
    proprioception alone: the bar a latent must clear, since where the gripper is already says
    something about where the cube is in episodes that push it."""
    if features is None:
        features = torch.as_tensor(pix.seq.proprio) if model is None else filtered_features(model, pix.seq)
    train_rows, test_rows = np.flatnonzero(pix.split["train"]), np.flatnonzero(pix.split["test"])
    r2 = linear_probe(features[train_rows], pix.judged(train_rows), features[test_rows], pix.judged(test_rows))
    return {name: float(r2[2 * i:2 * i + 2].mean()) for i, name in enumerate(JUDGED)}


@torch.no_grad()
def drift(model, pix: PixelData, horizon: int, features: torch.Tensor | None = None,
          max_starts: int = 256) -> dict[str, list[float]]:
    """Imagine ``horizon`` steps from test starts with the actions really taken, against the features
    filtered from the real frames: the squared error per step over the total variance of the
    filtered features (0: perfect; 1: as far as a random feature). Where the model draws frames,
    also the PSNR (dB) of the drawn frames against the real ones, per step."""
    features = filtered_features(model, pix.seq) if features is None else features
    starts, window, carry, imagined, _ = imagined_test_windows(model, pix, horizon, features, max_starts)
    real = features[starts[:, None] + np.arange(1, horizon + 1)]                   # (B, H, F)
    scale = features[pix.split["test"]].var(0).sum()
    out = {"latent": (((imagined - real) ** 2).sum(-1).mean(0) / scale).tolist()}
    drawn = drawn_frames(model, imagined, carry, window["action"])
    if drawn is not None:
        out["psnr_db"] = frame_predictor.psnr(drawn, window["frames"][:, 1:]).mean(0).tolist()
    return out


def test_windows(pix: PixelData, horizon: int, max_starts: int = 256) -> np.ndarray:
    """The first ``max_starts`` window starts of ``horizon`` actions in the test episodes."""
    starts = pix.seq.starts(horizon)
    return starts[pix.split["test"][starts]][:max_starts]


def imagined_test_windows(model, pix: PixelData, horizon: int, features: torch.Tensor, max_starts: int = 256):
    """From the filtered features at test window starts, imagine ``horizon`` steps with the actions really
    taken: (starts (B,), the windows (``Sequences.window``), carry, features (B, H, F), rewards (B, H))."""
    starts = test_windows(pix, horizon, max_starts)
    window = pix.seq.window(starts, horizon)
    carry = model.carry_of(features[starts])
    imagined, rewards = model.imagine(carry, window["action"])
    return starts, window, carry, imagined, rewards


def cube_xy(pix: PixelData, rows) -> np.ndarray:
    """(N, 2) the cube's true position on the table, metres."""
    return judged_of(pix.seq.state[rows], pix.layout, ("cube",))


@torch.no_grad()
def cube_drift_mm(model, pix: PixelData, horizon: int, features: torch.Tensor | None = None,
                  max_starts: int = 256) -> list[float]:
    """Where a latent model thinks the cube is, k steps into its imagination, in millimetres from the truth.

    A linear read-out (``ridge_fit`` on the training rows' filtered features -> the cube's x, y)
    is applied to the features imagined from test starts with the actions really taken. Entry 0
    is the read-out's error on the filtered features at the starts (what the latent knows now);
    entry k the error k steps ahead. Comparable across families, and with a state model
    (``state_cube_drift_mm``)."""
    features = filtered_features(model, pix.seq) if features is None else features
    train_rows = np.flatnonzero(pix.split["train"])
    read = ridge_fit(features[train_rows], cube_xy(pix, train_rows))
    starts, _, _, imagined, _ = imagined_test_windows(model, pix, horizon, features, max_starts)
    rows = starts[:, None] + np.arange(horizon + 1)                                  # (B, H+1)
    seen = torch.cat([features[starts][:, None], imagined.float()], dim=1)           # (B, H+1, F)
    guess = read(seen.reshape(-1, seen.shape[-1])).reshape(len(starts), horizon + 1, 2)
    truth = torch.as_tensor(cube_xy(pix, rows.reshape(-1))).reshape(len(starts), horizon + 1, 2)
    return (1000 * (guess - truth).norm(dim=-1).mean(0)).tolist()


@torch.no_grad()
def state_cube_drift_mm(model, pix: PixelData, horizon: int, max_starts: int = 256) -> list[float]:
    """The same measure for a model of the true state (``rollout(state (D,), actions (N, H, A)) -> (E, N, H, D)``,
    members averaged): entry 0 is 0, since the state holds the cube's position."""
    starts = test_windows(pix, horizon, max_starts)
    window = pix.seq.window(starts, horizon)
    errors = []
    for i in range(len(starts)):
        predicted = model.rollout(window["state"][i, 0], window["action"][i:i + 1]).mean(0)[0]   # (H, D)
        cube = judged_of(predicted.double().numpy(), pix.layout, ("cube",))
        errors.append(np.linalg.norm(cube - cube_xy(pix, starts[i] + np.arange(1, horizon + 1)), axis=1))
    return [0.0] + (1000 * np.mean(errors, axis=0)).tolist()


@torch.no_grad()
def rssm_error_sources(model: rssm.RSSM, pix: PixelData, horizon: int, features: torch.Tensor | None = None,
                       max_starts: int = 256) -> dict:
    """Where a recurrent state-space model's errors enter, on test episodes:

    observation_psnr_db: the decoder redrawing each frame from its filtered state (the observation model);
    reward_rmse_filtered: per step k = 1..horizon of windows from test starts, the reward head on the
      filtered state that the k-th action led to (the reward model alone);
    reward_rmse_imagined: on the same windows and steps, the reward head on the state imagined k steps
      ahead from the filtered start with the actions really taken. The gap between the two, step by
      step, is what imagining adds: the dynamics' share.
    """
    features = filtered_features(model, pix.seq) if features is None else features
    test = np.flatnonzero(pix.split["test"])
    observation = frame_predictor.psnr(model.decoder(features[test]), torch.as_tensor(pix.seq.frames[test])).mean()
    starts, window, _, _, imagined = imagined_test_windows(model, pix, horizon, features, max_starts)
    arrived = features[starts[:, None] + np.arange(1, horizon + 1)]                   # (B, H, F)
    filtered = model.reward_head(arrived).squeeze(-1)
    rmse = lambda predicted: (predicted - window["reward"]).pow(2).mean(0).sqrt().tolist()  # noqa: E731
    return {"observation_psnr_db": float(observation), "reward_rmse_filtered": rmse(filtered),
            "reward_rmse_imagined": rmse(imagined)}


def moved_goal_episodes(root, per_source: int = 10, seed: int = 800_000, reach: float = 0.1):
    """PushCube episodes (the four sources, ``per_source`` each) whose goal marker is moved after the reset
    by an offset drawn uniformly within ``reach`` metres in x and y (at least 5 cm from the cube), so the
    marker no longer says where the cube starts. Written once as an RLDS dataset under ``root``;
    returns its folder (loaded with ``data.load``)."""
    import pathlib

    from wmlib import collect, envs, tasks
    from wmlib.data import rlds_builder
    from wmlib.data.conventions import SOURCES

    root = pathlib.Path(root)
    folder = root / "wmr_maniskill" / "push_cube" / "1.0.0"
    if (folder / "dataset_info.json").exists():
        return folder
    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=seed)

    def move(e, rng):
        state, layout = e.true_state()
        cube, goal = state[0, layout["extra/obj_pose"]][:2], state[0, layout["extra/goal_pos"]][:2]
        while True:
            offset = torch.as_tensor(rng.uniform(-reach, reach, 2), dtype=torch.float32)
            if float((goal + offset - cube).norm()) > 0.05:
                return tasks.shift_goal(e, offset.tolist())

    try:
        episodes = []
        for i, source in enumerate(s for s in SOURCES for _ in range(per_source)):
            rng = np.random.default_rng([seed, i])
            episodes.append(collect.run_episode(env, "PushCube-v1", source, seed + i, start=lambda e: move(e, rng)))
        _, layout = env.true_state()
    finally:
        env.close()
    return rlds_builder.write("PushCube-v1", episodes, layout, root)


@torch.no_grad()
def shortcut(model, pix: PixelData, moved: data.Sequences, features: torch.Tensor | None = None,
             moved_features: torch.Tensor | None = None) -> dict:
    """Does the latent read the cube, or the goal marker that usually stands at a fixed offset from it?

    A linear read-out of the cube's and the goal's position (``ridge_fit`` on the training rows'
    filtered features) is scored in millimetres on the test episodes and on episodes whose goal was
    moved (``moved_goal_episodes``). A latent that finds the cube through the marker misplaces the
    cube when the marker moves. ``model=None`` reads the proprioception alone.
    """
    if features is None:
        features = torch.as_tensor(pix.seq.proprio) if model is None else filtered_features(model, pix.seq)
    if moved_features is None:
        moved_features = torch.as_tensor(moved.proprio) if model is None else filtered_features(model, moved)
    train_rows, test_rows = np.flatnonzero(pix.split["train"]), np.flatnonzero(pix.split["test"])
    read = ridge_fit(features[train_rows], pix.judged(train_rows))
    moved_truth = judged_of(moved.state, pix.layout)

    def error_mm(x, truth):
        guess = read(x)
        return {name: float(1000 * (guess[:, 2 * i:2 * i + 2] - torch.as_tensor(truth[:, 2 * i:2 * i + 2])).norm(
            dim=-1).mean()) for i, name in enumerate(JUDGED)}

    return {"test_mm": error_mm(features[test_rows], pix.judged(test_rows)),
            "moved_goal_mm": error_mm(moved_features, moved_truth)}


def drawn_frames(model, imagined: torch.Tensor, carry, actions) -> torch.Tensor | None:
    """The frames a model draws for its imagined features (B, H, 3, S, S), or None if it draws none."""
    if isinstance(model, frame_predictor.FramePredictor):
        frames = []
        model.imagine(carry, actions, frames_out=frames)
        return torch.stack(frames, dim=1)
    if isinstance(model, rssm.RSSM):
        return model.decoder(imagined)
    if isinstance(model, vmc.VMC):
        return model.decoder(imagined[..., model.deter:])
    return None
