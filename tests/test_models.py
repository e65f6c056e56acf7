"""wmlib.models and wmlib.camera: shapes, normalisation, learning on small synthetic problems,
seeded determinism, early stopping, and clear errors on bad input.

Everything here is synthetic and small (a few seconds on a 2-core CPU); bounds are stated
with margins, never exact floats of one run."""
import numpy as np
import pytest
import torch

from wmlib import camera, models
from wmlib.models import ConvEncoder, DeltaModel, Normaliser, episode_split, fit, preprocess, soft_argmax


@pytest.fixture(autouse=True)
def one_thread():
    """Small models train faster on one thread, and a shared CPU does not slow them down as much."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ Normaliser


def test_normaliser_round_trip_and_statistics():
    x = torch.randn(500, 4) * torch.tensor([0.01, 1.0, 100.0, 3.0]) + torch.tensor([5.0, -2.0, 0.0, 1.0])
    norm = Normaliser(4).fit(x)
    z = norm.normalise(x)
    assert torch.allclose(z.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std(0), torch.ones(4), atol=1e-4)
    assert torch.allclose(norm.denormalise(z), x, rtol=1e-5, atol=1e-5)
    y = torch.randn(3, 7, 4)  # any leading shape
    assert torch.allclose(norm.denormalise(norm(y)), y, atol=1e-4)


def test_normaliser_constant_feature_is_not_blown_up_and_state_is_saved():
    x = torch.cat([torch.randn(50, 1), torch.full((50, 1), 0.02)], dim=1)
    norm = Normaliser(2).fit(x)
    assert norm.std[1] == 1.0 and torch.isfinite(norm(x)).all()
    assert set(norm.state_dict()) == {"mean", "std"}  # saved with the model that owns it


def test_normaliser_refuses_bad_data():
    with pytest.raises(ValueError, match="3 features"):
        Normaliser(3).fit(torch.randn(10, 4))
    with pytest.raises(ValueError, match="NaN"):
        Normaliser(2).fit(torch.tensor([[0.0, 1.0], [float("nan"), 2.0]]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        Normaliser(2).fit(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="2 features"):
        Normaliser(3).normalise(torch.zeros(5, 2))


# ------------------------------------------------------------------ encoder


def test_preprocess_accepts_both_layouts_and_dtypes():
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 20, 24, 3), dtype=np.uint8)
    last = preprocess(frames)
    assert last.shape == (2, 3, 20, 24) and last.dtype == torch.float32
    assert 0 <= float(last.min()) and float(last.max()) <= 1
    assert torch.allclose(last[1, 2], torch.as_tensor(frames[1, :, :, 2], dtype=torch.float32) / 255)
    first = preprocess(torch.as_tensor(frames).permute(0, 3, 1, 2))
    assert torch.equal(first, last)
    assert torch.equal(preprocess(last), last)  # float in [0, 1] passes through
    small = preprocess(frames, size=8)
    assert small.shape == (2, 3, 8, 8) and 0 <= float(small.min()) and float(small.max()) <= 1
    flat = preprocess(np.full((1, 16, 16, 3), 200, np.uint8), size=4)
    assert torch.allclose(flat, torch.full_like(flat, 200 / 255), atol=1e-5)  # resizing keeps a flat colour


@pytest.mark.parametrize("bad, error, words", [
    (np.zeros((16, 16, 3), np.uint8), ValueError, "batch"),
    (np.zeros((2, 16, 16, 4), np.uint8), ValueError, "3 colour channels"),
    (np.zeros((2, 16, 16, 3), np.int64), TypeError, "uint8"),
    (np.full((2, 16, 16, 3), 255.0, np.float32), ValueError, r"\[0, 1\]"),
])
def test_preprocess_rejects_bad_frames_clearly(bad, error, words):
    with pytest.raises(error, match=words):
        preprocess(bad)


def test_soft_argmax_points_at_the_dominant_cell_with_x_along_the_width():
    features = torch.zeros(2, 3, 5, 7)
    features[0, 0, 0, 6] = 50.0   # top right
    features[0, 1, 4, 0] = 50.0   # bottom left
    features[0, 2, 2, 3] = 50.0   # centre
    points = soft_argmax(features)
    assert points.shape == (2, 3, 2)
    assert torch.allclose(points[0], torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.0, 0.0]]), atol=1e-4)
    assert torch.allclose(points[1], torch.zeros(3, 2), atol=1e-6)  # flat maps: the centre


def test_encoder_shapes_on_any_input_layout_and_size():
    torch.manual_seed(0)
    encoder = ConvEncoder(out_dim=5, image_size=32, channels=(8, 8, 8))
    frames = torch.randint(0, 256, (3, 48, 40, 3), dtype=torch.uint8)
    assert encoder.keypoints(frames).shape == (3, 8, 2)
    assert encoder(frames).shape == (3, 5)
    assert encoder.estimate(frames, batch_size=2).shape == (3, 5)
    assert encoder.conv(encoder.preprocess(frames)).shape[-2:] == (8, 8)  # 32 px -> maps of 32 / 4
    with pytest.raises(ValueError, match=r"\(B, 5\)"):
        encoder.loss(frames, torch.zeros(3, 4))


def blob_frames(n: int, size: int = 24, seed: int = 0):
    """Dark frames with one bright 3x3 square; the target is the square's centre (row, col) / size."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randint(2, size - 2, (n, 2), generator=g)
    frames = torch.zeros(n, 3, size, size)
    for i, (r, c) in enumerate(centre.tolist()):
        frames[i, :, r - 1:r + 2, c - 1:c + 2] = 1.0
    return frames, centre.float() / size


