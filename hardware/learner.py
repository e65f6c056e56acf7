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
    """(q (N, J), u (N, J)) -> predicted q' (N, J).

    q' = q + k * (u - q) + scale * f(q, (u - q) / scale): a per-joint gain k (each servo covers a
    share of the way to its target in one period; starts at 1, the target reached) and a small
    network f for the rest (the gripper stalling on an object, gravity on the shoulder). The
    network's last layer starts at zero, so an untrained model predicts that every target is
    reached, and weight decay keeps the network's part small where replay has no data yet.
    """

    def __init__(self, joints: int, width: int = 64, scale: float = 0.1):
        super().__init__()
        self.joints, self.scale = joints, scale
        self.gain = nn.Parameter(torch.ones(joints))
        self.net = nn.Sequential(nn.Linear(2 * joints, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, joints))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, q: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        step = u - q
        return q + self.gain * step + self.scale * self.net(torch.cat([q, step / self.scale], dim=-1))


def transitions(episodes: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampled episodes -> (q (N, J), u (N, J), q' (N, J)) over every step of every episode."""
    q = np.concatenate([e["state"][:-1] for e in episodes])
    u = np.concatenate([e["action"] for e in episodes])
    nxt = np.concatenate([e["state"][1:] for e in episodes])
    return tuple(torch.as_tensor(x, dtype=torch.float32) for x in (q, u, nxt))


def rmse(predicted: torch.Tensor, actual: torch.Tensor) -> float:
    """Root mean square error in radians over every joint of every transition."""
    return float(((predicted - actual) ** 2).mean().sqrt())


def save(model: JointDynamics, updates: int, folder, seen: set[int] = frozenset()) -> pathlib.Path:
    """Publish the model, its update count and the ids of the episodes it was trained on."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "joints": model.joints, "updates": updates,
                "seen": sorted(seen)}, buffer)
    return write_atomically(folder / CHECKPOINT, buffer.getvalue())


def load(folder, with_seen: bool = False):
    """The last published (model, update count), with the trained-on episode ids as a third item if
    ``with_seen``; None if there is none (or it is unreadable)."""
    path = pathlib.Path(folder) / CHECKPOINT
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = JointDynamics(saved["joints"])
        model.load_state_dict(saved["state_dict"])
        found = model.eval(), int(saved["updates"])
        return found + (set(saved.get("seen", [])),) if with_seen else found
    except (FileNotFoundError, RuntimeError, KeyError, EOFError, ValueError):
        return None


def run(replay, out, joints: int, updates: int | None = None, batch_episodes: int = 8,
        steps_per_batch: int = 4, publish_every: int = 20, seed: int = 0, seconds: float | None = None) -> list[dict]:
    """Train until ``updates`` or ``seconds``; return the curve, one point per update (the points
    with a held-out measurement, and every ``publish_every``-th, are appended to out/curve.jsonl)."""
    torch.manual_seed(seed)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = load(out, with_seen=True)
    model, done, seen = previous if previous else (JointDynamics(joints), 0, set())
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    curve, start = [], time.monotonic()
    print(f"[learner] {'resumed at update ' + str(done) if previous else 'new model'}; waiting for replay's prefill",
          flush=True)
    while (updates is None or done < updates) and (seconds is None or time.monotonic() - start < seconds):
        episodes = replay.sample(batch_episodes)
        point = {"update": done + 1, "replay": replay.size(), "seconds": time.monotonic() - start}
        unseen = {int(e["episode_id"]): e for e in episodes if int(e["episode_id"]) not in seen}
        if unseen:                                                     # measured before any step on them
            q, u, nxt = transitions(list(unseen.values()))
            with torch.no_grad():
                point.update(held_out_rmse_rad=rmse(model(q, u), nxt), still_rmse_rad=rmse(q, nxt),
                             held_out_episodes=sorted(unseen))
        q, u, nxt = transitions(episodes)
        for _ in range(steps_per_batch):
            loss = ((model(q, u) - nxt) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        seen.update(int(e["episode_id"]) for e in episodes)
        done += 1
        point["train_rmse_rad"] = float(loss.detach().sqrt())
        curve.append(point)
        if done % publish_every == 0:
            save(model, done, out, seen)
        if unseen or done % publish_every == 0:
            with (out / "curve.jsonl").open("a") as f:
                f.write(json.dumps(point) + "\n")
        if unseen:
            print(f"[learner] update {done}: error on {len(unseen)} unseen episode(s) "
                  f"{point['held_out_rmse_rad'] * 1000:.2f} mrad (joints held still: "
                  f"{point['still_rmse_rad'] * 1000:.2f} mrad), replay {point['replay']} episodes", flush=True)
    save(model, done, out, seen)
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
