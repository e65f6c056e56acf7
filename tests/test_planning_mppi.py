"""wmlib.planning's MPPI and disagreement penalty, on toy worlds whose answers are known.

MPPI must improve on its starting plan, turn into the argmin as the temperature falls and into
the plain average of its samples as it rises; the penalty must steer plans away from where a toy
ensemble disagrees, keep the cost contract's shape, and leave a single model's cost alone."""
import math

import pytest
import torch

from wmlib import planning

from planning_toys import (A_LOW, A_HIGH, DEVICES, TARGET, PointModel, best_possible_cost, chance_cost,
                            distance_cost, plan_cost)


def run_mppi(model=None, seed=0, state=torch.zeros(2), cost=None, **kw):
    args = dict(horizon=6, num_samples=64, iterations=5, temperature=0.2, num_elites=8, low=A_LOW, high=A_HIGH,
                generator=torch.Generator(device=state.device).manual_seed(seed))
    args.update(kw)
    return planning.mppi(model or PointModel(), cost or distance_cost(TARGET), state, **args)


# ---------------------------------------------------------------- MPPI


def test_mppi_weights_sum_to_one_and_favour_cheap_candidates():
    costs = torch.tensor([3.0, 1.0, 2.0, 1e6])
    w = planning.mppi_weights(costs, temperature=1.0)
    assert w.shape == (4,) and float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    assert int(torch.argmax(w)) == 1 and bool((w[1] > w[2]) & (w[2] > w[0]) & (w[0] > w[3]))
    assert float(w[0] / w[1]) == pytest.approx(math.exp(-2.0), rel=1e-4)  # exp(-(cost - min) / temperature)
    huge = planning.mppi_weights(costs + 1e4, temperature=1e-3)  # no overflow or 0/0
    assert bool(torch.isfinite(huge).all()) and float(huge[1]) == pytest.approx(1.0)


def test_mppi_weights_become_the_argmin_as_temperature_falls_and_uniform_as_it_rises():
    costs = torch.rand(50, generator=torch.Generator().manual_seed(0))
    cold = planning.mppi_weights(costs, temperature=1e-6)
    assert float(cold[torch.argmin(costs)]) == pytest.approx(1.0, abs=1e-6)
    hot = planning.mppi_weights(costs, temperature=1e6)
    assert float((hot - 1 / 50).abs().max()) < 1e-6
    spread = [float(planning.mppi_weights(costs, t).max()) for t in (1e-3, 1e-2, 1e-1, 1.0, 10.0)]
    assert spread == sorted(spread, reverse=True)  # the hotter, the flatter


def test_mppi_improves_on_its_start_and_gets_close_to_the_optimum():
    optimum, chance = best_possible_cost(), chance_cost()
    start = plan_cost(torch.zeros(6, 2))  # the middle of the bounds: stand still
    for seed in range(3):
        cost = plan_cost(run_mppi(seed=seed))
        assert cost < start - 0.5 * (start - optimum), (seed, cost, start, optimum)
        assert cost < optimum + 0.15 * (chance - optimum), (seed, cost, optimum, chance)


def test_more_mppi_iterations_do_not_make_the_plan_worse_on_average():
    one = sum(plan_cost(run_mppi(seed=s, iterations=1)) for s in range(8))
    five = sum(plan_cost(run_mppi(seed=s, iterations=5)) for s in range(8))
    assert five < one


def test_mppi_at_low_temperature_returns_its_cheapest_candidate():
    model = PointModel()
    plan = run_mppi(model, iterations=1, temperature=1e-7)
    candidates = model.last  # (N, H, A), what the model was asked about
    costs = planning.total_cost(PointModel(), distance_cost(TARGET), torch.zeros(2), candidates)
    assert torch.allclose(plan, candidates[torch.argmin(costs)], atol=1e-5)