def test_encoder_learns_where_a_blob_is_on_held_out_frames():
    train_x, train_y = blob_frames(512, seed=0)
    test_x, test_y = blob_frames(128, seed=1)
    torch.manual_seed(0)
    encoder = ConvEncoder(out_dim=2, image_size=24, channels=(8, 8), hidden=32)
    encoder.out_norm.fit(train_y)
    history = fit(encoder, {"images": train_x, "targets": train_y}, {"images": test_x, "targets": test_y},
                  epochs=25, batch_size=32, lr=3e-3, patience=25, progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    error = (encoder.estimate(test_x) - test_y).abs().mean() * 24  # in pixels
    spread = (test_y - test_y.mean(0)).abs().mean() * 24            # guessing the mean
    assert error < 1.0, f"mean error {error:.2f} px on a 24 px frame"
    assert error < 0.3 * spread


# ------------------------------------------------------------------ dynamics


def linear_system(n: int, seed: int):
    """s' = s + 0.1 * A s + B a, with a little noise: a delta model should find it."""
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -0.5]])
    B = torch.tensor([[0.5, 0.0], [0.0, 0.5], [0.2, -0.2]])
    s = torch.randn(n, 3, generator=g)
    a = torch.rand(n, 2, generator=g) * 2 - 1
    return s, a, s + 0.1 * s @ A.T + a @ B.T + 0.001 * torch.randn(n, 3, generator=g)


def train_dynamics(seed=0, epochs=30, patience=30, data_seed=0):
    s, a, s2 = linear_system(800, data_seed)
    vs, va, vs2 = linear_system(200, data_seed + 100)
    torch.manual_seed(seed)
    model = DeltaModel(3, 2, hidden=(32, 32)).fit_normalisers(s, a, s2)
    history = fit(model, {"state": s, "action": a, "next_state": s2},
                  {"state": vs, "action": va, "next_state": vs2},
                  epochs=epochs, batch_size=64, lr=3e-3, patience=patience, seed=seed, progress=False)
    return model, history


def test_delta_model_shapes_and_loss_falls_to_a_held_out_bound():
    model, history = train_dynamics()
    s, a, s2 = linear_system(300, 7)
    assert model(s, a).shape == (300, 3) and model.predict_change(s, a).shape == (300, 3)
    assert history.train_loss[-1] < 0.1 * history.train_loss[0]
    with torch.no_grad():
        error = (model(s, a) - s2).pow(2).mean().sqrt()
        baseline = (s - s2).pow(2).mean().sqrt()  # "nothing changes"
    assert error < 0.1 * baseline, f"held-out RMSE {error:.4f} vs {baseline:.4f} for predicting no change"


def test_delta_model_rejects_bad_input_clearly():
    model = DeltaModel(3, 2)
    with pytest.raises(ValueError, match=r"state must have shape \(B, 3\)"):
        model(torch.zeros(4, 5), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"action must have shape \(B, 2\)"):
        model(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ValueError, match="same batch size"):
        model(torch.zeros(4, 3), torch.zeros(5, 2))
    with pytest.raises(TypeError, match="floating point"):
        model(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, 2))


# ------------------------------------------------------------------ training loop


def test_same_seed_same_weights_other_seed_other_weights():
    first, h1 = train_dynamics(seed=3, epochs=4)
    again, h2 = train_dynamics(seed=3, epochs=4)
    other, _ = train_dynamics(seed=4, epochs=4)
    for (name, p), q, r in zip(first.state_dict().items(), again.state_dict().values(), other.state_dict().values()):
        assert torch.equal(p, q), name
    assert h1.train_loss == h2.train_loss
    assert any(not torch.equal(p, r) for p, r in zip(first.parameters(), other.parameters()))


