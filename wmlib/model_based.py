"""Model-based control: learn a model from data, plan with it, act, keep what happened, learn again.

The loop of chapter 5, with every step a small function:

    rows = model_based.dataset_rows(path, layout)          # or random_rows(env, seeds) for a new task
    improved = model_based.improve(env, task_cost, rows, rounds=3, episodes=10)   # .model .rows .rounds
    cost = model_based.penalised(task_cost, improved.rows)  # + disagreement, as the loop plans
    played = model_based.play(env, improved.model, cost, seeds=range(5000, 5050))
    played.summary()                                        # success rate, interval, failed seeds

*Rows* are a dict of transition tensors: ``state`` (N, D), ``action`` (N, A), ``next_state``
(N, D) and ``episode`` (N,), the episode each row comes from. Nothing here names a task: the
task enters only through ``cost`` (``wmlib.tasks``), so a new ManiSkill task needs a cost
function and nothing else, starting from random episodes when it has no dataset.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from . import control, planning
from .eval import success_rate
from .models.ensemble import EnsembleDeltaModel
from .models.train import fit

# The course's CPU settings (benchmarks/control.py and chapter 5 use them).
PLANNER = {"horizon": 6, "num_samples": 256, "num_elites": 32, "iterations": 4}  # CEM
REPLAN_EVERY = 2
PENALTY = 0.01     # cost per unit of disagreement (each component in units of its spread in the data)
TRAINING = {"members": 5, "hidden": (256, 256), "epochs": 40, "lr": 3e-3, "batch_size": 256}

KEYS = ("state", "action", "next_state", "episode")


def dataset_rows(path, layout: dict | None = None) -> dict:
    """Every transition of an RLDS dataset of state observations as rows (see the module doc).

    ``layout``: the state layout the planner's cost reads; the dataset's must be the same.
    """
    from . import data

    if layout is not None and data.state_layout(path) != layout:
        raise ValueError(f"{path}: the dataset's state layout {data.state_layout(path)} differs from {layout}")
    return data.transitions(data.load(path, images=False)).rows(keys=KEYS)


def outcome_rows(outcome: control.Outcome, episode: int) -> dict:
    """The transitions of one played episode as rows labelled ``episode``."""
    t = outcome.steps
    return {"state": outcome.states[:-1].float(), "action": outcome.actions.float(),
            "next_state": outcome.states[1:].float(), "episode": torch.full((t,), episode, dtype=torch.long)}


def join(rows: dict | None, more: dict) -> dict:
    """Rows followed by more rows (``rows`` may be None: nothing yet)."""
    if rows is None:
        return {k: more[k] for k in KEYS}
    return {k: torch.cat([rows[k], more[k].to(rows[k].dtype)]) for k in KEYS}


def next_episode(rows: dict | None) -> int:
    """The first unused episode label."""
    return 0 if rows is None or len(rows["episode"]) == 0 else int(rows["episode"].max()) + 1


def random_rows(env, seeds, rows: dict | None = None) -> dict:
    """Rows of uniformly random actions, one episode per seed: the data of a task with no dataset."""
    space = env.unwrapped.single_action_space
    generator = torch.Generator().manual_seed(int(seeds[0]) if len(seeds) else 0)
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    policy = lambda state: low + (high - low) * torch.rand(low.shape, generator=generator)  # noqa: E731
    for seed in seeds:
        rows = join(rows, outcome_rows(control.run_episode(env, policy, seed=seed), next_episode(rows)))
    return rows


def train_ensemble(rows: dict, *, seed: int = 0, members: int = TRAINING["members"],
                   hidden: tuple[int, ...] = TRAINING["hidden"], epochs: int = TRAINING["epochs"],
                   lr: float = TRAINING["lr"], batch_size: int = TRAINING["batch_size"],
                   progress: bool = False) -> tuple[EnsembleDeltaModel, float]:
    """An ensemble of delta models trained on every row for ``epochs`` epochs; returns it and the seconds taken.

    No episodes are held out: with a few hundred episodes, which ones are held out decides when
    early stopping stops, and one unlucky split stops it after an epoch. Each member fits its
    own bootstrap resample, and ``fit`` keeps the epoch that fits a fixed fifth of the rows best.
    """
    if len(rows["state"]) < 2:
        raise ValueError(f"need at least 2 transitions to train on, got {len(rows['state'])}")
    rows = {k: rows[k] for k in ("state", "action", "next_state")}
    check = torch.randperm(len(rows["state"]), generator=torch.Generator().manual_seed(seed))
    check = check[: max(1, len(check) // 5)]
    torch.manual_seed(seed)
    model = EnsembleDeltaModel(rows["state"].shape[1], rows["action"].shape[1], members=members, hidden=hidden)
    model.fit_normalisers(**rows)
    weighted = {**rows, "weight": model.bootstrap_weights(len(rows["state"]), seed=seed)}
    history = fit(model, weighted, {k: v[check] for k, v in rows.items()}, epochs=epochs, patience=epochs,
                  lr=lr, batch_size=batch_size, seed=seed, progress=progress, desc=f"ensemble, seed {seed}")
    model.eval()
    return model, history.seconds


def penalised(cost: planning.Cost, rows: dict, weight: float = PENALTY) -> planning.Cost:
    """``cost`` plus ``weight`` x the ensemble's disagreement, each component in units of its spread in ``rows``."""
    if weight == 0:
        return cost
    scale = rows["next_state"].std(dim=0).clamp_min(1e-3)  # (D,): components that never move count as 1 mm
    return planning.disagreement_penalty(cost, weight, scale=scale)