def test_mppi_at_high_temperature_returns_the_average_of_its_samples_about_the_mean():
    model = PointModel()
    warm = torch.full((6, 2), 0.2)
    plan = run_mppi(model, iterations=1, temperature=1e9, num_samples=4096, mean=warm, init_std=0.1, num_elites=None)
    assert torch.allclose(plan, model.last.mean(dim=0), atol=1e-5)
    # the samples are drawn around the mean with std 0.1 * span = 0.2: their average is within 4 sigma / sqrt(N)
    assert float((plan - warm).abs().max()) < 4 * 0.2 / 4096 ** 0.5


def test_mppi_with_elites_weighs_only_the_cheapest():
    model = PointModel()
    plan = run_mppi(model, iterations=1, temperature=1e9, num_elites=4)
    costs = planning.total_cost(PointModel(), distance_cost(TARGET), torch.zeros(2), model.last)
    elites = model.last[torch.topk(costs, 4, largest=False).indices]
    assert torch.allclose(plan, elites.mean(dim=0), atol=1e-5)


def test_mppi_warm_started_at_a_good_plan_never_gets_worse_when_cold():
    good = torch.tensor([[1.0, -1.0], [1.0, -0.5], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    for seed in range(3):
        plan = run_mppi(seed=seed, mean=good, temperature=1e-7, iterations=2, num_samples=8)
        assert plan_cost(plan) <= plan_cost(good) + 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_mppi_plans_have_shape_h_by_a_lie_inside_the_bounds_and_live_on_the_state_device(device):
    plan = run_mppi(state=torch.zeros(2, device=device), low=A_LOW * 0.5, high=A_HIGH * 0.3, horizon=4,
                    num_elites=8)
    assert plan.shape == (4, 2) and plan.device.type == device
    assert bool((plan >= -0.5).all()) and bool((plan <= 0.3).all())


def test_mppi_repeats_under_a_seed_and_sends_all_candidates_in_one_call_per_iteration():
    assert torch.equal(run_mppi(seed=3), run_mppi(seed=3))
    assert not torch.equal(run_mppi(seed=3), run_mppi(seed=4))
    model = PointModel()
    run_mppi(model, iterations=3)
    assert model.calls == 3 and model.last.shape == (64, 6, 2)


def test_receding_horizon_with_mppi_drives_the_point_to_the_target():
    model, generator = PointModel(), torch.Generator().manual_seed(0)
    controller = planning.RecedingHorizon(
        lambda s, warm: planning.mppi(model, distance_cost(TARGET), s, horizon=5, num_samples=64, iterations=2,
                                      temperature=0.05, low=A_LOW, high=A_HIGH, mean=warm, generator=generator),
        replan_every=2)
    state = torch.zeros(2)
    for _ in range(12):
        state = state + 0.1 * controller(state)
    assert float((state - TARGET).norm()) < 0.03 and controller.decisions == 6


# ---------------------------------------------------------------- disagreement penalty


class StripeEnsemble:
    """States (x, y, z), actions move (x, y). Three members that agree everywhere except in a stripe
    0.1 < x < 0.3, |y| < 0.1 across the straight path from the origin to (0.4, 0, 0): there member
    e adds (e - 1) * 0.05 to z at every step. The goal cost reads (x, y) only, so it is the
    same for every member: only the penalty can tell the stripe apart."""

    def rollout(self, state, actions):  # (3,), (N, H, 2) -> (3, N, H, 3)
        n, h, _ = actions.shape
        s = state.expand(3, n, 3)
        offsets = torch.tensor([-0.05, 0.0, 0.05])[:, None]
        out = []
        for t in range(h):
            inside = ((s[..., 0] > 0.1) & (s[..., 0] < 0.3) & (s[..., 1].abs() < 0.1)).float()  # (3, N)
            move = torch.cat([0.1 * actions[:, t].expand(3, n, 2), (offsets * inside)[..., None]], dim=-1)
            s = s + move
            out.append(s)
        return torch.stack(out, dim=2)


def stripe_goal(states, actions):  # (E, N, H, 3) -> (E, N, H)
    return (states[..., :2] - torch.tensor([0.4, 0.0])).norm(dim=-1)


def plan_disagreement(plan):
    states = StripeEnsemble().rollout(torch.zeros(3), plan[None])  # (3, 1, H, 3)
    return float(states.std(dim=0).mean(dim=-1).sum())


@pytest.mark.parametrize("planner", ["mppi", "cem"])
def test_the_penalty_steers_plans_around_where_the_ensemble_disagrees(planner):
    settings = dict(horizon=10, num_samples=256, iterations=8, num_elites=32, low=A_LOW, high=A_HIGH)
    if planner == "mppi":
        settings["temperature"] = 0.1
    plain, penalised = [], []
    for seed in range(3):
        for weight, into in ((0.0, plain), (5.0, penalised)):
            cost = planning.disagreement_penalty(stripe_goal, weight)
            plan = getattr(planning, planner)(StripeEnsemble(), cost, torch.zeros(3),
                                              generator=torch.Generator().manual_seed(seed), **settings)
            final = StripeEnsemble().rollout(torch.zeros(3), plan[None])[:, 0, -1].mean(dim=0)
            into.append((plan_disagreement(plan), float(stripe_goal(final, None))))
    assert min(d for d, _ in plain) > 0.05, plain  # without the penalty the plans cut through the stripe
    for (d_plain, _), (d_pen, miss) in zip(plain, penalised):
        assert d_pen < 0.2 * d_plain, (plain, penalised)
        assert miss < 0.15, (plain, penalised)  # and still end near the goal (0.4 away at the start)


def test_the_penalty_adds_weight_times_the_members_spread_per_step_and_keeps_the_shape():
    states = torch.randn(4, 5, 3, 6, generator=torch.Generator().manual_seed(0))  # (E, N, H, D)
    actions = torch.zeros(5, 3, 2)
    base = lambda s, a: s[..., 0] ** 2  # noqa: E731
    scale = torch.arange(1.0, 7.0)
    out = planning.disagreement_penalty(base, 0.7, scale=scale)(states, actions)
    assert out.shape == (4, 5, 3)
    expected = base(states, actions) + 0.7 * (states.std(dim=0) / scale).mean(dim=-1)
    assert torch.allclose(out, expected, atol=1e-6)
    # every member pays the same penalty: the ensemble average moves by exactly that much
    assert torch.allclose((out - base(states, actions)).std(dim=0), torch.zeros(5, 3), atol=1e-6)


def test_the_penalty_leaves_a_single_model_and_a_zero_weight_alone():
    states, actions = torch.randn(1, 5, 3, 6), torch.zeros(5, 3, 2)
    base = lambda s, a: s.sum(-1)  # noqa: E731
    assert torch.equal(planning.disagreement_penalty(base, 5.0)(states, actions), base(states, actions))
    states = torch.randn(3, 5, 3, 6)
    assert torch.equal(planning.disagreement_penalty(base, 0.0)(states, actions), base(states, actions))


def test_a_penalised_cost_of_an_agreeing_ensemble_plans_like_the_plain_cost():
    model = PointModel((1.0, 1.0, 1.0))  # identical members: no disagreement anywhere
    plain = run_mppi(model, seed=2)
    penalised = run_mppi(model, seed=2, cost=planning.disagreement_penalty(distance_cost(TARGET), 10.0))
    assert torch.allclose(plain, penalised, atol=1e-6)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, message", [
    (lambda: run_mppi(temperature=0.0), "temperature must be above 0"),
    (lambda: run_mppi(temperature=-1.0), "temperature must be above 0"),
    (lambda: run_mppi(num_elites=100), "num_elites"),
    (lambda: run_mppi(iterations=0), "iterations"),
    (lambda: run_mppi(horizon=0), "horizon"),
    (lambda: run_mppi(num_samples=0), "num_samples"),
    (lambda: run_mppi(mean=torch.zeros(5, 2)), r"warm-start mean must have shape \(H, A\)"),
    (lambda: run_mppi(low=torch.ones(2), high=torch.ones(2)), "lower action bound"),
    (lambda: planning.mppi_weights(torch.zeros(3, 2), 1.0), r"one total cost per candidate \(N,\)"),
    (lambda: planning.disagreement_penalty(distance_cost(TARGET), -1.0), "at least 0"),
])
def test_bad_input_is_refused_with_an_error_that_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()
