"""wmlib.planning on a toy world whose best plan is known: a point that moves by 0.1 * action per step.

Planners must return plans of the right shape inside the bounds, find much cheaper plans than
chance, repeat under a seed, evaluate all candidates in one model call, average over an
ensemble, and refuse bad input with an error that names the problem."""
import pytest
import torch

from wmlib import planning

from planning_toys import (A_LOW, A_HIGH, DEVICES, TARGET, PointModel, best_possible_cost, chance_cost,
                            distance_cost, plan_cost)


def run_cem(model=None, seed=0, state=torch.zeros(2), **kw):
    args = dict(horizon=6, num_samples=64, num_elites=8, iterations=5, low=A_LOW, high=A_HIGH,
                generator=torch.Generator().manual_seed(seed))
    args.update(kw)
    return planning.cem(model or PointModel(), distance_cost(TARGET), state, **args)


def run_shooting(model=None, seed=0, state=torch.zeros(2), **kw):
    args = dict(horizon=6, num_samples=256, low=A_LOW, high=A_HIGH, generator=torch.Generator().manual_seed(seed))
    args.update(kw)
    return planning.random_shooting(model or PointModel(), distance_cost(TARGET), state, **args)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("planner", [run_cem, run_shooting])
def test_plans_have_shape_h_by_a_lie_inside_the_bounds_and_live_on_the_state_device(planner, device):
    plan = planner(state=torch.zeros(2, device=device), low=A_LOW * 0.5, high=A_HIGH * 0.3, horizon=4)
    assert plan.shape == (4, 2) and plan.device.type == device
    assert bool((plan >= -0.5).all()) and bool((plan <= 0.3).all())


@pytest.mark.parametrize("planner", [run_cem, run_shooting])
def test_planners_beat_chance_by_far(planner):
    optimum, chance = best_possible_cost(), chance_cost()
    for seed in range(3):
        cost = plan_cost(planner(seed=seed))
        assert cost < optimum + 0.5 * (chance - optimum), (seed, cost, optimum, chance)


def test_cem_gets_close_to_the_optimum_where_random_shooting_does_not_with_the_same_budget():
    optimum, chance = best_possible_cost(), chance_cost()
    cem_costs = [plan_cost(run_cem(seed=s)) for s in range(5)]
    shooting_costs = [plan_cost(run_shooting(seed=s, num_samples=64 * 5)) for s in range(5)]
    assert max(cem_costs) < optimum + 0.15 * (chance - optimum)
    assert max(cem_costs) < min(shooting_costs)
    for seed in range(3):  # and its first action points at the target
        first = run_cem(seed=seed)[0]
        assert float(first @ TARGET) / float(first.norm() * TARGET.norm()) > 0.8


def test_more_samples_do_not_make_random_shooting_worse_on_average():
    few = sum(plan_cost(run_shooting(seed=s, num_samples=4)) for s in range(10))
    many = sum(plan_cost(run_shooting(seed=s, num_samples=512)) for s in range(10))
    assert many < few


@pytest.mark.parametrize("planner", [run_cem, run_shooting])
def test_a_seed_repeats_the_plan_and_another_seed_changes_it(planner):
    assert torch.equal(planner(seed=3), planner(seed=3))
    assert not torch.equal(planner(seed=3), planner(seed=4))


def test_all_candidates_go_to_the_model_in_one_call_per_iteration():
    model = PointModel()
    run_cem(model, iterations=4)
    assert model.calls == 4
    model = PointModel()
    run_shooting(model)
    assert model.calls == 1


def test_total_cost_sums_over_the_horizon_and_averages_over_the_ensemble():
    plan = torch.ones(1, 3, 2)
    one = planning.total_cost(PointModel((1.0,)), distance_cost(torch.zeros(2)), torch.zeros(2), plan)
    two = planning.total_cost(PointModel((1.0, 3.0)), distance_cost(torch.zeros(2)), torch.zeros(2), plan)
    step = 0.1 * 2 ** 0.5
    assert one.shape == (1,) and float(one) == pytest.approx(step * (1 + 2 + 3))
    assert float(two) == pytest.approx(step * (1 + 2 + 3) * (1 + 3) / 2)


