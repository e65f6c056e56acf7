"""wmlib.eval beyond one step: windows that never cross episodes, drift curves, calibration of disagreement,
task success kept apart from the errors."""
import types

import numpy as np
import pytest
import torch

from wmlib import data
from wmlib import eval as ev
from wmlib.models.ensemble import EnsembleDeltaModel, disagreement


def episode(T, index, D=2, A=1):
    """An episode of T actions whose state counts steps and whose actions are 100 + step (last one: junk)."""
    n = T + 1
    state = np.arange(n, dtype=np.float32)[:, None].repeat(D, 1) + 1000 * index
    action = (100 + np.arange(n, dtype=np.float32))[:, None].repeat(A, 1)
    action[-1] = np.nan                                     # the last step's action means nothing
    return data.Episode(steps={"observation/state": state, "action": action, "is_last": np.arange(n) == n - 1},
                        index=index)


def test_windows_stay_inside_episodes_and_line_up_states_and_actions():
    eps = [episode(5, 0), episode(2, 1), episode(3, 2)]
    w = ev.windows(eps, horizon=3)
    # T=5 gives starts 0..2, T=2 none, T=3 one
    assert len(w) == 4 and w.horizon == 3
    assert w.episode.tolist() == [0, 0, 0, 2] and w.step.tolist() == [0, 1, 2, 0]
    assert w.start.shape == (4, 2) and w.actions.shape == (4, 3, 1) and w.future.shape == (4, 3, 2)
    for i in range(len(w)):
        base = 1000 * int(w.episode[i]) + int(w.step[i])
        assert torch.equal(w.start[i], torch.full((2,), float(base)))
        assert torch.equal(w.future[i, :, 0], base + torch.arange(1.0, 4.0))          # s_t+1 .. s_t+H
        assert torch.equal(w.actions[i, :, 0], 100 + int(w.step[i]) + torch.arange(3.0))  # a_t .. a_t+H-1
    assert torch.isfinite(w.actions).all(), "the last step's action was used"


def test_windows_with_a_stride_and_a_full_length_window():
    w = ev.windows([episode(6, 0)], horizon=2, stride=2)
    assert w.step.tolist() == [0, 2, 4]
    w = ev.windows([episode(4, 0)], horizon=4)
    assert len(w) == 1 and w.future[0, -1, 0] == 4.0                                 # ends on the final observation
    with pytest.raises(ValueError, match="no episode has 9 actions"):
        ev.windows([episode(4, 0), episode(8, 1)], horizon=9)
    with pytest.raises(ValueError, match="at least 1"):
        ev.windows([episode(4, 0)], horizon=0)


class Drifting:
    """A 'model' of s' = s + a (per component) that adds `bias` to every step: its error after k steps is k * bias."""
    def __init__(self, biases):
        self.biases = torch.tensor(biases, dtype=torch.float32)                       # (E,)
        self.calls = 0

    def rollout(self, state, actions):                                              # (N, D), (N, H, A=1)
        self.calls += 1
        steps = actions + self.biases.view(-1, 1, 1, 1)                             # (E, N, H, 1)
        return state[None, :, None, :] + steps.cumsum(dim=2)                        # (E, N, H, D)


def linear_episode(T, index, rng):
    actions = rng.uniform(-1, 1, size=(T + 1, 1)).astype(np.float32)
    state = np.zeros((T + 1, 2), np.float32)
    state[0] = rng.normal(size=2)
    for t in range(T):
        state[t + 1] = state[t] + actions[t]
    return data.Episode(steps={"observation/state": state, "action": actions, "is_last": np.arange(T + 1) == T},
                        index=index)


