"""Measuring models and controllers: errors of predictions, success rates with their uncertainty.

Three numbers are kept apart throughout the course: how well a model predicts one step, how far
its predictions drift over many steps, and how often a controller that uses it succeeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

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


def one_step_error(predicted: torch.Tensor, actual: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Per-component root-mean-square error of predicted next states.

    predicted, actual: (B, D). scale: optional (D,) divisor (e.g. the data's standard deviation),
    so that components in metres and in radians can be compared. Returns (D,).
    """
    if predicted.shape != actual.shape:
        raise ValueError(f"one_step_error: predicted {tuple(predicted.shape)} vs actual {tuple(actual.shape)}")
    error = predicted - actual
    if scale is not None:
        error = error / scale
    return error.pow(2).mean(dim=0).sqrt()