def controller(model, cost: planning.Cost, env, *, seed: int = 0, replan_every: int = REPLAN_EVERY,
               **settings) -> planning.RecedingHorizon:
    """Receding-horizon CEM on ``model`` within ``env``'s action bounds (``PLANNER`` unless overridden)."""
    settings = {**PLANNER, **settings}
    space = env.unwrapped.single_action_space
    low, high = planning.bounds(space.low, space.high)
    generator = torch.Generator().manual_seed(seed)

    def plan(state, warm):
        return planning.cem(model, cost, state.float(), low=low, high=high, mean=warm, generator=generator,
                            **settings)

    return planning.RecedingHorizon(plan, replan_every=replan_every)


@dataclass
class Played:
    """Episodes played by one controller per seed."""
    seeds: list
    outcomes: list
    planning_seconds: float
    decisions: int

    @property
    def successes(self) -> list[bool]:
        return [o.success for o in self.outcomes]

    @property
    def failed_seeds(self) -> list:
        return [s for s, o in zip(self.seeds, self.outcomes) if not o.success]

    def summary(self) -> dict:
        rate = success_rate(self.successes)
        return {"successes": rate.successes, "trials": rate.trials, "rate": rate.rate, "ci95": [rate.low, rate.high],
                "failed_seeds": self.failed_seeds,
                "decisions_per_second": self.decisions / max(self.planning_seconds, 1e-9),
                "mean_episode_steps": sum(o.steps for o in self.outcomes) / max(len(self.outcomes), 1)}


def play(env, model, cost: planning.Cost, seeds, *, desc: str = "episodes", progress: bool = True,
         **controller_settings) -> Played:
    """One episode per seed with a fresh receding-horizon controller (seeded like the episode)."""
    outcomes, seconds, decisions = [], 0.0, 0
    for seed in tqdm(list(seeds), desc=desc, leave=False, disable=not progress):
        plan = controller(model, cost, env, seed=seed, **controller_settings)
        outcomes.append(control.run_episode(env, plan, seed=seed))
        seconds += plan.seconds
        decisions += plan.decisions
    return Played(list(seeds), outcomes, seconds, decisions)


@dataclass
class Improved:
    """What ``improve`` ends with: the model trained on all rows, the rows, a record per round."""
    model: EnsembleDeltaModel
    rows: dict
    rounds: list[dict]
    train_seconds: float  # all the training, the final model's included


def improve(env, cost: planning.Cost, rows: dict, *, rounds: int, episodes: int, first_seed: int = 2000,
            penalty: float = PENALTY, seed: int = 0, training: dict | None = None, progress: bool = True,
            **controller_settings) -> Improved:
    """Train, plan and act for ``episodes`` episodes, add them to the rows; ``rounds`` times, then train once more.

    ``cost`` is the task's cost; the planner adds the disagreement ``penalty``. Round i plays seeds
    first_seed + i * episodes .. and trains with seed ``seed + i``; each round's record holds its
    success, training time and data size.
    """
    training = {**TRAINING, **(training or {})}
    records, train_seconds = [], 0.0
    for i in range(rounds + 1):
        start = time.perf_counter()
        model, seconds = train_ensemble(rows, seed=seed + i, **training)
        train_seconds += seconds
        if i == rounds:
            return Improved(model, rows, records, train_seconds)
        seeds = range(first_seed + i * episodes, first_seed + (i + 1) * episodes)
        played = play(env, model, penalised(cost, rows, penalty), seeds, desc=f"round {i}", progress=progress,
                      **controller_settings)
        records.append({"round": i, "transitions_trained_on": len(rows["state"]), "train_seconds": seconds,
                        "seconds": time.perf_counter() - start, **played.summary()})
        for outcome in played.outcomes:
            rows = join(rows, outcome_rows(outcome, next_episode(rows)))
