"""The model-based loop (wmlib.model_based): rows, training, and improvement on a toy task.

The toy task stands in for a ManiSkill env with the same interface (reset, step, true_state,
single_action_space): a point pushed by its actions through dynamics the model must learn
(a gain and a drift it is never told), to a goal that is part of the state. The loop is
given only random episodes and a cost, as for a new task with no dataset.
"""
import types

import numpy as np
import pytest
import torch

from wmlib import control, model_based

LAYOUT = {"point": slice(0, 2), "goal": slice(2, 4)}
SMALL_TRAINING = {"members": 3, "hidden": (32, 32), "epochs": 30, "batch_size": 64}
SMALL_PLANNER = {"horizon": 4, "num_samples": 64, "num_elites": 8, "iterations": 3}


class PointTask:
    """s = (point x, y, goal x, y); point += 0.08 * a + (0.01, 0); success within 3 cm of the goal."""

    def __init__(self, max_steps=25):
        box = types.SimpleNamespace(low=-np.ones(2, np.float32), high=np.ones(2, np.float32), shape=(2,))
        self.unwrapped = types.SimpleNamespace(single_action_space=box)
        self.max_steps = max_steps

    def reset(self, seed):
        rng = np.random.default_rng(seed)
        self.state = torch.tensor(np.r_[rng.uniform(-0.3, 0.3, 2), rng.uniform(-0.3, 0.3, 2)], dtype=torch.float32)
        self.t = 0

    def true_state(self):
        return self.state[None].clone(), LAYOUT

    def step(self, action):
        action = torch.as_tensor(action, dtype=torch.float32).clamp(-1, 1)
        self.state[:2] += 0.08 * action + torch.tensor([0.01, 0.0])
        self.t += 1
        success = torch.tensor([bool((self.state[:2] - self.state[2:]).norm() < 0.03)])
        return None, None, success, torch.tensor([self.t >= self.max_steps]), {"success": success}


def point_cost(states, actions):  # (E, N, H, D), (N, H, A) -> (E, N, H)
    return (states[..., 0:2] - states[..., 2:4]).norm(dim=-1)


def test_outcome_rows_pair_each_state_with_its_action_and_next_state():
    outcome = control.Outcome(True, 3, torch.arange(8.0).reshape(4, 2), torch.ones(3, 1))
    rows = model_based.outcome_rows(outcome, episode=7)
    assert torch.equal(rows["state"], torch.arange(6.0).reshape(3, 2))
    assert torch.equal(rows["next_state"], torch.arange(2.0, 8.0).reshape(3, 2))
    assert rows["action"].shape == (3, 1) and rows["episode"].tolist() == [7, 7, 7]


def test_join_appends_rows_and_new_episodes_get_fresh_labels():
    one = model_based.outcome_rows(control.Outcome(False, 2, torch.zeros(3, 2), torch.zeros(2, 1)), episode=0)
    assert model_based.next_episode(None) == 0
    both = model_based.join(model_based.join(None, one), model_based.outcome_rows(
        control.Outcome(False, 1, torch.ones(2, 2), torch.ones(1, 1)), episode=model_based.next_episode(one)))
    assert both["episode"].tolist() == [0, 0, 1] and len(both["state"]) == 3
    assert model_based.next_episode(both) == 2


def test_random_rows_are_seeded_and_one_episode_per_seed():
    a = model_based.random_rows(PointTask(max_steps=5), [1, 2, 3])
    b = model_based.random_rows(PointTask(max_steps=5), [1, 2, 3])
    assert torch.equal(a["action"], b["action"]) and torch.equal(a["state"], b["state"])
    assert sorted(set(a["episode"].tolist())) == [0, 1, 2]
    assert float(a["action"].abs().max()) <= 1.0


def test_training_is_seeded_and_learns_the_hidden_drift():
    rows = model_based.random_rows(PointTask(), range(20))
    model, seconds = model_based.train_ensemble(rows, seed=3, **SMALL_TRAINING)
    again, _ = model_based.train_ensemble(rows, seed=3, **SMALL_TRAINING)
    assert seconds > 0
    for p, q in zip(model.parameters(), again.parameters()):
        assert torch.equal(p, q)
    still = torch.zeros(1, 1, 2)                                    # no action: only the drift moves the point
    predicted = model.rollout(torch.zeros(4), still)                # (E, 1, 1, 4)
    assert predicted.shape == (3, 1, 1, 4)
    assert torch.allclose(predicted[..., :2].mean(0).flatten(), torch.tensor([0.01, 0.0]), atol=4e-3)


def test_training_refuses_too_few_rows():
    rows = model_based.outcome_rows(control.Outcome(False, 1, torch.zeros(2, 4), torch.zeros(1, 2)), episode=0)
    with pytest.raises(ValueError, match="at least 2 transitions"):
        model_based.train_ensemble(rows)


def test_penalty_is_added_only_where_members_disagree():
    rows = {"next_state": torch.randn(50, 4)}
    cost = model_based.penalised(point_cost, rows, weight=1.0)
    agree = torch.zeros(3, 5, 2, 4)
    assert torch.equal(cost(agree, None), point_cost(agree, None))
    apart = agree.clone()
    apart[0, 0, 0, 0] = 1.0
    extra = cost(apart, None) - point_cost(apart, None)
    assert extra[:, 0, 0].min() > 0 and extra[:, 1:].abs().max() == 0
    assert model_based.penalised(point_cost, rows, weight=0) is point_cost


def test_controller_plans_within_the_env_bounds_and_replans_on_schedule():
    env = PointTask()
    model, _ = model_based.train_ensemble(model_based.random_rows(env, range(10)), **SMALL_TRAINING)
    plan = model_based.controller(model, point_cost, env, replan_every=3, **SMALL_PLANNER)
    env.reset(seed=0)
    actions = [plan(env.true_state()[0][0]) for _ in range(7)]
    assert plan.decisions == 3                                      # steps 0, 3 and 6
    assert all(float(a.abs().max()) <= 1.0 for a in actions)


def test_the_loop_turns_random_data_and_a_cost_into_a_controller_that_succeeds():
    env = PointTask()
    rows = model_based.random_rows(env, range(100, 110))
    improved = model_based.improve(env, point_cost, rows, rounds=2, episodes=5, first_seed=200,
                                   training=SMALL_TRAINING, progress=False, **SMALL_PLANNER)
    assert [r["round"] for r in improved.rounds] == [0, 1]
    assert improved.rounds[1]["transitions_trained_on"] > improved.rounds[0]["transitions_trained_on"]
    played = sum(round(r["mean_episode_steps"] * r["trials"]) for r in improved.rounds)
    assert len(improved.rows["state"]) == len(rows["state"]) + played      # every played step was kept
    assert improved.train_seconds > 0
    seeds = range(300, 310)
    learned = model_based.play(env, improved.model, point_cost, seeds, progress=False, **SMALL_PLANNER)
    random_policy = model_based.random_rows(env, seeds)            # the same starts, random actions
    assert sum(learned.successes) >= 8, learned.summary()
    assert learned.summary()["trials"] == 10
    assert learned.failed_seeds == [s for s, ok in zip(seeds, learned.successes) if not ok]
    assert len(random_policy["state"]) > sum(o.steps for o in learned.outcomes)  # random play runs out of time
