"""wmlib.data on the shipped fixture: RLDS layout, conventions, tuples, and the validator."""
import copy
import json
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
import torch

from wmlib import data
from wmlib.data.conventions import SOURCES
from wmlib.data import DatasetError, Episode
from wmlib.data.reader import spec_of
from conftest import REPO

FIXTURE = REPO / "datasets" / "fixture" / "wmr_maniskill"
TASKS = {"push_cube": 35, "pick_cube": 42}


@pytest.fixture(scope="module", params=sorted(TASKS))
def fixture_path(request):
    return FIXTURE / request.param / "1.0.0"


@pytest.fixture(scope="module")
def push_episodes():
    return data.load(FIXTURE / "push_cube" / "1.0.0")


@pytest.fixture(scope="module")
def push_spec():
    return spec_of(tfds.builder_from_directory(str(FIXTURE / "push_cube" / "1.0.0")))


# ------------------------------------------------------------------ the dataset itself


def test_fixture_is_plain_rlds_readable_without_course_code(fixture_path):
    builder = tfds.builder_from_directory(str(fixture_path))
    steps = builder.info.features["steps"].feature
    assert set(steps) >= {"observation", "action", "reward", "discount", "is_first", "is_last", "is_terminal",
                          "language_instruction"}
    assert set(steps["observation"]) == {"state", "image", "proprio"}
    assert steps["observation"]["state"].shape == (TASKS[fixture_path.parent.name],)
    assert set(builder.info.features["episode_metadata"]) >= {
        "robot", "control_mode", "control_freq", "camera_intrinsics", "camera_extrinsics", "source", "success",
        "seed", "env_id"}
    meta = builder.info.metadata
    assert meta["gripper_convention"].startswith("absolute: +1 open")
    assert max(b for _, b in meta["state_layout"].values()) == TASKS[fixture_path.parent.name]
    episode = next(iter(builder.as_dataset(split="train").take(1)))
    first = next(iter(episode["steps"].take(1)))
    assert first["observation"]["image"].shape == (128, 128, 3) and first["is_first"]


def test_fixture_has_every_source_and_honest_labels(fixture_path):
    episodes = data.load(fixture_path)
    assert {ep.metadata["source"] for ep in episodes} == set(SOURCES)
    for ep in episodes:
        assert ep.metadata["robot"] == "panda" and ep.metadata["control_mode"] == "pd_ee_delta_pos"
        assert ep.metadata["control_freq"] == 20
        assert ep.steps["observation/image"].dtype == np.uint8
        assert np.all(ep.steps["action"][-1] == 0) and ep.steps["reward"][-1] == 0  # meaningless last step
        # a terminated episode is a success in these tasks; a truncated one ran out of time at 50 actions
        assert ep.terminated == ep.metadata["success"] or ep.num_actions < 50
        if not ep.terminated:
            assert ep.num_actions == 50
        assert all(text == ep.language for text in ep.steps["language_instruction"])
        K = ep.metadata["camera_intrinsics"]
        assert K.shape == (3, 3) and K[2, 2] == 1 and K[0, 0] > 0


def test_images_can_be_skipped(fixture_path):
    episodes = data.load(fixture_path, images=False)
    assert "observation/image" not in episodes[0].steps
    assert episodes[0].steps["observation/state"].shape[1] == TASKS[fixture_path.parent.name]


# ------------------------------------------------------------------ tuples


def labelled_episode(T, index=0, terminal=True):
    """An episode whose values say where they came from: state[t] = t, action[t] = 100 + t."""
    n = T + 1
    return Episode(steps={
        "observation/state": np.arange(n, dtype=np.float32)[:, None].repeat(2, 1),
        "action": (100 + np.arange(n, dtype=np.float32))[:, None],
        "reward": np.arange(n, dtype=np.float32), "discount": np.ones(n, np.float32),
        "is_first": np.arange(n) == 0, "is_last": np.arange(n) == n - 1,
        "is_terminal": (np.arange(n) == n - 1) & terminal,
        "language_instruction": np.array([f"task {index}"] * n, dtype=object),
    }, index=index)