def test_random_shooting_never_returns_worse_than_its_warm_start():
    good = torch.tensor([[1.0, -0.6], [1.0, -0.9], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    plan = run_shooting(num_samples=2, mean=good)
    assert plan_cost(plan) <= plan_cost(good) + 1e-6


def test_cem_warm_started_at_a_good_plan_stays_near_it():
    good = torch.tensor([[1.0, -1.0], [1.0, -0.5], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    plan = run_cem(mean=good, init_std=0.05, min_std=0.01, iterations=2, num_samples=16, num_elites=4)
    assert plan_cost(plan) <= plan_cost(good) + 0.05
    assert float((plan - good).abs().max()) < 0.3


def test_a_pessimistic_ensemble_member_changes_the_plan():
    """Member 2 moves three times as far: averaging over members plans shorter moves than member 1 alone."""
    alone = run_cem(PointModel((1.0,)), seed=0)
    both = run_cem(PointModel((1.0, 3.0)), seed=0)
    assert float(both.abs().sum()) < float(alone.abs().sum())


def test_shift_drops_executed_actions_and_repeats_the_last():
    plan = torch.arange(8.0).reshape(4, 2)
    assert torch.equal(planning.shift(plan, 1), torch.tensor([[2.0, 3], [4, 5], [6, 7], [6, 7]]))
    assert torch.equal(planning.shift(plan, 0), plan)
    assert torch.equal(planning.shift(plan, 9), torch.tensor([[6.0, 7]] * 4))


def test_receding_horizon_replans_every_k_steps_with_the_shifted_plan_as_warm_start():
    calls = []

    def plan_fn(state, warm):
        calls.append((float(state), None if warm is None else warm.clone()))
        return torch.arange(5.0)[:, None] + 10 * len(calls)

    controller = planning.RecedingHorizon(plan_fn, replan_every=2)
    actions = [float(controller(torch.tensor(float(t)))) for t in range(5)]
    assert actions == [10, 11, 20, 21, 30]
    assert [c[0] for c in calls] == [0, 2, 4]  # planned at steps 0, 2, 4, from the state then
    assert calls[0][1] is None
    assert torch.equal(calls[1][1], torch.tensor([[12.0], [13], [14], [14], [14]]))
    assert controller.decisions == 3
    controller.reset()
    assert controller.plan is None and controller.decisions == 0
    controller(torch.tensor(0.0))
    assert calls[-1][1] is None  # a new episode starts without the old plan


def test_receding_horizon_replans_when_the_plan_runs_out():
    controller = planning.RecedingHorizon(lambda s, warm: torch.zeros(2, 1), replan_every=5)
    for _ in range(5):
        controller(torch.zeros(1))
    assert controller.decisions == 3


class BadShapeModel:
    def rollout(self, state, actions):
        return torch.zeros(actions.shape[0], actions.shape[1], state.shape[0])  # forgot E


@pytest.mark.parametrize("call, message", [
    (lambda: run_cem(low=torch.ones(2), high=torch.ones(2)), "lower action bound"),
    (lambda: run_cem(low=-torch.ones(3), high=torch.ones(2)), "same length"),
    (lambda: run_cem(num_elites=100), "num_elites"),
    (lambda: run_cem(iterations=0), "iterations"),
    (lambda: run_cem(horizon=0), "horizon"),
    (lambda: run_shooting(num_samples=0), "num_samples"),
    (lambda: run_cem(mean=torch.zeros(5, 2)), r"warm-start mean must have shape \(H, A\)"),
    (lambda: run_shooting(state=torch.zeros(1, 2)), "one state vector"),
    (lambda: run_shooting(BadShapeModel()), r"model.rollout returned shape \(256, 6, 2\)"),
    (lambda: planning.cem(PointModel(), lambda s, a: s.sum(-1).sum(-1), torch.zeros(2), horizon=3, num_samples=8,
                          num_elites=2, iterations=1, low=A_LOW, high=A_HIGH), r"cost returned shape \(1, 8\)"),
    (lambda: planning.RecedingHorizon(lambda s, w: None, replan_every=0), "replan_every"),
])
def test_bad_input_is_refused_with_an_error_that_names_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cem_update_refits_to_the_cheapest_and_receding_horizon_replans_on_schedule():
    g = torch.Generator().manual_seed(0)
    candidates, costs = torch.randn(20, 3, 2, generator=g), torch.randn(20, generator=g)
    mean, std = planning.cem_update(candidates, costs, 4)
    elites = candidates[torch.argsort(costs)[:4]]
    torch.testing.assert_close(mean, elites.mean(0))
    torch.testing.assert_close(std, elites.std(0, unbiased=False))
    plans = []

    def plan_fn(state, warm):
        plans.append(warm)
        return torch.full((3, 1), float(len(plans)))

    def step_fn(action):
        return torch.zeros(1), False

    states, actions = planning.receding_horizon(plan_fn, step_fn, torch.zeros(1), replan_every=2, max_steps=5)
    assert states.shape == (6, 1) and actions[:, 0].tolist() == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert plans[0] is None and plans[1][:, 0].tolist() == [1.0, 1.0, 1.0], "the warm start: the plan shifted by 2"
