"""The course's figures and widgets, headless: their callbacks redraw what the controls say."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from wmlib import data, viz  # noqa: E402

PARTS = {"gripper": slice(0, 2), "cube": slice(2, 4)}


def windows():
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 4))
    future = start[:, None] + np.cumsum(rng.normal(0, 0.01, (3, 5, 4)), axis=1)
    predicted = future[None] + rng.normal(0, 0.002, (4, 3, 5, 4))
    return start, future, predicted


def test_the_rollout_figure_reports_the_mean_prediction_error_in_millimetres():
    start, future, predicted = windows()
    predicted = np.repeat(future[None], 2, axis=0).copy()
    predicted[:, 0, 2, 2] += 0.03                                 # the cube 3 cm off in x at step 3, window 0
    _, errors = viz.rollout_figure(start[0], future[0], predicted[:, 0], PARTS, k=3)
    assert errors["cube"] == pytest.approx(30.0) and errors["gripper"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="between 1 and"):
        viz.rollout_figure(start[0], future[0], predicted[:, 0], PARTS, k=6)


def test_the_rollout_explorer_redraws_for_the_window_and_horizon_chosen():
    start, future, predicted = windows()
    controls = viz.rollout_explorer(start, future, predicted, PARTS, {"first": 0, "last": 2}, k=2)
    pick, steps = controls.children
    assert controls.shown["window"] == 0 and controls.shown["k"] == 2
    steps.value = 5
    assert controls.shown["k"] == 5
    pick.value = "last"
    assert controls.shown["window"] == 2 and controls.shown["k"] == 5
    _, expected = viz.rollout_figure(start[2], future[2], predicted[:, 2], PARTS, 5)
    assert controls.shown["errors_mm"] == expected


def test_the_scrubber_follows_its_controls():
    episodes = data.load("datasets/fixture/wmr_maniskill/push_cube/1.0.0", images=False)
    controls = viz.scrubber(episodes)
    pick, time = controls.children
    pick.value = 1
    assert time.max == len(episodes[1]) - 2, "the slider's range follows the episode picked"
    time.value = time.max                                          # the last step with an action draws


def test_imagined_frames_sit_under_the_real_ones_with_their_psnr():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    exact = real.transpose(0, 3, 1, 2) / 255.0
    noisy = np.clip(exact + rng.normal(0, 0.1, exact.shape), 0, 1)
    fig, scores = viz.imagined_frames(real, np.concatenate([exact[:2], noisy[2:]]), every=1)
    assert len(fig.axes) == 8 and scores[0] > 60 and 15 < scores[3] < 25, scores
    with pytest.raises(ValueError, match="must match"):
        viz.imagined_frames(real, exact[:3])


def test_keypoints_sit_where_their_maps_peak_and_the_explorer_follows_its_controls():
    frames = np.zeros((2, 64, 64, 3), dtype=np.uint8)
    maps = np.zeros((2, 3, 16, 16), dtype=np.float32)
    maps[0, 1, 0, 15] = 40.0                                    # keypoint 1 of frame 0: top right
    maps[1, 2, 15, 0] = 40.0                                    # keypoint 2 of frame 1: bottom left
    fig, points, shown = viz.keypoint_figure(frames[0], maps[0])
    assert shown == 1, "by default the most peaked keypoint is shown"
    assert points[1] == pytest.approx([63.0, 0.0], abs=0.1) and points[0] == pytest.approx([31.5, 31.5], abs=0.1)
    with pytest.raises(IndexError, match="3 keypoints"):
        viz.keypoint_figure(frames[0], maps[0], channel=3)
    controls = viz.keypoint_explorer(frames, maps, {"first": 0, "second": 1})
    pick, channel = controls.children
    pick.value = "second"
    channel.value = 2
    assert controls.shown["frame"] == 1 and controls.shown["channel"] == 2
    assert controls.shown["keypoints"][2] == pytest.approx([0.0, 63.0], abs=0.1)


def test_the_plan_explorer_steps_through_decisions_and_marks_the_cheapest():
    layout = {"extra/tcp_pose": slice(0, 3), "extra/obj_pose": slice(3, 6), "extra/goal_pos": slice(6, 9)}
    rng = np.random.default_rng(1)
    decisions = [{"state": rng.normal(0, 0.1, 9), "paths": rng.normal(0, 0.1, (8, 4, 2)), "costs": rng.random(8),
                  "chosen": rng.normal(0, 0.1, (4, 2)), "step": 2 * i} for i in range(3)]
    _, cheapest = viz.plan_figure(decisions[1], layout)
    assert cheapest == int(np.argmin(decisions[1]["costs"]))
    with pytest.raises(ValueError, match="one cost each"):
        viz.plan_figure({**decisions[0], "costs": np.ones(3)}, layout)
    controls = viz.plan_explorer(decisions, layout)
    (slider,) = controls.children
    slider.value = 2
    assert controls.shown == {"decision": 2, "cheapest": int(np.argmin(decisions[2]["costs"]))}
