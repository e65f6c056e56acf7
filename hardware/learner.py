"""The learner: trains the lab's world model from replay, and publishes checkpoints.

    python -m hardware.learner --replay localhost:8000 --out lab_runs/learner

The model is the smallest useful one for an arm: joint-space dynamics. From the measured joints
q_t (J,) and the executed target u_t (J,) it predicts the joints one control period later,
q_t+1 = q_t + f(q_t, u_t - q_t): how the servos follow a target (lag, the gripper stalling on
an object, gravity on the shoulder). The actor plans with it through the arm's kinematics.

Loop: wait for replay's prefill; then repeatedly sample episodes, cut them into transitions,
measure the error on this fresh batch *before* training on it (an honest held-out error: these
transitions were never trained on), take gradient steps, and every ``publish_every`` updates
write the checkpoint atomically (a temporary file, then ``os.replace``), so the actor never
reads half a file. A learner killed at any moment restarts from its last checkpoint.
"""
from __future__ import annotations

import argparse
import json
import io
import pathlib
import time

import numpy as np
import torch
from torch import nn

from hardware.atomic import write_atomically

CHECKPOINT = "dynamics.pt"


class JointDynamics(nn.Module):
    """(q (N, J), u (N, J)) -> predicted q' (N, J); inputs scaled by ``scale`` radians."""

    def __init__(self, joints: int, width: int = 128, scale: float = 0.1):
        super().__init__()
        self.joints, self.scale = joints, scale
        self.net = nn.Sequential(nn.Linear(2 * joints, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, joints))

    def forward(self, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        step = (u - q) / self.scale
        return q + self.scale * self.net(torch.cat([q, step], dim=-1))


def transitions(episodes: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampled episodes -> (q (N, J), u (N, J), q' (N, J)) over every step of every episode."""
    q = np.concatenate([e["state"][:-1] for e in episodes])
    u = np.concatenate([e["action"] for e in episodes])
    nxt = np.concatenate([e["state"][1:] for e in episodes])
    return tuple(torch.as_tensor(x, dtype=torch.float32) for x in (q, u, nxt))


def save(model: JointDynamics, updates: int, folder) -> pathlib.Path:
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "joints": model.joints, "updates": updates}, buffer)
    return write_atomically(folder / CHECKPOINT, buffer.getvalue())


def load(folder) -> tuple[JointDynamics, int] | None:
    """The last published model and its update count, or None if there is none (or it is unreadable)."""
    path = pathlib.Path(folder) / CHECKPOINT
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = JointDynamics(saved["joints"])
        model.load_state_dict(saved["state_dict"])
        return model.eval(), int(saved["updates"])
    except (FileNotFoundError, RuntimeError, KeyError, EOFError, ValueError):
        return None


def run(replay, out, joints: int, updates: int | None = None, batch_episodes: int = 8,
        steps_per_batch: int = 4, publish_every: int = 20, seed: int = 0, seconds: float | None = None) -> list[dict]:
    """Train until ``updates`` or ``seconds``; return the curve (also appended to out/curve.jsonl)."""
    torch.manual_seed(seed)
    out = pathlib.Path(out)
    previous = load(out)
    model, done = previous if previous else (JointDynamics(joints), 0)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    curve, start = [], time.monotonic()
    print(f"[learner] {'resumed at update ' + str(done) if previous else 'new model'}; waiting for replay's prefill",
          flush=True)
    while (updates is None or done < updates) and (seconds is None or time.monotonic() - start < seconds):
        episodes = replay.sample(batch_episodes)
        q, u, nxt = transitions(episodes)
        with torch.no_grad():
            fresh = float(((model(q, u) - nxt) ** 2).mean().sqrt())        # error before training on them
        for _ in range(steps_per_batch):
            loss = ((model(q, u) - nxt) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        done += 1
        point = {"update": done, "fresh_rmse_rad": fresh, "transitions": len(q), "replay": replay.size(),
                 "seconds": time.monotonic() - start}
        curve.append(point)
        if done % publish_every == 0:
            save(model, done, out)
            with (out / "curve.jsonl").open("a") as f:
                f.write(json.dumps(point) + "\n")
            print(f"[learner] update {done}: fresh error {fresh * 1000:.1f} mrad, replay {point['replay']} episodes",
                  flush=True)
    save(model, done, out)
    return curve


def main() -> None:
    from hardware.replay import Replay

    parser = argparse.ArgumentParser(description="the robot lab's learner: joint dynamics from replay")
    parser.add_argument("--replay", default="localhost:8000")
    parser.add_argument("--out", default="lab_runs/learner")
    parser.add_argument("--joints", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run(Replay(args.replay), args.out, args.joints, seconds=args.seconds)


if __name__ == "__main__":
    main()