def test_transitions_stay_inside_episodes_and_skip_the_last_action():
    eps = [labelled_episode(3, 0, terminal=True), labelled_episode(2, 1, terminal=False)]
    tr = data.transitions(eps)
    assert len(tr) == 3 + 2
    np.testing.assert_array_equal(tr.state[:, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(tr.next_state[:, 0], [1, 2, 3, 1, 2])
    np.testing.assert_array_equal(tr.action[:, 0], [100, 101, 102, 100, 101])  # never 103 or 102 of ep 1
    np.testing.assert_array_equal(tr.terminal, [False, False, True, False, False])  # truncation is not an end
    np.testing.assert_array_equal(tr.episode, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(tr.step, [0, 1, 2, 0, 1])


def test_wam_tuples_pair_each_action_with_the_next_real_one():
    eps = [labelled_episode(3, 0), labelled_episode(1, 1), labelled_episode(2, 2)]
    w = data.wam_tuples(eps)
    assert len(w) == 2 + 0 + 1  # T - 1 each: an episode of one action has no a_t+1
    np.testing.assert_array_equal(w.action[:, 0], [100, 101, 100])
    np.testing.assert_array_equal(w.next_action[:, 0], [101, 102, 101])
    np.testing.assert_array_equal(w.next_state[:, 0], w.state[:, 0] + 1)
    assert list(w.language) == ["task 0", "task 0", "task 2"]


def test_transitions_of_the_fixture_match_rlds_windowing(fixture_path):
    episodes = data.load(fixture_path, images=False)
    ours = data.transitions(episodes)
    theirs = list(tfds.as_numpy(data.rlds_transitions(fixture_path)))
    assert len(theirs) == len(ours) == sum(ep.num_actions for ep in episodes)
    np.testing.assert_array_equal(np.stack([t["state"] for t in theirs]), ours.state)
    np.testing.assert_array_equal(np.stack([t["next_state"] for t in theirs]), ours.next_state)
    np.testing.assert_array_equal(np.stack([t["action"] for t in theirs]), ours.action)


def test_batches_cover_every_transition_once_as_torch():
    tr = data.transitions([labelled_episode(7, 0), labelled_episode(5, 1)])
    batches = list(data.iterate_batches(tr, batch_size=5, seed=1))
    assert [len(b["state"]) for b in batches] == [5, 5, 2]
    assert all(isinstance(b["state"], torch.Tensor) and b["state"].dtype == torch.float32 for b in batches)
    seen = torch.cat([b["episode"] * 100 + b["step"] for b in batches])
    assert sorted(seen.tolist()) == sorted((tr.episode * 100 + tr.step).tolist())
    again = list(data.iterate_batches(tr, batch_size=5, seed=1))
    assert all(torch.equal(a["state"], b["state"]) for a, b in zip(batches, again))
    assert len(list(data.iterate_batches(tr, batch_size=5, drop_last=True))) == 2


# ------------------------------------------------------------------ the validator


def corrupt(episode, how):
    ep = copy.deepcopy(episode)
    how(ep.steps)
    return ep


CORRUPTIONS = {
    # name: (corruption, expected step, expected field, words in the message)
    "misaligned": (lambda s: s.update(reward=s["reward"][:-2]), None, "reward", "misaligned"),
    "is_first_late": (lambda s: s["is_first"].__setitem__(4, True), 4, "is_first", "True at step 0"),
    "is_first_missing": (lambda s: s["is_first"].__setitem__(0, False), 0, "is_first", "nowhere else"),
    "is_last_early": (lambda s: s["is_last"].__setitem__(3, True), 3, "is_last", "nowhere else"),
    "is_last_missing": (lambda s: s["is_last"].__setitem__(-1, False), -1, "is_last", "must be True"),
    "terminal_early": (lambda s: s["is_terminal"].__setitem__(2, True), 2, "is_terminal", "before the last step"),
    "nan_state": (lambda s: s["observation/state"].__setitem__((5, 3), np.nan), 5, "observation/state", "nan"),
    "inf_action": (lambda s: s["action"].__setitem__((6, 1), np.inf), 6, "action", "inf"),
    "nan_reward": (lambda s: s["reward"].__setitem__(1, np.nan), 1, "reward", "non-finite"),
    "action_outside": (lambda s: s["action"].__setitem__((7, 2), 1.5), 7, "action", "outside the action space"),
    "wrong_dtype": (lambda s: s.update({"observation/state": s["observation/state"].astype(np.float64)}),
                    None, "observation/state", "dtype should be float32"),
    "wrong_shape": (lambda s: s.update({"observation/state": s["observation/state"][:, :-1]}),
                    None, "observation/state", "shape"),
    "missing_key": (lambda s: s.pop("discount"), None, "discount", "missing key"),
    "image_shape": (lambda s: s.update({"observation/image": s["observation/image"][:, :64]}),
                    None, "observation/image", "shape"),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_rejected_naming_episode_step_and_field(name, push_episodes, push_spec):
    how, step, field, words = CORRUPTIONS[name]
    good = next(ep for ep in push_episodes if ep.num_actions >= 10)
    data.validate_episode(good, push_spec)  # the original passes
    bad = corrupt(good, how)
    with pytest.raises(DatasetError) as caught:
        data.validate_dataset(push_episodes[:good.index] + [bad] + push_episodes[good.index + 1:], push_spec)
    err = caught.value
    assert err.episode == good.index and err.field == field and err.dataset == "wmr_maniskill/push_cube"
    if step is not None:
        assert err.step == (step % len(good))
    message = str(err)
    assert f"episode {good.index}" in message and words in message
    if step is not None:
        assert f"step {step % len(good)}" in message


def test_last_step_action_means_nothing_so_it_is_not_judged(push_episodes, push_spec):
    ep = corrupt(push_episodes[0], lambda s: s["action"].__setitem__(-1, [np.nan, 9, -9, 0]))
    data.validate_episode(ep, push_spec)


def test_one_step_episode_is_rejected(push_episodes, push_spec):
    ep = copy.deepcopy(push_episodes[0])
    ep.steps = {k: v[-1:] for k, v in ep.steps.items()}
    ep.steps["is_first"][:] = True
    with pytest.raises(DatasetError, match="at least one action"):
        data.validate_episode(ep, push_spec)


def test_empty_dataset_is_an_error(push_spec):
    with pytest.raises(DatasetError, match="no episodes"):
        data.validate_dataset([], push_spec)


@pytest.fixture
def copied_dataset(tmp_path):
    dest = tmp_path / "push_cube"
    shutil.copytree(FIXTURE / "push_cube" / "1.0.0", dest)
    return dest


def shard_of(folder):
    return next(folder.glob("*-train.tfrecord*"))


def test_truncated_shard_is_named(copied_dataset):
    shard = shard_of(copied_dataset)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(DatasetError) as caught:
        data.load(copied_dataset, images=False)
    assert shard.name in str(caught.value) and "episode" in str(caught.value)


def test_corrupted_shard_is_named(copied_dataset):
    shard = shard_of(copied_dataset)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # damage inside a record: its checksum fails
    shard.write_bytes(bytes(raw))
    with pytest.raises(DatasetError) as caught:
        data.load(copied_dataset, images=False)
    assert shard.name in str(caught.value)


def test_missing_description_files_are_reported(copied_dataset):
    (copied_dataset / "dataset_info.json").unlink()
    with pytest.raises(DatasetError, match="dataset_info.json missing"):
        data.load(copied_dataset)


def test_damaged_description_is_reported(copied_dataset):
    (copied_dataset / "features.json").write_text("{not json")
    with pytest.raises(DatasetError, match="description files"):
        data.load(copied_dataset)


def test_metadata_describes_the_state_slices_used_by_the_simulator(fixture_path):
    meta = json.loads((fixture_path / "metadata.json").read_text())
    layout = meta["state_layout"]
    assert layout["agent/qpos"] == [0, 9] and layout["extra/obj_pose"][1] - layout["extra/obj_pose"][0] == 7
    episodes = data.load(fixture_path, images=False)
    ep = episodes[0]
    a, b = layout["extra/tcp_pose"]
    p0, p1 = meta["proprio_layout"]["extra/tcp_pose"]
    np.testing.assert_array_equal(ep.steps["observation/state"][:, a:b], ep.steps["observation/proprio"][:, p0:p1])
