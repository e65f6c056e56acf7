"""Planning with a world model: try action sequences in the model, keep the cheapest.

Nothing here knows which task is solved or what the model is. Two contracts connect it
to the rest of the course:

- a **model** is any object with ``rollout(state, actions) -> states``:
  ``state`` is the current observation state ``(D,)``, ``actions`` are ``N`` candidate
  sequences ``(N, H, A)``, and the answer holds the predicted states s_t+1 .. s_t+H of
  every candidate as ``(E, N, H, D)``. ``E`` counts ensemble members: 1 for a single
  model, and 1 for the simulator used as a perfect model (``wmlib.sim_model``).
- a **cost** is any function ``cost(states, actions) -> (E, N, H)``: the cost of being
  in each predicted state (``states`` ``(E, N, H, D)``, ``actions`` ``(N, H, A)``).
  Task costs live in ``wmlib.tasks``.

A candidate's total cost is its per-step costs summed over the horizon and averaged over
the ensemble (``total_cost``). Everything is one tensor program over ``(E, N, H)``; the only
loop over time steps is inside a model's ``rollout``.

Three planners, each returning a plan ``(H, A)`` and each taking ``mean=``, a warm start
``(H, A)`` (the previous plan shifted by the steps executed, as ``RecedingHorizon`` offers it):

- ``random_shooting``: the cheapest of N uniform random sequences;
- ``cem``: refit a Gaussian to the K cheapest samples, a few times (the cross-entropy method);
- ``mppi``: a temperature-weighted average of Gaussian samples around a mean (model-predictive
  path integral control): cheap samples get weight exp(-(cost - min cost) / temperature).

``disagreement_penalty(cost, weight)`` wraps a cost so a planner pays for going where the
ensemble members disagree (where the model has seen little data, and its predictions are
guesses a planner would otherwise exploit). Run planners every step, or through
``RecedingHorizon``, which replans every ``k`` steps and executes the plan in between.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

import torch


class Model(Protocol):
    def rollout(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """state (D,), actions (N, H, A) -> predicted states (E, N, H, D)."""


Cost = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (E,N,H,D), (N,H,A) -> (E,N,H)


def bounds(low, high, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Action bounds as two float tensors (A,) on device; checks that low < high everywhere."""
    low = torch.as_tensor(low, dtype=torch.float32, device=device)
    high = torch.as_tensor(high, dtype=torch.float32, device=device)
    if low.ndim != 1 or low.shape != high.shape:
        raise ValueError(f"action bounds must be two vectors of the same length (A,), one entry per action "
                         f"dimension; got low {tuple(low.shape)} and high {tuple(high.shape)}")
    if not bool((low < high).all()):
        raise ValueError("every lower action bound must be below the upper one: "
                         f"low={low.tolist()}, high={high.tolist()}")
    return low, high


