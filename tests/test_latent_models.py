"""The latent world models learned from pixels: their losses, their shapes, and that they learn."""
import numpy as np
import pytest
import torch

from wmlib import data, planning
from wmlib.models import frame_predictor, jepa, latent, pixels, rssm, task_latent, value_equivalent, vmc

FIXTURE = "datasets/fixture/wmr_maniskill/push_cube/1.0.0"


@pytest.fixture(scope="module")
def windows():
    seq = data.sequences(data.load(FIXTURE, images=True), frame_size=64)
    starts = seq.starts(length=4)
    return seq, seq.window(starts[:: max(1, len(starts) // 24)][:24], length=4)


def test_the_encoder_and_decoder_keep_leading_axes_and_refuse_a_bad_frame_size():
    enc = pixels.FrameEncoder(embed_dim=32)
    frames = torch.randint(0, 256, (2, 3, 64, 64, 3), dtype=torch.uint8)
    assert enc(frames).shape == (2, 3, 32)
    dec = pixels.FrameDecoder(latent_dim=10)
    with torch.no_grad():
        drawn = dec(torch.zeros(2, 3, 10))
    assert drawn.shape == (2, 3, 3, 64, 64) and 0 <= float(drawn.min()) and float(drawn.max()) <= 1
    with pytest.raises(ValueError, match="halved"):
        pixels.FrameEncoder(image_size=60)


def test_gaussian_kl_agrees_with_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mq, mp = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sq, sp = torch.rand(5, 3, generator=g) + 0.2, torch.rand(5, 3, generator=g) + 0.2
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq),
                                                 torch.distributions.Normal(mp, sp)).sum(-1)
    assert torch.allclose(rssm.gaussian_kl(mq, sq, mp, sp), expected, atol=1e-5)


def test_kl_balancing_splits_the_gradient_and_free_nats_floor_it():
    mq, sq = torch.zeros(4, 2, requires_grad=True), torch.ones(4, 2)
    mp, sp = torch.full((4, 2), 3.0, requires_grad=True), torch.ones(4, 2)
    loss = rssm.kl_balanced(mq, sq, mp, sp, balance=0.8, free_nats=0.0)
    assert float(loss.detach()) == pytest.approx(float(rssm.gaussian_kl(mq, sq, mp, sp).mean().detach()), rel=1e-6)
    loss.backward()
    plain_q = -(mp.detach() - mq.detach()) / 4          # d KL.mean() / d mean_q, per entry (4 rows)
    assert torch.allclose(mq.grad, 0.2 * plain_q) and torch.allclose(mp.grad, -0.8 * plain_q)
    close = rssm.kl_balanced(mq, sq, mq.detach() + 0.01, sp, free_nats=1.0)
    assert float(close.detach()) == pytest.approx(1.0), "a KL under the free nats counts as the free nats"


def test_the_rssm_filters_imagines_and_learns(windows):
    seq, batch = windows
    torch.manual_seed(0)
    model = rssm.RSSM(proprio_dim=seq.proprio.shape[1], action_dim=4, deter=32, stoch=8, embed_dim=32, hidden=32)
    latent.fit_proprio(model, seq.proprio)
    carry = model.filter_step(model.initial(2), torch.zeros(2, 4), batch["frames"][:2, 0], batch["proprio"][:2, 0])
    features, rewards = model.imagine(carry, batch["action"][:2])
    assert features.shape == (2, 4, model.feature_dim) and rewards.shape == (2, 4)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        first = float(model.loss(**batch))
    for _ in range(40):
        loss = model.loss(**batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        last = float(model.loss(**batch))
    assert last < 0.7 * first, f"the loss fell from {first:.1f} to {last:.1f} only"
    assert set(model.last_parts) == {"reconstruction", "reward", "kl"}


FAMILIES = {
    "rssm": lambda p, **kw: rssm.RSSM(p, 4, deter=32, stoch=8, embed_dim=32, hidden=32, **kw),
    "jepa": lambda p, **kw: jepa.JEPA(p, 4, latent_dim=16, embed_dim=32, hidden=32, **kw),
    "task_latent": lambda p, **kw: task_latent.TaskLatent(p, 4, latent_dim=16, embed_dim=32, hidden=32, **kw),
    "value_equivalent": lambda p, **kw: value_equivalent.ValueEquivalent(p, 4, latent_dim=16, embed_dim=32, hidden=32,
                                                                         **kw),
    "frame_predictor": lambda p, **kw: frame_predictor.FramePredictor(p, 4, embed_dim=32, hidden=32, **kw),
    "vmc": lambda p, **kw: vmc.VMC(p, 4, code=8, deter=32, embed_dim=32, hidden=32, **kw),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_keeps_the_latent_contract_learns_and_plans(windows, family):
    seq, batch = windows
    torch.manual_seed(0)
    model = FAMILIES[family](seq.proprio.shape[1])
    latent.fit_proprio(model, seq.proprio)
    carry = model.filter_step(model.initial(3), torch.zeros(3, 4), batch["frames"][:3, 0], batch["proprio"][:3, 0])
    feature = model.feature(carry)
    assert feature.shape == (3, model.feature_dim)
    assert torch.equal(model.feature(model.carry_of(feature)), feature), "carry_of undoes feature"
    with torch.no_grad():
        features, rewards = model.imagine(carry, batch["action"][:3])
        first = float(model.loss(**batch))
    assert features.shape == (3, 4, model.feature_dim) and rewards.shape == (3, 4)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(30):
        loss = model.loss(**batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if hasattr(model, "update_target"):
            model.update_target()
    with torch.no_grad():
        last = float(model.loss(**batch))
    assert last < first, f"{family}: the loss went from {first:.3f} to {last:.3f} on the batch it trained on"
    planner_model = latent.LatentPlanningModel(model)
    state = planner_model.state_of(tuple(c[:1] for c in carry) if isinstance(carry, tuple) else carry[:1])
    plan = planning.mppi(planner_model, latent.latent_cost(model), state, horizon=3, num_samples=16,
                         low=-torch.ones(4), high=torch.ones(4), generator=torch.Generator().manual_seed(0))
    assert plan.shape == (3, 4) and torch.isfinite(plan).all()


def test_n_step_return_stops_at_a_terminal_step_and_bootstraps_otherwise():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    continues = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    value = torch.tensor([10.0, 10.0])
    out = latent.n_step_return(rewards, continues, value, discount=0.5)
    assert torch.allclose(out, torch.tensor([1 + 0.5 + 0.25 + 0.125 * 10, 1 + 0.5]))


def test_the_collapse_guard_charges_a_collapsed_batch_and_not_a_spread_one():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(512, 8, generator=g) * 2
    assert float(jepa.collapse_guard(spread)) < 0.05
    collapsed = torch.ones(512, 8) + 1e-3 * torch.randn(512, 8, generator=g)
    assert float(jepa.collapse_guard(collapsed)) > 0.9
    copies = torch.randn(512, 1, generator=g).repeat(1, 8) * 2
    assert float(jepa.collapse_guard(copies)) > float(jepa.collapse_guard(spread)) + 1, "repeated dimensions cost"


def test_the_controller_found_inside_the_model_beats_its_start():
    torch.manual_seed(0)
    model = vmc.VMC(3, 4, code=4, deter=8, embed_dim=8, hidden=8)
    carry = (torch.randn(16, 8), torch.randn(16, 4))
    controller, best = vmc.train_controller(model, carry, horizon=5, generations=8, population=16, elites=4)
    assert best[-1] >= best[0] and controller(torch.zeros(2, model.feature_dim)).shape == (2, 4)


def test_the_linear_probe_reads_what_is_linearly_there_and_nothing_else():
    from wmlib.eval import linear_probe

    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = torch.stack([x[:, 0] * 2 + x[:, 1], torch.randn(400, generator=g)], dim=1)   # one linear, one noise
    r2 = linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert r2[0] > 0.99 and r2[1] < 0.1
    with pytest.raises(ValueError, match="one row each per example"):
        linear_probe(x[:300], y[:200], x[300:], y[300:])


def test_the_experiment_trains_probes_and_measures_drift_for_every_family():
    from wmlib import latent_experiment as lx

    pix = lx.pixel_data(path=FIXTURE, length=4)
    assert not (pix.split["train"] & pix.split["test"]).any(), "whole episodes are held out"
    for family in lx.FAMILIES:
        model = lx.build(family, pix, seed=0, embed_dim=16, hidden=16)
        history = lx.train(model, pix, epochs=1, batch_size=16, progress=False)
        assert history.epochs == 1 and np.isfinite(history.val_loss[0])
        features = lx.filtered_features(model, pix.seq)
        assert features.shape == (len(pix.seq), model.feature_dim) and torch.isfinite(features).all()
        r2 = lx.probe(model, pix, features)
        assert set(r2) == {"cube", "goal"} and all(np.isfinite(v) for v in r2.values())
        measured = lx.drift(model, pix, horizon=3, features=features)
        assert len(measured["latent"]) == 3 and all(v >= 0 for v in measured["latent"])
        assert ("psnr_db" in measured) == (family in ("rssm", "vmc", "frame_predictor")), family


def test_filtering_episodes_side_by_side_equals_filtering_each_alone():
    from wmlib import latent_experiment as lx

    pix = lx.pixel_data(path=FIXTURE, length=4)
    model = lx.build("rssm", pix, seed=0, embed_dim=16, hidden=16, deter=16, stoch=4).eval()
    together = lx.filtered_features(model, pix.seq, batch=3)
    seq = pix.seq
    for episode in range(seq.num_episodes):
        rows = np.flatnonzero(seq.episode == episode)
        carry = model.initial(1)
        for i, row in enumerate(rows):
            previous = seq.action[row - 1:row] if i else np.zeros((1, 4), np.float32)
            carry = model.filter_step(carry, torch.as_tensor(previous), torch.as_tensor(seq.frames[row:row + 1]),
                                      torch.as_tensor(seq.proprio[row:row + 1]))
            assert torch.allclose(model.feature(carry)[0], together[row], atol=1e-5), (episode, i)


def test_the_cube_drift_is_in_millimetres_for_latent_and_state_models_alike():
    from wmlib import latent_experiment as lx

    pix = lx.pixel_data(path=FIXTURE, length=4)
    model = lx.build("jepa", pix, seed=0, embed_dim=16, hidden=16)
    drift = lx.cube_drift_mm(model, pix, horizon=3)
    assert len(drift) == 4 and all(0 <= d < 1000 for d in drift), drift

    class Still:                                         # a state model that predicts nothing moves
        def rollout(self, state, actions):
            return state.expand(1, actions.shape[0], actions.shape[1], state.shape[0])

    still = lx.state_cube_drift_mm(Still(), pix, horizon=3)
    starts = lx.test_windows(pix, 3)
    moved = np.linalg.norm(lx.cube_xy(pix, starts + 3) - lx.cube_xy(pix, starts), axis=1).mean() * 1000
    assert still[0] == 0 and still[3] == pytest.approx(moved, rel=1e-5), "a still cube errs by how far it moved"


def latent_benchmark():
    """benchmarks/latent.py as a module (it imports its neighbour ``common``)."""
    import importlib.util
    import pathlib
    import sys

    folder = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("latent_benchmark", folder / "latent.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(folder))
    return bench


def test_the_benchmark_picks_the_best_family_and_pairs_it_with_the_state_planner_on_the_same_starts():
    bench = latent_benchmark()

    def main(family, seed, wins, rho):
        return {"kind": "main", "family": family, "seed": seed, "epochs": 1, "episodes": 4, "ranking": 2,
                "per_start": wins, "spearman": [rho, rho], "params": 10, "planner": {}, "train_seconds": 1.0,
                "probe": {"cube": 0.5, "goal": 0.1}, "drift": {"latent": [0.1, 0.2]}, "cube_drift_mm": [5.0, 9.0],
                "shortcut": {"test_mm": {"cube": 20.0, "goal": 10.0}, "moved_goal_mm": {"cube": 60.0, "goal": 90.0}},
                "decision_seconds": 0.01}

    cells = [main("jepa", s, [0, 0, 0, 0], 0.9) for s in range(3)] + [main("rssm", s, [1, 0, 0, 0], 0.1)
                                                                       for s in range(3)]
    assert bench.best_family(cells) == "rssm", "success first; ranking only breaks ties"
    cells += [{"kind": "state", "seed": s, "horizon": h, "replan": r, "episodes": 4, "per_start": [1, 1, 1, 1],
               "cube_drift_mm": [0.0, 3.0], "train_seconds": 1.0, "steps": [5] * 4, "decision_seconds": 0.01}
              for s in range(3) for h, r in [bench.CHAPTER5, (8, 1)]]
    table = bench.summarise(cells)
    assert table["rssm"]["success"]["rate"] == 0.25 and table["state_planner"]["success"]["rate"] == 1.0
    row = table["state_vs_pixels"]["rows"][0]
    assert (row["horizon"], row["replan_every"]) == (8, 1) and row["rssm"]["trials"] == 12
    assert row["pixels_vs_state"]["verdict"] == "below the state planner"
    assert table["rssm"]["shortcut_cube_mm"]["moved_goal_mm"]["mean"] == 60.0


def test_the_rssm_error_sources_split_observation_reward_and_horizon():
    from wmlib import latent_experiment as lx

    pix = lx.pixel_data(path=FIXTURE, length=4)
    model = lx.build("rssm", pix, seed=0, embed_dim=16, hidden=16, deter=16, stoch=4).eval()
    sources = lx.rssm_error_sources(model, pix, horizon=3)
    assert 0 < sources["observation_psnr_db"] < 60
    assert len(sources["reward_rmse_imagined"]) == len(sources["reward_rmse_filtered"]) == 3


def test_the_shortcut_measure_misplaces_the_cube_when_a_goal_reader_sees_a_moved_goal():
    import dataclasses

    from wmlib import latent_experiment as lx
    from wmlib.models.train import episode_split

    real = lx.pixel_data(path=FIXTURE, length=4)
    layout, rng = real.layout, np.random.default_rng(0)
    goal, cube = layout["extra/goal_pos"], layout["extra/obj_pose"]
    episodes, steps = 40, 10
    state = np.zeros((episodes * steps, 35), np.float32)
    starts = rng.uniform(-0.1, 0.1, (episodes, 2))
    state[:, goal.start:goal.start + 2] = np.repeat(starts + [0.125, 0.0], steps, axis=0)    # PushCube's rule
    state[:, cube.start:cube.start + 2] = np.repeat(starts, steps, axis=0) + rng.normal(0, 0.002, (episodes * steps, 2))
    seq = dataclasses.replace(real.seq, state=state, episode=np.repeat(np.arange(episodes), steps),
                              proprio=rng.normal(size=(episodes * steps, 3)).astype(np.float32))
    pix = lx.PixelData(seq, layout, episode_split(seq.episode, seed=0), 4)
    moved = dataclasses.replace(seq, state=state.copy())
    moved.state[:, goal.start + 1] += 0.1                                   # every goal 10 cm to the side
    goal_reader = lambda s: torch.as_tensor(s.state[:, goal][:, :2])        # noqa: E731
    cube_reader = lambda s: torch.as_tensor(s.state[:, cube][:, :2])        # noqa: E731
    fooled = lx.shortcut(None, pix, moved, features=goal_reader(seq), moved_features=goal_reader(moved))
    assert fooled["test_mm"]["cube"] < 5 and fooled["moved_goal_mm"]["cube"] > 90, fooled
    honest = lx.shortcut(None, pix, moved, features=cube_reader(seq), moved_features=cube_reader(moved))
    assert honest["moved_goal_mm"]["cube"] == pytest.approx(honest["test_mm"]["cube"], abs=1.0), honest


# each family's formula that chapter 8 asks a student to write, and the keyword that swaps it in
SWAPPABLE = {"rssm": ("kl", rssm.kl_balanced), "jepa": ("guard", jepa.collapse_guard),
             "task_latent": ("consistency", task_latent.consistency_loss),
             "value_equivalent": ("td_target", latent.n_step_return)}


@pytest.mark.parametrize("family", sorted(SWAPPABLE))
def test_a_formula_given_to_a_family_is_the_one_its_loss_uses(windows, family):
    seq, batch = windows
    keyword, library = SWAPPABLE[family]
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return library(*args, **kwargs)

    def build(**swap):
        torch.manual_seed(0)
        model = FAMILIES[family](seq.proprio.shape[1], **swap)
        latent.fit_proprio(model, seq.proprio)
        torch.manual_seed(1)
        return float(model.loss(**batch))

    assert build(**{keyword: spy}) == build(), f"{family}: the library's formula, passed in, changes the loss"
    assert calls, f"{family}: the {keyword} given was never called"
    assert build(**{keyword: lambda *a, **k: library(*a, **k) * 0 + 123.0}) != build(), (
        f"{family}: a different {keyword} leaves the loss unchanged")
