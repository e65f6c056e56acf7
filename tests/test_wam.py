"""Chapter 6's parts: chunk windows, the tiny WAM and its variants, the metrics, the closed loop."""
import dataclasses

import numpy as np
import pytest
import torch

from wmlib import data, eval as wm_eval, wam_experiment as wx
from wmlib.data import DatasetError
from wmlib.models import wam
from conftest import REPO

FIXTURE = REPO / "datasets" / "fixture" / "wmr_maniskill"


@pytest.fixture(scope="module")
def fixture_episodes():
    """The fixture's episodes of both tasks (one per source) and their layouts."""
    out = {}
    for name in ("push_cube", "pick_cube"):
        path = FIXTURE / name / "1.0.0"
        out[name] = (data.load(path, images=True), data.state_layout(path))
    return out


@pytest.fixture(scope="module")
def windows(fixture_episodes):
    parts = []
    for episodes, layout in fixture_episodes.values():
        demos = [e for e in episodes if e.metadata["source"] == "scripted_success"]
        clips = [e for e in episodes if e.metadata["source"] != "scripted_success"]
        parts.append(data.chunk_windows(demos, 4, layout, wx.ROBOT_KEYS, action_free=clips))
    return data.join(*parts)


# ---------------------------------------------------------------- chunk windows


def test_windows_hold_real_chunks_and_the_frame_after_them(fixture_episodes):
    episodes, layout = fixture_episodes["push_cube"]
    ep = episodes[0]
    w = data.chunk_windows([ep], 3, layout, wx.ROBOT_KEYS)
    T = ep.num_actions
    assert len(w) == T - 3 + 1, "one window per step t with t + K <= T"
    np.testing.assert_array_equal(w.actions[-1], ep.steps["action"][T - 3:T])       # never the last step's action
    assert w.future[-1] == len(ep) - 1 and (w.future - w.now == 3).all()
    np.testing.assert_array_equal(w.frames[w.now[5]], data.downsample(ep.steps["observation/image"][5:6], 64)[0])
    np.testing.assert_allclose(w.robot[w.now[5]], data.robot_vector(ep.steps["observation/state"][5], layout,
                                                                    wx.ROBOT_KEYS))
    assert w.arrival_reward[w.future[0]] == ep.steps["reward"][2]       # the reward of the action into o_t+K


def test_windows_never_cross_episodes_and_clips_have_no_actions(windows):
    same_episode = windows.episode[:, None] == windows.episode[None, :]
    assert (windows.future > windows.now).all()
    starts = {}
    for i in range(len(windows)):
        starts.setdefault((windows.task[i], windows.episode[i]), windows.now[i] - windows.step[i])
    for i in range(len(windows)):      # o_t+K lies in the same episode's stored frames as o_t
        first = starts[(windows.task[i], windows.episode[i])]
        assert windows.future[i] - first == windows.step[i] + windows.chunk
    assert same_episode.any()
    assert (~windows.labelled).any() and (windows.actions[~windows.labelled] == 0).all()
    assert set(windows.instruction) == {"push the cube into the goal region",
                                        "pick up the cube and move it to the goal"}


def test_bad_inputs_are_named(fixture_episodes):
    episodes, layout = fixture_episodes["push_cube"]
    ep = episodes[0]
    with pytest.raises(DatasetError, match=f"{ep.num_actions} actions, fewer than a chunk of {ep.num_actions + 1}") \
            as caught:
        data.chunk_windows([ep], ep.num_actions + 1, layout, wx.ROBOT_KEYS)
    assert caught.value.episode == ep.index and caught.value.field == "action"
    silent = dataclasses.replace(ep, steps={**ep.steps, "language_instruction": np.array([""] * len(ep), object)})
    with pytest.raises(DatasetError, match="no instruction for its task \\(PushCube-v1\\)"):
        data.chunk_windows([silent], 4, layout, wx.ROBOT_KEYS)
    odd = dataclasses.replace(ep, steps={**ep.steps, "observation/image": ep.steps["observation/image"][:, :100, :100]})
    with pytest.raises(DatasetError, match="frames of 100 x 100 cannot be averaged down to 64 x 64"):
        data.chunk_windows([odd], 4, layout, wx.ROBOT_KEYS)
    with pytest.raises(DatasetError, match="has no \\['extra/goal_position'\\]"):
        data.chunk_windows([ep], 4, layout, ("agent/qpos", "extra/goal_position"))