def total_cost(model: Model, cost: Cost, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Total cost of each candidate: per-step costs summed over H, averaged over E.

    state (D,), actions (N, H, A) -> (N,).
    """
    if state.ndim != 1:
        raise ValueError(f"state must be one state vector (D,), got shape {tuple(state.shape)}")
    if actions.ndim != 3:
        raise ValueError(f"actions must be candidate sequences (N, H, A), got shape {tuple(actions.shape)}")
    n, h, _ = actions.shape
    states = model.rollout(state, actions)  # (E, N, H, D)
    if states.ndim != 4 or states.shape[1:] != (n, h, state.shape[0]):
        raise ValueError(f"model.rollout returned shape {tuple(states.shape)}; expected (E, N, H, D) "
                         f"with N={n}, H={h}, D={state.shape[0]}")
    per_step = cost(states, actions)  # (E, N, H)
    if per_step.shape != states.shape[:3]:
        raise ValueError(f"cost returned shape {tuple(per_step.shape)}; expected (E, N, H) = {tuple(states.shape[:3])}")
    return per_step.sum(dim=2).mean(dim=0)


def disagreement_penalty(cost: Cost, weight: float, scale=None) -> Cost:
    """``cost`` plus ``weight`` times the ensemble's disagreement about each predicted state.

    The disagreement of step t of candidate n is the standard deviation across the E members
    of each predicted state component, divided by ``scale`` (D,) when given so that components
    in different units weigh alike, averaged over D: the same number as
    ``wmlib.models.ensemble.disagreement``. It is computed for all (N, H) at once, and the
    penalised cost keeps the contract: (E, N, H, D), (N, H, A) -> (E, N, H), every member
    paying the same penalty. A single model (E = 1) has no disagreement: the cost is unchanged.
    """
    if weight < 0:
        raise ValueError(f"the disagreement weight must be at least 0, got {weight}")

    def penalised(states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        base = cost(states, actions)  # (E, N, H)
        if states.shape[0] < 2 or weight == 0:
            return base
        # the members' standard deviation, written out: torch.std over the leading dim is several
        # times slower on the CPU than these three elementwise passes
        e = states.shape[0]
        spread = ((states - states.mean(dim=0)).square().sum(dim=0) / (e - 1)).sqrt()  # (N, H, D)
        if scale is not None:
            spread = spread / torch.as_tensor(scale, dtype=spread.dtype, device=spread.device)
        return base + weight * spread.mean(dim=-1)  # (E, N, H) + (N, H)

    return penalised


def _check(horizon: int, num_samples: int, iterations: int = 1, num_elites: int | None = None) -> None:
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if num_elites is not None and not 1 <= num_elites <= num_samples:
        raise ValueError(f"num_elites must be between 1 and num_samples={num_samples}, got {num_elites}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")


def _warm(mean, horizon: int, low: torch.Tensor) -> torch.Tensor | None:
    if mean is None:
        return None
    mean = torch.as_tensor(mean, dtype=torch.float32, device=low.device)
    if mean.shape != (horizon, low.shape[0]):
        raise ValueError(f"warm-start mean must have shape (H, A) = {(horizon, low.shape[0])}, got {tuple(mean.shape)}")
    return mean


def _search_start(mean, horizon: int, low: torch.Tensor, high: torch.Tensor,
                  init_std: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampling Gaussian's first mean and std, both (H, A): the warm start (clipped) or the
    middle of the bounds, and ``init_std`` of the action range."""
    warm = _warm(mean, horizon, low)
    mu = torch.clamp(warm, low, high) if warm is not None else ((low + high) / 2).expand(horizon, -1).clone()
    std = (init_std * (high - low)).expand(horizon, -1).clone()
    return mu, std


def _noise(shape, generator: torch.Generator | None, device, uniform: bool) -> torch.Tensor:
    """Random numbers drawn on the generator's device (so a seed means the same everywhere it runs)."""
    where = generator.device if generator is not None else device
    draw = torch.rand if uniform else torch.randn
    return draw(shape, generator=generator, device=where).to(device)


def random_shooting(model: Model, cost: Cost, state: torch.Tensor, *, horizon: int, num_samples: int,
                    low, high, mean=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The cheapest of ``num_samples`` uniformly random sequences in [low, high]: (H, A).

    mean: an optional warm start (H, A), e.g. the previous plan shifted by one step; it is
    tried as one of the candidates, so a perfect model never returns anything worse.
    """
    low, high = bounds(low, high, device=state.device)
    _check(horizon, num_samples)
    u = _noise((num_samples, horizon, low.shape[0]), generator, state.device, uniform=True)
    candidates = low + u * (high - low)  # (N, H, A)
    warm = _warm(mean, horizon, low)
    if warm is not None:
        candidates[0] = torch.clamp(warm, low, high)
    costs = total_cost(model, cost, state, candidates)  # (N,)
    return candidates[torch.argmin(costs)]


def cem(model: Model, cost: Cost, state: torch.Tensor, *, horizon: int, num_samples: int, num_elites: int,
        iterations: int, low, high, mean=None, init_std: float = 0.5, min_std: float = 0.05,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """The cross-entropy method: the best sequence (H, A) it tried.

    A Gaussian with per-(step, action-dimension) mean and standard deviation, shape (H, A),
    proposes ``num_samples`` sequences, clipped to [low, high]; its mean and std are refitted
    to the ``num_elites`` cheapest, ``iterations`` times. The std starts at
    ``init_std * (high - low)`` and never falls below ``min_std * (high - low)``.
    mean: warm start (H, A); without it the search starts at the middle of the bounds.
    """
    low, high = bounds(low, high, device=state.device)
    _check(horizon, num_samples, iterations, num_elites)
    span = high - low  # (A,)
    mu, std = _search_start(mean, horizon, low, high, init_std)  # (H, A) each
    best, best_cost = mu, torch.full((), float("inf"), device=state.device)
    for _ in range(iterations):
        eps = _noise((num_samples, horizon, low.shape[0]), generator, state.device, uniform=False)
        candidates = torch.clamp(mu + std * eps, low, high)  # (N, H, A)
        costs = total_cost(model, cost, state, candidates)  # (N,)
        cheapest = torch.argmin(costs)
        better = costs[cheapest] < best_cost  # kept on the device: no wait for the answer here
        best = torch.where(better, candidates[cheapest], best)
        best_cost = torch.where(better, costs[cheapest], best_cost)
        mu, std = cem_update(candidates, costs, num_elites)
        std = torch.maximum(std, min_std * span)
    return best


def cem_update(candidates: torch.Tensor, costs: torch.Tensor, num_elites: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CEM's refit: the mean and standard deviation (H, A) of the ``num_elites`` cheapest candidates (N, H, A)
    by their costs (N,); the spread divides by K (the elites' own spread, not an estimate of a wider one)."""
    _, order = torch.topk(costs, num_elites, largest=False)  # cheapest first
    elites = candidates[order]  # (K, H, A)
    return elites.mean(dim=0), elites.std(dim=0, unbiased=False)


def mppi_weights(costs: torch.Tensor, temperature: float) -> torch.Tensor:
    """MPPI's weights of N candidates with total costs (N,): exp(-(cost - min) / temperature), summing to 1.

    Subtracting the minimum changes nothing after normalising, but keeps exp() from
    underflowing to 0/0. temperature -> 0 puts all the weight on the cheapest candidate
    (the planner becomes random shooting's argmin); temperature -> inf weighs all alike
    (the plain average of the samples, i.e. about the sampling mean).
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0 (in cost units), got {temperature}")
    if costs.ndim != 1:
        raise ValueError(f"costs must be one total cost per candidate (N,), got shape {tuple(costs.shape)}")
    return torch.softmax(-(costs - costs.min()) / temperature, dim=0)


def mppi(model: Model, cost: Cost, state: torch.Tensor, *, horizon: int, num_samples: int, low, high,
         temperature: float = 0.1, iterations: int = 1, num_elites: int | None = None, mean=None,
         init_std: float = 0.5, min_std: float = 0.05, generator: torch.Generator | None = None) -> torch.Tensor:
    """Model-predictive path integral control: the weighted average plan (H, A).

    A Gaussian with mean mu and std sigma (H, A) proposes ``num_samples`` sequences, clipped to
    [low, high]; the first is mu itself. Each gets the weight ``mppi_weights(costs, temperature)``
    (only the ``num_elites`` cheapest, when given, as TD-MPC2 does), and mu and sigma become the
    weighted mean and standard deviation of the samples; ``iterations`` times. Returns mu.
    sigma starts at ``init_std * (high - low)`` and never falls below ``min_std * (high - low)``.
    mean: warm start (H, A); without it the search starts at the middle of the bounds.
    temperature is in cost units: about the cost difference at which a sample's weight falls by e.
    """
    low, high = bounds(low, high, device=state.device)
    _check(horizon, num_samples, iterations, num_elites)
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0 (in cost units), got {temperature}")
    span = high - low  # (A,)
    mu, std = _search_start(mean, horizon, low, high, init_std)  # (H, A) each
    for _ in range(iterations):
        eps = _noise((num_samples, horizon, low.shape[0]), generator, state.device, uniform=False)
        eps[0] = 0.0  # the current mean is always one of the candidates
        candidates = torch.clamp(mu + std * eps, low, high)  # (N, H, A)
        costs = total_cost(model, cost, state, candidates)  # (N,)
        if num_elites is not None:
            costs, order = torch.topk(costs, num_elites, largest=False)
            candidates = candidates[order]  # (K, H, A)
        w = mppi_weights(costs, temperature)[:, None, None]  # (N or K, 1, 1)
        mu = (w * candidates).sum(dim=0)  # (H, A)
        std = torch.maximum((w * (candidates - mu) ** 2).sum(dim=0).sqrt(), min_std * span)
    return mu


def shift(plan: torch.Tensor, steps: int) -> torch.Tensor:
    """A plan (H, A) advanced by ``steps``: drop the executed actions, repeat the last one at the end."""
    if steps <= 0:
        return plan
    if steps >= plan.shape[0]:
        return plan[-1:].expand(plan.shape[0], -1).clone()
    return torch.cat([plan[steps:], plan[-1:].expand(steps, -1)])


def receding_horizon(plan_fn, step_fn, state: torch.Tensor, *, replan_every: int,
                     max_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``RecedingHorizon`` in a loop: plan, execute the first ``replan_every`` actions, plan again from
    the state reached, until step_fn(action) -> (state, done) says done or ``max_steps`` actions are sent.
    Returns the states (T + 1, D), the first included, and the actions (T, A)."""
    controller = RecedingHorizon(plan_fn, replan_every)
    states, actions = [state], []
    while len(actions) < max_steps:
        action = controller(state)
        state, done = step_fn(action)
        states.append(state)
        actions.append(action)
        if done:
            break
    return torch.stack(states), torch.stack(actions)


class RecedingHorizon:
    """Model-predictive control: plan, execute the first ``replan_every`` actions, plan again.

    plan_fn(state (D,), warm_start (H, A) or None) -> plan (H, A). The previous plan,
    shifted past the actions already executed, is offered as the warm start.
    ``decisions`` counts the plans made and ``seconds`` the time spent making them.

        controller = RecedingHorizon(lambda s, warm: cem(model, cost, s, mean=warm, ...), replan_every=2)
        action = controller(state)        # (A,)
    """

    def __init__(self, plan_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], replan_every: int = 1):
        if replan_every < 1:
            raise ValueError(f"replan_every must be at least 1, got {replan_every}")
        self.plan_fn = plan_fn
        self.replan_every = replan_every
        self.reset()

    def reset(self) -> None:
        """Forget the current plan and the counters (call at the start of every episode)."""
        self.plan: torch.Tensor | None = None
        self.used = 0
        self.decisions = 0
        self.seconds = 0.0  # wall-clock time spent planning

    def __call__(self, state: torch.Tensor) -> torch.Tensor:
        if self.plan is None or self.used >= min(self.replan_every, self.plan.shape[0]):
            warm = None if self.plan is None else shift(self.plan, self.used)
            start = time.perf_counter()
            self.plan = self.plan_fn(state, warm)
            self.seconds += time.perf_counter() - start
            if self.plan.ndim != 2:
                raise ValueError(f"plan_fn must return a plan (H, A), got shape {tuple(self.plan.shape)}")
            self.used = 0
            self.decisions += 1
        action = self.plan[self.used]
        self.used += 1
        return action
