"""The batched ensemble: one tensor program equal to E separate models, bootstrap, rollouts."""
import pytest
import torch

from wmlib.models.ensemble import EnsembleDeltaModel, EnsembleLinear, disagreement
from wmlib.models.train import fit


def toy_data(n=2000, seed=0):
    """A 3-D point pushed by a 2-D action: s' = s + 0.1 * [a0, a1, a0 * a1]."""
    g = torch.Generator().manual_seed(seed)
    s, a = torch.randn(n, 3, generator=g), torch.rand(n, 2, generator=g) * 2 - 1
    change = 0.1 * torch.stack([a[:, 0], a[:, 1], a[:, 0] * a[:, 1]], dim=1)
    return s, a, s + change


def test_ensemble_linear_equals_a_loop_of_linear_layers():
    torch.manual_seed(0)
    layer = EnsembleLinear(4, 7, 3)
    x = torch.randn(4, 10, 7)
    looped = torch.stack([x[e] @ layer.weight[e] + layer.bias[e] for e in range(4)])
    torch.testing.assert_close(layer(x), looped)


def test_members_are_independent_models():
    """Changing one member's weights changes only that member's predictions."""
    torch.manual_seed(0)
    model = EnsembleDeltaModel(3, 2, members=3, hidden=(16,))
    model.fit_normalisers(*toy_data(100))
    s, a, _ = toy_data(8, seed=1)
    before = model(s, a)
    with torch.no_grad():
        model.net[0].weight[1] += 1.0
    after = model(s, a)
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    assert (after[1] - before[1]).abs().max() > 1e-3


def test_rollout_is_repeated_steps_and_broadcasts_the_start():
    torch.manual_seed(0)
    model = EnsembleDeltaModel(3, 2, members=4, hidden=(32, 32))
    model.fit_normalisers(*toy_data(200))
    start = torch.randn(3)
    actions = torch.rand(6, 5, 2) * 2 - 1                                   # (N, H, A)
    states = model.rollout(start, actions)
    assert states.shape == (4, 6, 5, 3)
    s = start.expand(6, 3)
    for t in range(5):                                                       # step by step, by hand
        s = model(s, actions[:, t]) if s.ndim == 2 else model(s, actions[:, t].expand(4, 6, 2))
        torch.testing.assert_close(states[:, :, t], s, rtol=1e-5, atol=1e-5)
    per_candidate = model.rollout(start.expand(6, 3), actions)
    torch.testing.assert_close(per_candidate, states)


def test_bootstrap_weights_resample_each_member_differently():
    model = EnsembleDeltaModel(3, 2, members=5)
    w = model.bootstrap_weights(5000, seed=3)
    assert w.shape == (5000, 5) and (w >= 0).all() and (w == w.round()).all()
    assert abs(float(w.mean()) - 1.0) < 0.05                                # Poisson(1)
    assert 0.3 < float((w == 0).float().mean()) < 0.44                       # about e^-1 of rows left out
    assert not torch.equal(w[:, 0], w[:, 1])
    assert torch.equal(w, model.bootstrap_weights(5000, seed=3))


def train(members=5, seed=0, n=2000):
    s, a, ns = toy_data(n)
    torch.manual_seed(seed)
    model = EnsembleDeltaModel(3, 2, members=members, hidden=(64, 64))
    model.fit_normalisers(s[:1600], a[:1600], ns[:1600])
    weight = model.bootstrap_weights(1600, seed=seed)
    history = fit(model, {"state": s[:1600], "action": a[:1600], "next_state": ns[:1600], "weight": weight},
                  {"state": s[1600:], "action": a[1600:], "next_state": ns[1600:]},
                  epochs=40, patience=5, seed=seed, progress=False)
    return model, history


def test_training_lowers_the_loss_and_is_seeded():
    model, history = train()
    assert history.val_loss[history.best_epoch] < 0.2 * history.val_loss[0]
    again, _ = train()
    for p, q in zip(model.parameters(), again.parameters()):
        torch.testing.assert_close(p, q)
    s, a, ns = toy_data(500, seed=9)
    error = (model(s, a) - ns).abs().mean()
    assert error < 0.01, f"held-out error {error:.4f} (the changes are about 0.05)"


def test_members_disagree_more_away_from_the_data():
    model, _ = train()
    s, a, _ = toy_data(500, seed=5)
    inside = disagreement(model(s, a)).mean()
    outside = disagreement(model(s, a * 6)).mean()                        # actions never seen (|a| up to 6)
    assert outside > 3 * inside


def test_bad_input_names_what_is_wrong():
    model = EnsembleDeltaModel(3, 2, members=2)
    with pytest.raises(ValueError, match=r"actions must have shape \(N, H, 2\)"):
        model.rollout(torch.zeros(3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"state must have shape"):
        model(torch.zeros(5, 4), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="at least two"):
        disagreement(torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleDeltaModel(3, 2, members=0)


@pytest.mark.parametrize("hidden", [(), (8,), (16, 16, 16)])
def test_rollout_folds_the_normalisers_without_changing_the_numbers(hidden):
    """The fast rollout (normalisers folded into the first and last layers, actions' share computed up front)
    equals H plain calls of the model, also with statistics far from zero mean and unit spread."""
    g = torch.Generator().manual_seed(4)
    s = torch.randn(300, 3, generator=g) * torch.tensor([0.01, 5.0, 100.0]) + torch.tensor([2.0, -7.0, 30.0])
    a = torch.rand(300, 2, generator=g) * 4 - 1
    ns = s + torch.randn(300, 3, generator=g) * torch.tensor([0.001, 0.5, 3.0]) + 0.2
    torch.manual_seed(0)
    model = EnsembleDeltaModel(3, 2, members=3, hidden=hidden).fit_normalisers(s, a, ns)
    start = s[:5].expand(3, 5, 3) + torch.randn(3, 5, 3, generator=g) * 0.01     # one start per member and candidate
    plans = torch.rand(5, 4, 2, generator=g) * 4 - 1
    states, x = model.rollout(start, plans), start
    with torch.no_grad():
        for t in range(4):
            x = model(x, plans[:, t].expand(3, 5, 2))
            torch.testing.assert_close(states[:, :, t], x, rtol=1e-4, atol=1e-4)


def test_a_component_that_never_changes_is_predicted_not_to_change():
    s, a, ns = toy_data(500)
    s, ns = torch.cat([s, torch.full((500, 1), 0.3)], 1), torch.cat([ns, torch.full((500, 1), 0.3)], 1)
    torch.manual_seed(0)
    model = EnsembleDeltaModel(4, 2, members=2, hidden=(16,)).fit_normalisers(s, a, ns)
    rolled = model.rollout(s[:10], torch.rand(10, 6, 2) * 6 - 3)                 # far outside the data
    assert (rolled[..., 3] - 0.3).abs().max() < 1e-4
    assert model.delta_norm.std[3] < 1e-5 and model.delta_norm.std[:3].min() > 1e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rollout_runs_on_the_gpu_and_agrees_with_the_cpu():
    torch.manual_seed(0)
    model = EnsembleDeltaModel(3, 2, members=4, hidden=(32, 32)).fit_normalisers(*toy_data(200))
    start, plans = torch.randn(6, 3), torch.rand(6, 5, 2) * 2 - 1
    on_cpu = model.rollout(start, plans)
    on_gpu = model.to("cuda").rollout(start.cuda(), plans.cuda())
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-4)