def test_drift_of_a_perfect_model_is_zero_and_a_biased_one_grows_linearly():
    rng = np.random.default_rng(0)
    w = ev.windows([linear_episode(12, i, rng) for i in range(4)], horizon=5)
    perfect = ev.rollout_windows(Drifting([0.0]), w)
    assert perfect.shape == (1, len(w), 5, 2)
    torch.testing.assert_close(ev.drift(perfect, w.future), torch.zeros(5, 2), atol=1e-5, rtol=0)
    curve = ev.drift(ev.rollout_windows(Drifting([0.1]), w), w.future)
    torch.testing.assert_close(curve, 0.1 * torch.arange(1.0, 6.0)[:, None].expand(5, 2), atol=1e-5, rtol=0)
    # per component scale
    torch.testing.assert_close(ev.drift(ev.rollout_windows(Drifting([0.1]), w), w.future, torch.tensor([0.1, 1.0])),
                               torch.stack([torch.arange(1.0, 6.0), 0.1 * torch.arange(1.0, 6.0)], dim=1),
                               atol=1e-4, rtol=0)


def test_an_ensemble_is_judged_by_its_mean_and_its_spread_is_the_disagreement():
    rng = np.random.default_rng(1)
    w = ev.windows([linear_episode(10, i, rng) for i in range(3)], horizon=4)
    predicted = ev.rollout_windows(Drifting([0.2, -0.2]), w)                        # errors cancel in the mean
    torch.testing.assert_close(ev.drift(predicted, w.future), torch.zeros(4, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(ev.window_error(predicted, w.future), torch.zeros(len(w), 4), atol=1e-5, rtol=0)
    spread = disagreement(predicted)                                                 # std of (+0.2k, -0.2k)
    torch.testing.assert_close(spread, (0.2 * 2 ** 0.5 * torch.arange(1.0, 5.0)).expand(len(w), 4), atol=1e-5, rtol=0)


def test_rollout_windows_sends_batches_and_keeps_their_order():
    rng = np.random.default_rng(2)
    w = ev.windows([linear_episode(30, i, rng) for i in range(3)], horizon=3)
    model = Drifting([0.0, 0.5])
    whole = ev.rollout_windows(model, w)
    model.calls = 0
    torch.testing.assert_close(ev.rollout_windows(model, w, batch=7), whole)
    assert model.calls == -(-len(w) // 7)


def test_window_error_is_rms_over_components_and_checks_shapes():
    actual = torch.zeros(2, 3, 2)
    predicted = torch.zeros(2, 3, 2)
    predicted[1, 2] = torch.tensor([3.0, 4.0])
    error = ev.window_error(predicted, actual)
    assert error.shape == (2, 3) and error[1, 2] == pytest.approx((12.5) ** 0.5) and error.sum() == error[1, 2]
    assert ev.window_error(predicted, actual, torch.tensor([3.0, 4.0]))[1, 2] == pytest.approx(1.0)
    # single steps (B, D), and an ensemble of them (E, B, D)
    assert ev.window_error(torch.ones(5, 2), torch.zeros(5, 2)).shape == (5,)
    torch.testing.assert_close(ev.window_error(torch.stack([torch.ones(5, 2), -torch.ones(5, 2)]), torch.zeros(5, 2)),
                               torch.zeros(5))
    with pytest.raises(ValueError, match="window_error"):
        ev.window_error(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="drift"):
        ev.drift(torch.zeros(3, 2, 2), torch.zeros(3, 4, 2))


def test_calibration_bins_by_score_and_measures_rank_agreement():
    g = torch.Generator().manual_seed(0)
    score = torch.rand(1000, generator=g)
    cal = ev.calibration(score, 3 * score ** 2)                                      # monotone: perfect ranking
    assert cal.spearman == pytest.approx(1.0)
    assert cal.count.tolist() == [100] * 10
    assert torch.all(cal.score[1:] > cal.score[:-1]) and torch.all(cal.error[1:] > cal.error[:-1])
    torch.testing.assert_close(cal.error, 3 * (cal.score ** 2), rtol=0.1, atol=0.01)  # bin means follow the curve
    noise = ev.calibration(score, torch.rand(1000, generator=g))
    assert abs(noise.spearman) < 0.1 and noise.pvalue > 0.01
    reversed_ = ev.calibration(score.view(100, 10), -score.view(100, 10), bins=5)     # any shape, flattened
    assert reversed_.spearman == pytest.approx(-1.0) and len(reversed_.score) == 5
    with pytest.raises(ValueError, match="scores vs"):
        ev.calibration(torch.rand(10), torch.rand(12), bins=2)
    with pytest.raises(ValueError, match="two predictions per bin"):
        ev.calibration(torch.rand(15), torch.rand(15), bins=10)


def test_ensemble_disagreement_ranks_errors_away_from_the_data():
    """Trained on a narrow band of actions, an ensemble's disagreement ranks its errors on wider ones."""
    g = torch.Generator().manual_seed(0)
    s, a = torch.randn(1500, 2, generator=g), (torch.rand(1500, 1, generator=g) * 2 - 1) * 0.3
    step = lambda s, a: s + 0.1 * torch.cat([torch.sin(3 * a), a ** 2], dim=1)      # noqa: E731
    torch.manual_seed(0)
    model = EnsembleDeltaModel(2, 1, members=5, hidden=(32, 32))
    model.fit_normalisers(s, a, step(s, a))
    from wmlib.models.train import fit
    fit(model, {"state": s, "action": a, "next_state": step(s, a), "weight": model.bootstrap_weights(1500)},
        {"state": s[:200], "action": a[:200], "next_state": step(s[:200], a[:200])}, epochs=30, progress=False)
    s2, a2 = torch.randn(400, 2, generator=g), torch.rand(400, 1, generator=g) * 2 - 1   # 70% outside the band
    with torch.no_grad():
        predicted = model(s2, a2)
    cal = ev.calibration(disagreement(predicted), ev.window_error(predicted, step(s2, a2)))
    assert cal.spearman > 0.5, cal


class FakeEnv:
    """An env of one number: the action is added to it; success when it reaches 3. Records resets."""
    def __init__(self):
        self.unwrapped = types.SimpleNamespace(single_action_space=types.SimpleNamespace(shape=(1,)))
        self.resets = []

    def reset(self, seed):
        self.resets.append(seed)
        self.x = torch.zeros(1, 1)

    def true_state(self):
        return self.x, {}

    def step(self, action):
        self.x = self.x + action.view(1, 1)
        done = bool(self.x[0, 0] >= 3)
        return self.x, 0.0, torch.tensor([done]), torch.tensor([False]), {"success": torch.tensor([done])}


def test_task_success_plays_one_episode_per_seed_and_resets_the_policy():
    class Policy:
        resets = 0

        def reset(self):
            self.resets += 1

        def __call__(self, state):
            return torch.tensor([1.0]) if self.resets % 2 else torch.tensor([-1.0])   # odd episodes succeed

    env, policy = FakeEnv(), Policy()
    rate, outcomes = ev.task_success(env, policy, seeds=[5, 6, 7, 8], max_steps=10)
    assert env.resets == [5, 6, 7, 8] and policy.resets == 4
    assert (rate.successes, rate.trials) == (2, 4)
    assert [o.steps for o in outcomes] == [3, 10, 3, 10]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rollout_windows_takes_a_model_on_the_gpu_and_returns_cpu_tensors():
    rng = np.random.default_rng(3)
    w = ev.windows([linear_episode(12, i, rng) for i in range(3)], horizon=4)
    torch.manual_seed(0)
    model = EnsembleDeltaModel(2, 1, members=3, hidden=(16,)).fit_normalisers(w.start, w.actions[:, 0], w.future[:, 0])
    on_cpu = ev.rollout_windows(model, w)
    on_gpu = ev.rollout_windows(model.to("cuda"), w)
    assert on_gpu.device.type == "cpu"
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
