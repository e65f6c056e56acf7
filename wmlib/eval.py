"""Measuring models and controllers: errors of predictions, success rates with their uncertainty.

Three numbers are kept apart throughout the course: how well a model predicts one step, how far
its predictions drift over many steps, and how often a controller that uses it succeeds.

    w = windows(test_episodes, horizon=20)             # recorded stretches, never across episodes
    predicted = rollout_windows(model, w)              # (E, W, H, D): open loop from each start
    curve = drift(predicted, w.future, scale)          # (H, D): error after k = 1..H steps
    cal = calibration(disagreement(predicted, scale),  # does the members' spread rank the error?
                      window_error(predicted, w.future, scale))
    rate, outcomes = task_success(env, controller, seeds=range(5))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SuccessRate:
    """k successes out of n trials, with a Wilson score interval at the given confidence."""
    successes: int
    trials: int
    low: float
    high: float
    confidence: float = 0.95

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else float("nan")

    def __str__(self) -> str:
        return (f"{self.rate:.0%} ({self.successes}/{self.trials}, "
                f"{self.confidence:.0%} CI {self.low:.0%}-{self.high:.0%})")


def success_rate(outcomes, confidence: float = 0.95) -> SuccessRate:
    """Success rate of a list of booleans with a Wilson score interval.

    The Wilson interval stays inside [0, 1] and is sensible at 0/n and n/n, where the usual
    `p +- 1.96 * sqrt(p(1-p)/n)` collapses to a width of zero.
    """
    outcomes = [bool(o) for o in outcomes]
    n, k = len(outcomes), sum(outcomes)
    if n == 0:
        raise ValueError("success_rate needs at least one trial")
    z = _normal_quantile(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return SuccessRate(k, n, max(0.0, centre - half), min(1.0, centre + half), confidence)


def _normal_quantile(q: float) -> float:
    return float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(q, dtype=torch.float64)))


def rms(error: torch.Tensor, scale: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Root-mean-square of error (divided by scale (D,) when given) along dim."""
    if scale is not None:
        error = error / scale
    return error.pow(2).mean(dim=dim).sqrt()