def test_downsample_averages_whole_blocks():
    frames = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    small = data.downsample(frames, 2)
    np.testing.assert_allclose(small[0, 0, 0], frames[0, :2, :2].reshape(-1, 3).mean(0), atol=0.5)


# ---------------------------------------------------------------- the model


def model_for(kind, windows, **kw):
    torch.manual_seed(0)
    return wam.TinyWAM(kind, wam.Vocabulary(sorted(set(windows.instruction))), windows.robot.shape[1],
                       windows.chunk, **kw)


def test_every_variant_has_the_same_parameters_and_learns(windows):
    counts = set()
    for kind in wam.VARIANTS:
        model = model_for(kind, windows)
        counts.add(sum(p.numel() for p in model.parameters()))
        log = wam.train(model, windows, steps=60, batch_size=16, progress=False, log_every=20)
        assert log.loss[-1] < 0.8 * log.loss[0], f"{kind}: the loss did not fall ({log.loss})"
        chunk = model.act(windows.frames[windows.now[:3]], windows.robot[windows.now[:3]], windows.instruction[:3],
                          future_frame=windows.frames[windows.future[:3]],
                          future_robot=windows.robot[windows.future[:3]])
        assert chunk.shape == (3, 4, 4) and chunk.abs().max() <= 1
    assert len(counts) == 1, "the variants must have equal parameter counts"


def test_joint_loss_masks_clips_and_weighs_the_future():
    action = torch.tensor([1.0, 3.0, 100.0])
    future = torch.tensor([2.0, 4.0, 6.0])
    labelled = torch.tensor([1.0, 1.0, 0.0])
    assert float(wam.joint_loss(action, future, labelled, 0.5)) == pytest.approx(2.0 + 0.5 * 4.0)
    assert float(wam.joint_loss(action, future, torch.zeros(3), 1.0)) == pytest.approx(4.0)