def test_early_stopping_stops_and_keeps_the_best_weights():
    s, a, s2 = linear_system(200, 0)
    noise = torch.Generator().manual_seed(1)
    val = {"state": torch.randn(200, 3, generator=noise), "action": torch.rand(200, 2, generator=noise),
           "next_state": torch.randn(200, 3, generator=noise) * 5}  # unrelated: held-out loss cannot keep improving
    torch.manual_seed(0)
    model = DeltaModel(3, 2, hidden=(32, 32)).fit_normalisers(s, a, s2)
    history = fit(model, {"state": s, "action": a, "next_state": s2}, val, epochs=200, patience=3, lr=1e-2,
                  progress=False)
    assert history.stopped_early and history.epochs < 200
    assert history.epochs - 1 - history.best_epoch == 3
    assert history.best_val_loss == min(history.val_loss)
    kept = models.train.mean_loss(model, models.train.default_loss, val, 256)
    assert kept == pytest.approx(history.best_val_loss, rel=1e-4)  # the best epoch's weights, not the last


def test_fit_keeps_the_last_weights_when_asked_and_calls_after_step_once_per_step():
    s, a, s2 = linear_system(200, 0)
    noise = torch.Generator().manual_seed(1)
    val = {"state": torch.randn(200, 3, generator=noise), "action": torch.rand(200, 2, generator=noise),
           "next_state": torch.randn(200, 3, generator=noise) * 5}
    torch.manual_seed(0)
    model = DeltaModel(3, 2, hidden=(32, 32)).fit_normalisers(s, a, s2)
    steps = []
    history = fit(model, {"state": s, "action": a, "next_state": s2}, val, epochs=12, patience=12, lr=1e-2,
                  batch_size=50, progress=False, keep_best=False, after_step=lambda m: steps.append(m))
    assert len(steps) == 12 * 4 and steps[0] is model
    kept = models.train.mean_loss(model, models.train.default_loss, val, 256)
    assert kept == pytest.approx(history.val_loss[-1], rel=1e-4), "the last epoch's weights"
    assert history.best_epoch != history.epochs - 1, "the test needs a last epoch that is not the best"


def test_fit_rejects_ragged_data():
    model = DeltaModel(3, 2)
    with pytest.raises(ValueError, match="same number of rows"):
        fit(model, {"state": torch.zeros(10, 3), "action": torch.zeros(9, 2), "next_state": torch.zeros(10, 3)},
            {"state": torch.zeros(2, 3), "action": torch.zeros(2, 2), "next_state": torch.zeros(2, 3)},
            epochs=1, progress=False)


def test_episode_split_keeps_episodes_whole_and_is_seeded():
    episode = np.repeat(np.arange(50), np.arange(50) % 7 + 2)
    split = episode_split(episode, val=0.1, test=0.2, seed=0)
    assert sum(split.values()).tolist() == [1] * len(episode)  # every row in exactly one part
    parts = {name: set(episode[mask]) for name, mask in split.items()}
    assert (not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
            and not (parts["val"] & parts["test"]))
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (35, 5, 10)
    again = episode_split(episode, val=0.1, test=0.2, seed=0)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert not np.array_equal(split["test"], episode_split(episode, val=0.1, test=0.2, seed=1)["test"])
    with pytest.raises(ValueError, match="too few"):
        episode_split(np.arange(2), val=0.5, test=0.4)


def test_count_parameters():
    assert models.count_parameters(torch.nn.Linear(3, 4)) == 16


# ------------------------------------------------------------------ camera


def test_camera_projects_through_the_pinhole():
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    E = np.hstack([np.eye(3), [[0.0], [0.0], [2.0]]])  # camera 2 m behind the origin, looking along +z
    uv, depth = camera.project(np.array([[0.0, 0, 0], [0.2, -0.1, 0], [0.2, -0.1, 2.0], [0, 0, -3.0]]), K, E)
    assert np.allclose(depth, [2.0, 2.0, 4.0, -1.0])
    assert np.allclose(uv[:3], [[32, 24], [42, 19], [37, 21.5]])  # twice as far: half the offset
    assert np.isnan(uv[3]).all()  # behind the camera: no image
    assert np.allclose(camera.camera_centre(E), [0, 0, -2])
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        camera.project(np.zeros(3), K, E)