def one_step_error(predicted: torch.Tensor, actual: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Per-component root-mean-square error of predicted next states.

    predicted, actual: (B, D). scale: optional (D,) divisor (e.g. the data's standard deviation),
    so that components in metres and in radians can be compared. Returns (D,).
    """
    if predicted.shape != actual.shape:
        raise ValueError(f"one_step_error: predicted {tuple(predicted.shape)} vs actual {tuple(actual.shape)}")
    return rms(predicted - actual, scale, dim=0)


# ------------------------------------------------------------------ multi-step drift


@dataclass
class Windows:
    """Stretches of H recorded steps inside episodes, for open-loop rollouts against what really happened.

    start: (W, D) the state a window starts from; actions: (W, H, A) the actions recorded from
    there; future: (W, H, D) the states they led to (s_t+1 .. s_t+H); episode, step: (W,) where
    each window starts. No window crosses the end of its episode.
    """
    start: torch.Tensor
    actions: torch.Tensor
    future: torch.Tensor
    episode: torch.Tensor
    step: torch.Tensor

    def __len__(self) -> int:
        return len(self.start)

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]


def windows(episodes, horizon: int, key: str = "observation/state", stride: int = 1) -> Windows:
    """Every window of ``horizon`` meaningful actions inside each episode, starting every ``stride`` steps.

    An episode of T actions gives the windows starting at t = 0, stride, ... with t + horizon <= T;
    one shorter than ``horizon`` gives none. The last step's action is never used.
    """
    import numpy as np

    if horizon < 1 or stride < 1:
        raise ValueError(f"horizon and stride must be at least 1, got {horizon} and {stride}")
    parts = {"start": [], "actions": [], "future": [], "episode": [], "step": []}
    for ep in episodes:
        states, acts, T = np.asarray(ep.steps[key]), np.asarray(ep.steps["action"]), ep.num_actions
        starts = np.arange(0, T - horizon + 1, stride)
        if len(starts) == 0:
            continue
        k = np.arange(horizon)
        parts["start"].append(states[starts])
        parts["actions"].append(acts[starts[:, None] + k])                  # (w, H, A)
        parts["future"].append(states[starts[:, None] + k + 1])             # (w, H, D)
        parts["episode"].append(np.full(len(starts), ep.index))
        parts["step"].append(starts)
    if not parts["start"]:
        raise ValueError(f"no episode has {horizon} actions: no window of that horizon exists")
    out = {name: torch.as_tensor(np.concatenate(v)) for name, v in parts.items()}
    return Windows(out["start"].float(), out["actions"].float(), out["future"].float(), out["episode"], out["step"])


@torch.no_grad()
def rollout_windows(model, w: Windows, batch: int = 4096) -> torch.Tensor:
    """Open-loop predictions of a model for every window: (E, W, H, D).

    model: anything with ``rollout(start (N, D), actions (N, H, A)) -> (E, N, H, D)``; each window
    starts from its own recorded state and replays its recorded actions, never corrected by
    what really happened on the way.
    """
    parts = [model.rollout(w.start[i:i + batch], w.actions[i:i + batch]) for i in range(0, len(w), batch)]
    return torch.cat(parts, dim=1).cpu()


def members_mean(predicted: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
    """An ensemble's prediction is the mean of its members: (E, ...) -> (...) when predicted has
    one axis more than actual; anything else is returned as it is."""
    return predicted.mean(dim=0) if predicted.ndim == actual.ndim + 1 else predicted


def drift(predicted: torch.Tensor, actual: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Root-mean-square error after k = 1..H open-loop steps, per component: (H, D).

    predicted: (W, H, D), or (E, W, H, D) for an ensemble, whose prediction is the members' mean;
    actual: (W, H, D). scale: optional (D,) divisor, so components in different units compare.
    Row k-1 is the error after k steps; row 0 is the one-step error on the windows' starts.
    """
    predicted = members_mean(predicted, actual)
    if predicted.shape != actual.shape or predicted.ndim != 3:
        raise ValueError(f"drift: predicted {tuple(predicted.shape)} vs actual {tuple(actual.shape)}; "
                         "expected (W, H, D) (or (E, W, H, D) predicted)")
    return rms(predicted - actual, scale, dim=0)


def window_error(predicted: torch.Tensor, actual: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """How wrong each prediction is: the RMS over components of the (scaled) error.

    actual: (..., D), e.g. (W, H, D) windows or (B, D) single steps; predicted: the same shape,
    or with a leading ensemble axis (E, ..., D), whose mean is the prediction. Returns (...).
    """
    predicted = members_mean(predicted, actual)
    if predicted.shape != actual.shape:
        raise ValueError(f"window_error: predicted {tuple(predicted.shape)} vs actual {tuple(actual.shape)}")
    return rms(predicted - actual, scale, dim=-1)


# ------------------------------------------------------------------ calibration of disagreement


@dataclass(frozen=True)
class Calibration:
    """Does a bigger predicted uncertainty go with a bigger actual error?

    score, error: (bins,) the mean predicted disagreement and the mean actual error of each bin
    (bins hold equal numbers of predictions, sorted by disagreement); count: (bins,);
    spearman: the rank correlation of disagreement and error over all predictions (1: the
    ranking by disagreement is exactly the ranking by error; 0: no relation); pvalue: its p-value.
    """
    score: torch.Tensor
    error: torch.Tensor
    count: torch.Tensor
    spearman: float
    pvalue: float


def calibration(score: torch.Tensor, error: torch.Tensor, bins: int = 10) -> Calibration:
    """Reliability of an uncertainty score: bin predictions by score, compare with actual error.

    score, error: any shape, the same; one entry per prediction (e.g. (W, H) from
    ``ensemble.disagreement`` and ``window_error``).
    """
    from scipy.stats import spearmanr

    score, error = torch.as_tensor(score).flatten().double(), torch.as_tensor(error).flatten().double()
    if score.shape != error.shape:
        raise ValueError(f"calibration: {score.numel()} scores vs {error.numel()} errors")
    if score.numel() < 2 * bins:
        raise ValueError(f"calibration needs at least two predictions per bin: {score.numel()} for {bins} bins")
    order = torch.argsort(score)
    groups = torch.tensor_split(order, bins)
    result = spearmanr(score.numpy(), error.numpy())
    return Calibration(score=torch.stack([score[g].mean() for g in groups]),
                       error=torch.stack([error[g].mean() for g in groups]),
                       count=torch.tensor([len(g) for g in groups]),
                       spearman=float(result.statistic), pvalue=float(result.pvalue))


# ------------------------------------------------------------------ task success


def task_success(env, policy, seeds, confidence: float = 0.95, **run_kwargs):
    """Play one episode per seed with ``wmlib.control.run_episode``; (SuccessRate, outcomes).

    policy: ``policy(state (D,)) -> action (A,)``; its ``reset()`` is called before each
    episode when it has one (e.g. ``wmlib.planning.RecedingHorizon``). run_kwargs go to
    ``run_episode`` (``start``, ``max_steps``). A success rate says nothing about prediction
    error, and an error says nothing about success: measure both.
    """
    from wmlib.control import run_episode

    outcomes = []
    for seed in seeds:
        if hasattr(policy, "reset"):
            policy.reset()
        outcomes.append(run_episode(env, policy, seed=int(seed), **run_kwargs))
    return success_rate([o.success for o in outcomes], confidence), outcomes


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """Mean of the paired differences a_i - b_i with a Student-t interval over the n pairs.

    a, b: (n,) one number per pair, measured under the same conditions (the same training seed
    and the same evaluation starts), so what differs between a_i and b_i is the method alone.
    Returns mean, low, high, n and ``within_noise``: True when the interval contains 0, i.e.
    these pairs cannot tell the two apart.
    """
    from scipy.stats import t as student_t

    a, b = (torch.as_tensor(x, dtype=torch.float64).reshape(-1) for x in (a, b))
    if len(a) != len(b):
        raise ValueError(f"paired results need the same number of pairs, got {len(a)} and {len(b)}")
    if len(a) < 2:
        raise ValueError("a paired interval needs at least 2 pairs (several training seeds)")
    d = a - b
    mean, half = float(d.mean()), float(student_t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std() / len(d) ** 0.5)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": len(d), "confidence": confidence,
            "within_noise": bool(mean - half <= 0 <= mean + half)}


def paired_verdict(a, b, name: str = "the baseline", min_seeds: int = 3, difference=paired_difference) -> dict:
    """Method a against method b on the same starts, paired twice: by training seed, and by (seed, start).

    a, b: (seeds, starts) outcomes (0/1), row i of both from training seed i on the same starts.
    The seed interval (n = seeds) carries the luck of training but, from 2 or 3 seeds, can be
    falsely narrow (equal differences have no spread); the start interval (n = seeds x starts)
    carries the luck of the starts. A verdict needs at least ``min_seeds`` seeds and both intervals
    on the same side of zero; anything else is "inside the noise". ``difference`` is the paired
    interval used (``paired_difference``, or a student's).
    Returns by_seed, by_start (``difference``'s dicts) and verdict: "above <name>", "below <name>",
    "inside the noise" or "too few seeds (k of min_seeds)".
    """
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired outcomes need the same (seeds, starts) shape, got {a.shape} and {b.shape}")
    by_seed = difference(a.mean(axis=1), b.mean(axis=1))
    by_start = difference(a.reshape(-1), b.reshape(-1))
    sides = {0 if d["within_noise"] else int(np.sign(d["mean"])) for d in (by_seed, by_start)}
    if len(a) < min_seeds:
        verdict = f"too few seeds ({len(a)} of {min_seeds})"
    else:
        verdict = {frozenset({1}): f"above {name}", frozenset({-1}): f"below {name}"}.get(frozenset(sides),
                                                                                          "inside the noise")
    return {"by_seed": by_seed, "by_start": by_start, "verdict": verdict}


def ridge_fit(train_x, train_y, ridge: float = 1e-3):
    """A linear map from features to targets, fitted by ridge regression: (N, F), (N, D) -> predict((M, F)) -> (M, D).

    Features are standardised with the training rows' mean and spread; the penalty is ``ridge``
    times N on the weights, none on the bias; solved in closed form.
    """
    train_x, train_y = (torch.as_tensor(v, dtype=torch.float64) for v in (train_x, train_y))
    if train_x.ndim != 2 or train_y.ndim != 2 or len(train_x) != len(train_y):
        raise ValueError(f"features (N, F) and targets (N, D) need one row each per example, got "
                         f"{tuple(train_x.shape)} and {tuple(train_y.shape)}")
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-8)

    def design(x):
        x = torch.as_tensor(x, dtype=torch.float64)
        return torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)

    a = design(train_x)
    penalty = ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype)
    penalty[-1, -1] = 0.0
    weights = torch.linalg.solve(a.T @ a + penalty, a.T @ train_y)
    return lambda x: design(x) @ weights


def linear_probe(train_x, train_y, test_x, test_y, ridge: float = 1e-3) -> torch.Tensor:
    """What a representation keeps, read by a linear map: R² per target on held-out rows.

    train_x (N, F), train_y (N, D): features and the true quantities (e.g. the cube's position) of
    training rows; test_x (M, F), test_y (M, D): of held-out rows. The map is ``ridge_fit``'s.
    Returns (D,): 1 - residual / total sum of squares on the held-out rows, per target; 1 is
    perfect, 0 is no better than the held-out mean.
    """
    test_x, test_y = (torch.as_tensor(v, dtype=torch.float64) for v in (test_x, test_y))
    train_y = torch.as_tensor(train_y, dtype=torch.float64)
    if test_x.ndim != 2 or test_y.ndim != 2 or len(test_x) != len(test_y) or train_y.shape[1:] != test_y.shape[1:]:
        raise ValueError("targets must have one row per feature row and the same width in both sets")
    predict = ridge_fit(train_x, train_y, ridge)
    residual = ((predict(test_x) - test_y) ** 2).sum(0)
    total = ((test_y - test_y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return 1 - residual / total