def test_action_free_windows_never_teach_the_action(windows):
    """The action head's gradient is the same with or without the clips' (fake zero) actions."""
    model = model_for("joint", windows)
    model.fit_normaliser(windows.robot)
    index = np.r_[np.flatnonzero(windows.labelled)[:4], np.flatnonzero(~windows.labelled)[:4]]
    grads = []
    for fake in (0.0, 0.9):
        batch = wam.batch_of(windows, index)
        batch["actions"] = batch["actions"].clone()
        batch["actions"][~batch["labelled"]] = fake
        model.zero_grad()
        model.loss(batch)[0].backward()
        grads.append(model.action_head[-1].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_the_model_refuses_other_frames_and_unknown_instructions(windows):
    model = model_for("policy", windows)
    with pytest.raises(ValueError, match="frames of shape \\(B, 64, 64, 3\\)"):
        model.act(np.zeros((1, 128, 128, 3), np.uint8), windows.robot[:1], windows.instruction[:1])
    with pytest.raises(ValueError, match="never trained on: \\['plates', 'stack'\\]"):
        model.act(windows.frames[:1], windows.robot[:1], np.array(["stack the plates"], object))
    with pytest.raises(ValueError, match="idm_true acts from the true future"):
        model_for("idm_true", windows).act(windows.frames[:1], windows.robot[:1], windows.instruction[:1])


# ---------------------------------------------------------------- metrics


def test_recoverability_is_a_fraction_of_what_the_true_future_gives():
    assert wx.recoverability(0.1, 0.1, 0.5) == 1.0
    assert wx.recoverability(0.5, 0.1, 0.5) == 0.0
    assert wx.recoverability(0.3, 0.1, 0.5) == pytest.approx(0.5)
    assert wx.recoverability(0.9, 0.1, 0.5) == 0.0        # worse than guessing is still nothing recovered
    with pytest.raises(ValueError, match="cannot judge"):
        wx.recoverability(0.1, 0.6, 0.5)


def test_paired_difference_and_its_noise_verdict():
    d = wm_eval.paired_difference([0.8, 0.7, 0.9], [0.5, 0.4, 0.6])
    assert d["mean"] == pytest.approx(0.3) and d["low"] == pytest.approx(0.3) and not d["within_noise"]
    noisy = wm_eval.paired_difference([0.8, 0.4, 0.6], [0.5, 0.6, 0.5])
    assert noisy["low"] < 0 < noisy["high"] and noisy["within_noise"]
    with pytest.raises(ValueError, match="at least 2 pairs"):
        wm_eval.paired_difference([0.5], [0.4])


def test_ranking_keeps_the_proposal_unless_a_candidate_looks_better(windows):
    model = model_for("joint", windows).eval()
    frames, robot, text = windows.frames[windows.now[:1]], windows.robot[windows.now[:1]], windows.instruction[:1]
    with torch.no_grad():
        proposal = model.act(frames, robot, text)
    assert wx.best_chunk(torch.tensor([1.0, 1.0, 0.5])) == 0
    chunk = wx.rank_chunks(model, frames, robot, text, candidates=8)
    assert chunk.shape == proposal.shape
    with torch.no_grad():   # the chosen chunk has the highest imagined reward among the 8
        h = model.encode(frames, robot, text)
        assert float(model.imagine(h, chunk).reward) >= float(model.imagine(h, proposal).reward) - 1e-6


# ---------------------------------------------------------------- the closed loop


@pytest.fixture(scope="module")
def env():
    from wmlib import envs

    made = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=0)
    yield made
    made.close()


class Recorder:
    """A policy that holds still and remembers what it was shown."""

    def __init__(self):
        self.texts, self.frames = [], []

    def __call__(self, frames, robot, instructions):
        assert frames.shape == (1, 64, 64, 3) and robot.shape == (1, 28)
        self.texts.append(instructions[0])
        self.frames.append(frames[0].astype(int))
        return torch.zeros(1, 4, 4)


def test_play_asks_every_execute_steps_swaps_the_instruction_and_shoves(env):
    from wmlib.wam_control import Shove, play

    policy = Recorder()
    run = play(env, policy, "push it", wx.ROBOT_KEYS, seed=3, execute=3, max_steps=12, swap=(6, "pick it"))
    assert run.steps == 12 and run.decisions == 4 and not run.success
    assert policy.texts == ["push it", "push it", "pick it", "pick it"]
    policy = Recorder()
    shove = Shove(start=2, length=3, direction=(1.0, 0.0, 0.0))
    run = play(env, policy, "push it", wx.ROBOT_KEYS, seed=3, execute=4, max_steps=8, shove=shove)
    np.testing.assert_array_equal(run.actions[2:5], [[1, 0, 0, 1]] * 3)          # the shove, as sent
    assert run.decisions == 2, "after a shove the policy looks again before acting"


def test_a_repainted_cube_is_seen_and_the_paint_is_removed_afterwards(env):
    from wmlib.wam_control import play

    seen = Recorder()
    for colour in (None, wx.REPAINT, None):
        play(env, seen, "push it", wx.ROBOT_KEYS, seed=5, max_steps=1, colour=colour)
    plain, painted, again = seen.frames
    assert np.abs(plain - painted).sum() > 0 and np.array_equal(plain, again)


# ---------------------------------------------------------------- the benchmark's table


def wam_benchmark():
    """benchmarks/wam.py as a module (it imports its neighbour ``common``)."""
    import importlib.util
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("wam_benchmark", REPO / "benchmarks" / "wam.py")
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return bench


def test_the_benchmark_table_pools_seeds_and_pairs_them_against_the_policy():
    bench = wam_benchmark()

    def cell(variant, seed, push, pick):
        return {"variant": variant, "demos": 10, "seed": seed, "offline": {"action_mse": 0.1 * (seed + 1)},
                "instruction_effect": 0.2, "PushCube-v1": {"success": push}, "PickCube-v1": {"success": pick}}

    def stress(variant, seed, shoved):
        return {"variant": variant, "demos": 10, "seed": seed, "stress": True,
                "PushCube-v1": {"shoved": shoved}, "PickCube-v1": {"shoved": [0, 0]}}

    cells = [cell("policy", 0, [1, 0, 0, 0], [0] * 4), cell("policy", 1, [1, 1, 0, 0], [0] * 4),
             cell("joint", 0, [1, 1, 1, 0], [0] * 4), cell("joint", 1, [1, 1, 1, 1], [1, 0, 0, 0]),
             stress("policy", 0, [0, 0]), stress("policy", 1, [1, 0]), stress("joint", 0, [1, 1]),
             stress("joint", 1, [1, 1])]
    table = bench.summarise(cells)
    shoved = table["joint"]["10"]["PushCube-v1"]["shoved"]          # stress cells join the same row
    assert (shoved["successes"], shoved["trials"]) == (4, 4) and shoved["minus_policy"]["mean"] == pytest.approx(0.75)
    push = table["joint"]["10"]["PushCube-v1"]["success"]
    assert (push["successes"], push["trials"]) == (7, 8) and push["per_seed"] == [0.75, 1.0]
    assert 0 < push["ci95"][0] < 7 / 8 < push["ci95"][1] <= 1
    assert push["minus_policy"]["mean"] == pytest.approx(0.5) and push["minus_policy"]["n"] == 2
    assert "minus_policy" not in table["policy"]["10"]["PushCube-v1"]["success"]
    assert table["policy"]["10"]["offline"]["action_mse"] == pytest.approx(0.15)
    assert push["verdict"].startswith("too few seeds") and push["minus_policy_by_start"]["n"] == 8


def test_a_verdict_needs_three_seeds_and_both_pairings_on_one_side():
    bench = wam_benchmark()
    # every seed gains exactly one start of 20: the seed interval is the point +0.05 (no spread), yet
    # one start in twenty is what the starts' luck alone can do, so this is no finding
    policy = [[1] * 10 + [0] * 10 for _ in range(3)]
    one_more = [[1] * 11 + [0] * 9 for _ in range(3)]
    d = bench.versus_policy(one_more, policy)
    assert not d["minus_policy"]["within_noise"] and d["minus_policy_by_start"]["within_noise"]
    assert d["verdict"] == "inside the noise"
    # a large gain on every seed is a finding; the same gain from two seeds is not yet
    much_better = [[1] * 19 + [0] for _ in range(3)]
    assert bench.versus_policy(much_better, policy)["verdict"] == "above the policy"
    assert bench.versus_policy(policy, much_better)["verdict"] == "below the policy"
    assert bench.versus_policy(much_better[:2], policy[:2])["verdict"].startswith("too few seeds")


def test_the_verdict_rule_takes_the_paired_interval_it_is_given_and_refuses_unpaired_outcomes():
    from wmlib.eval import paired_difference, paired_verdict

    policy = [[1] * 10 + [0] * 10 for _ in range(3)]
    much_better = [[1] * 19 + [0] for _ in range(3)]
    calls = []

    def counted(a, b):
        calls.append(len(a))
        return paired_difference(a, b)

    verdict = paired_verdict(much_better, policy, name="the policy", difference=counted)
    assert verdict["verdict"] == "above the policy" and sorted(calls) == [3, 60], "by seed (3) and by start (60)"
    assert paired_verdict(policy, policy)["verdict"] == "inside the noise"
    with pytest.raises(ValueError, match="same"):
        paired_verdict(much_better, [row[:10] for row in policy])
