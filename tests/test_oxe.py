"""The OXE loader: one test per convention, on look-alikes of real OXE datasets."""
import dataclasses

import numpy as np
import pytest

import oxe_fixtures
from wmlib import data
from wmlib.data import DatasetError, oxe
from conftest import REPO


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("oxe")


@pytest.fixture(scope="module")
def fractal(folder):
    return oxe.load(oxe_fixtures.fractal(folder), oxe.CONFIGS["fractal20220817_data"])


@pytest.fixture(scope="module")
def bridge(folder):
    return oxe.load(oxe_fixtures.bridge(folder), oxe.CONFIGS["bridge"])


@pytest.fixture(scope="module")
def language_table(folder):
    return oxe.load(oxe_fixtures.language_table(folder), oxe.CONFIGS["language_table"])


@pytest.fixture(scope="module")
def austin_buds(folder):
    return oxe.load(oxe_fixtures.austin_buds(folder), oxe.CONFIGS["austin_buds_dataset_converted_externally_to_rlds"])


def test_common_view_has_one_shape_for_every_dataset(fractal, bridge, language_table, austin_buds):
    for episodes in (fractal, bridge, language_table, austin_buds):
        for ep in episodes:
            assert ep.steps["action"].shape == (len(ep), 7) and ep.steps["action"].dtype == np.float32
            assert ep.steps["observation/image"].dtype == np.uint8
            assert set(np.unique(ep.steps["action"][:-1, 6])) <= {0.0, 1.0}
            assert ep.metadata["gripper_convention"] == "absolute: 1 open, 0 closed"
            assert ep.metadata["control_freq"] > 0


def test_key_names_come_from_the_config(fractal, language_table):
    assert fractal[0].steps["observation/state"].shape == (8, 7)  # base_pose_tool_reached
    assert language_table[0].steps["observation/state"].shape == (4, 2)  # effector_translation
    np.testing.assert_allclose(fractal[0].steps["action"][:, 0], 0.01 * np.arange(8), atol=1e-7)


def test_relative_gripper_becomes_absolute_by_holding_the_last_command(fractal):
    # raw: hold, hold, close, hold, hold, open, hold: before the first "close" it was open
    np.testing.assert_array_equal(fractal[0].steps["action"][:, 6], [1, 1, 0, 0, 0, 1, 1, 1])


def test_relative_gripper_with_no_command_stays_open_and_first_open_means_it_was_closed():
    g = oxe.Gripper(index=0, mode="relative")
    np.testing.assert_array_equal(oxe.absolute_gripper(np.zeros(4), g), [1, 1, 1, 1])
    np.testing.assert_array_equal(oxe.absolute_gripper(np.array([0, -1, 0, 1.0]), g), [0, 1, 1, 0])
    flipped = oxe.Gripper(index=0, mode="relative", close_sign=-1.0)  # a lab where -1 means close
    np.testing.assert_array_equal(oxe.absolute_gripper(np.array([0, -1, 0, 1.0]), flipped), [1, 0, 0, 1])


def test_inverted_polarity_in_a_minus_one_to_one_range_is_binarised(austin_buds):
    # raw +1 = closed, -1 = open; in-between values go where the gripper is heading
    np.testing.assert_array_equal(austin_buds[0].steps["action"][:, 6], [1, 1, 0, 0, 0, 0, 1, 1, 1])


def test_continuous_absolute_gripper_in_zero_one_is_binarised():
    g = oxe.Gripper(index=0, mode="absolute", open_value=1.0, closed_value=0.0)
    raw = np.array([1.0, 0.98, 0.6, 0.3, 0.02, 0.0, 0.5, 0.97, 0.4])
    np.testing.assert_array_equal(oxe.absolute_gripper(raw, g), [1, 1, 0, 0, 0, 0, 1, 1, 1])


def test_quaternion_actions_become_euler_angles(folder):
    episodes = oxe.load(oxe_fixtures.franka_quaternion(folder / "q"),
                        oxe.CONFIGS["furniture_bench_dataset_converted_externally_to_rlds"])
    rotation = episodes[0].steps["action"][:-1, 3:6]
    np.testing.assert_allclose(rotation[0], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(rotation[1], [0, 0, np.pi / 2], atol=1e-5)  # about z
    np.testing.assert_allclose(rotation[2], [np.pi / 2, 0, 0], atol=1e-5)  # about x
    np.testing.assert_array_equal(episodes[0].steps["action"][:, 6], [1, 1, 0, 0, 0])  # 1 = closed, inverted


def test_non_unit_quaternion_is_rejected_naming_the_step(folder):
    quats = [[0, 0, 0, 1], [0, 0, 0, 1], [0.5, 0.5, 0.5, 0.9], [0, 0, 0, 1], [0, 0, 0, 1]]
    path = oxe_fixtures.franka_quaternion(folder / "bad_q", quaternions=quats)
    with pytest.raises(DatasetError) as caught:
        oxe.load(path, oxe.CONFIGS["furniture_bench_dataset_converted_externally_to_rlds"])
    err = caught.value
    assert err.episode == 0 and err.step == 2 and err.field == "action" and "norm" in str(err)


def test_short_actions_are_padded_with_no_rotation_and_an_open_gripper(language_table):
    action = language_table[0].steps["action"]
    np.testing.assert_allclose(action[0], [0.03, -0.01, 0, 0, 0, 0, 1], atol=1e-7)


def test_absolute_poses_are_relabelled_as_deltas_without_wrapping_around(bridge):
    ep = bridge[0]  # 5 steps: x grows by 0.02, yaw by 0.1 per step; the recorded action (9.0) is ignored
    assert len(ep) == 5 and ep.num_actions == 4
    np.testing.assert_allclose(ep.steps["action"][:-1, 0], 0.02, atol=1e-6)
    np.testing.assert_allclose(ep.steps["action"][:-1, 5], 0.1, atol=1e-6)
    assert np.all(ep.steps["action"][-1, :6] == 0)  # no delta from the last pose back to the first
    tr = data.transitions([ep])
    assert len(tr) == 4
    np.testing.assert_allclose(tr.next_state[-1], ep.steps["observation/state"][-1])
    # yaw crossing +-pi: each step turns by +3.0 rad, not by 3.0 - 2 pi
    np.testing.assert_allclose(bridge[1].steps["action"][:-1, 5], 3.0, atol=1e-5)


def test_language_from_character_codes_and_unlabelled_episodes(language_table, austin_buds, fractal):
    assert language_table[0].language == "push the red star to the left"
    assert language_table[1].language is None and not language_table[1].metadata["labelled"]
    assert fractal[0].language == "pick coke can" and austin_buds[0].metadata["labelled"]
    tuples = data.wam_tuples(language_table)
    assert set(tuples.language) == {"push the red star to the left", None}


def test_all_zero_actions_are_marked_as_noops_and_kept(language_table, austin_buds):
    np.testing.assert_array_equal(language_table[0].steps["is_noop"][:3], [False, True, False])
    assert len(language_table[0]) == 4  # nothing dropped
    np.testing.assert_array_equal(austin_buds[0].steps["is_noop"][:3], [True, True, False])


def test_truncation_is_kept_apart_from_termination(bridge, fractal):
    assert not bridge[0].terminated and bridge[0].steps["is_last"][-1]
    assert fractal[0].terminated
    assert not data.transitions(bridge).terminal.any()
    assert data.transitions(fractal).terminal.sum() == 1


def test_statistics_skip_last_steps_and_noops_and_leave_the_gripper_alone(austin_buds):
    ep = austin_buds[0]
    ep.steps["action"][-1, :6] = 1e6  # the last step's action means nothing: it must not count
    stats = oxe.statistics([ep])
    assert stats["action"].count == len(ep) - 1 - 2  # minus the last step and the two no-ops
    np.testing.assert_allclose(stats["action"].mean[:3], [0.01, 0, -0.01], atol=1e-7)
    assert not stats["action"].normalized[6]
    z = stats["action"].normalize(ep.steps["action"][:-1])
    np.testing.assert_array_equal(z[:, 6], ep.steps["action"][:-1, 6])  # gripper untouched
    assert np.all(np.isfinite(z)) and np.all(z[:, :6] == 0)  # zero spreads give 0, not inf
    back = stats["action"].unnormalize(z)
    np.testing.assert_allclose(back[2:, :6], ep.steps["action"][2:-1, :6], atol=1e-7)


def test_normalisation_round_trip_and_bounds():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(3, 2, 5000), rng.uniform(-5, 5, 5000), rng.integers(0, 2, 5000)].astype(np.float32)
    stats = oxe.stats_of(x, np.array([True, True, False]))
    z = stats.normalize(x)
    np.testing.assert_allclose(z[:, :2].mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(z[:, :2].std(0), 1, atol=1e-3)
    np.testing.assert_allclose(stats.unnormalize(z), x, atol=1e-4)
    b = stats.normalize(x, "bounds")
    assert b[:, :2].min() == -1 and b[:, :2].max() == 1
    assert abs(np.mean(b[:, 0] == 1) - 0.01) < 0.005  # the top 1% is clipped
    np.testing.assert_array_equal(b[:, 2], x[:, 2])


def test_missing_key_named_in_the_config_is_reported(folder):
    path = oxe_fixtures.language_table(folder / "lt2")
    config = dataclasses.replace(oxe.CONFIGS["language_table"], image_key="observation/image")
    with pytest.raises(DatasetError) as caught:
        oxe.load(path, config)
    assert caught.value.field == "observation/image" and caught.value.episode == 0


def test_the_course_dataset_reads_through_the_same_loader():
    path = REPO / "datasets" / "fixture" / "wmr_maniskill" / "push_cube" / "1.0.0"
    common = oxe.load(path, oxe.CONFIGS["wmr_maniskill"])
    raw = data.load(path)
    for c, r in zip(common, raw):
        np.testing.assert_array_equal(c.steps["action"][:-1, :3], r.steps["action"][:-1, :3])
        raw_gripper = r.steps["action"][:-1, 3]  # +1 open, -1 closed; random episodes have values in between
        decisive = np.abs(raw_gripper) >= 0.9
        assert decisive.any()
        np.testing.assert_array_equal(c.steps["action"][:-1, 6][decisive],
                                      (raw_gripper[decisive] > 0).astype(np.float32))


@pytest.mark.parametrize("make", [oxe_fixtures.fractal, oxe_fixtures.language_table])
def test_record_reader_and_tfds_reader_agree(make, tmp_path):
    path = make(tmp_path)
    fast = data.load(path, validate=False, reader="records")
    slow = data.load(path, validate=False, reader="tfds")
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.steps.keys() == b.steps.keys()
        for key in a.steps:
            np.testing.assert_array_equal(a.steps[key], b.steps[key], err_msg=key)


# ---------------------------------------------------------------- conventions as config (kuka, bytes, cameras, ...)

FRANKA = oxe.OxeConfig(  # a lab's Franka: agent camera in RGB, wrist camera saved by OpenCV (BGR)
    name="franka_two_cameras", image_key="observation/image", state_keys=("observation/state",),
    action_keys=("action",), cameras={"wrist": oxe.Camera("observation/wrist_image", "BGR")},
    gripper=oxe.Gripper(index=6, mode="absolute", open_value=-1.0, closed_value=1.0), robot="franka")


def test_compressed_state_is_decoded_as_the_config_says(folder):
    episodes = oxe.load(oxe_fixtures.kuka(folder / "kuka"), oxe.CONFIGS["kuka"])
    assert len(episodes) == 3 and episodes.rejected == []
    state = episodes[2].steps["observation/state"]
    assert state.shape == (4, 8) and state.dtype == np.float32   # pose (7) + gripper_closed (1)
    np.testing.assert_allclose(state[:, 0], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_array_equal(state[:, 1], 2.0)
    np.testing.assert_array_equal(state[:, 7], [0, 0, 1, 1])
    np.testing.assert_array_equal(episodes[0].steps["action"][:, 6], [1, 0, 0, 0])   # relative "close" at step 1


def test_undecodable_bytes_name_dataset_episode_step_and_field(folder):
    path = oxe_fixtures.kuka(folder / "kuka_bad", corrupt=(1, 2))
    with pytest.raises(DatasetError) as caught:
        oxe.load(path, oxe.CONFIGS["kuka"])
    err = caught.value
    assert (err.dataset, err.episode, err.step) == ("kuka", 1, 2)
    assert err.field == "observation/clip_function_input/base_pose_tool_reached" and "zlib" in str(err)


def test_skip_keeps_the_good_episodes_and_reports_every_rejected_one(folder):
    path = oxe_fixtures.kuka(folder / "kuka_skip", corrupt=(1, 2))
    with pytest.warns(UserWarning, match="1 episode\\(s\\) rejected"):
        episodes = oxe.load(path, oxe.CONFIGS["kuka"], on_error="skip")
    assert [ep.index for ep in episodes] == [0, 2]
    assert [r.episode for r in episodes.rejected] == [1] and episodes.rejected[0].error.step == 2
    report = episodes.report()
    assert "2 episodes kept, 8 steps, 6 transitions" in report and "episode 1:" in report
    with pytest.raises(ValueError, match="on_error"):
        oxe.load(path, oxe.CONFIGS["kuka"], on_error="ignore")


TEXTS = ("schiebe den grünen Würfel nach links", "把红色的星星推到左边", "")


def test_code_point_instructions_decode_any_language(folder):
    episodes = oxe.load(oxe_fixtures.language_table(folder / "lt_codes", texts=TEXTS), oxe.CONFIGS["language_table"])
    assert [ep.language for ep in episodes] == [TEXTS[0], TEXTS[1], None]


def test_utf8_byte_instructions_decode_any_language(folder):
    as_bytes = dataclasses.replace(oxe.CONFIGS["language_table"], language="utf8_bytes")
    path = oxe_fixtures.language_table(folder / "lt_utf8", texts=TEXTS, encoding="utf8_bytes")
    assert [ep.language for ep in oxe.load(path, as_bytes)] == [TEXTS[0], TEXTS[1], None]
    with pytest.raises(DatasetError, match="not a byte|not valid UTF-8"):   # code points read as bytes: named
        oxe.load(oxe_fixtures.language_table(folder / "lt_mixed", texts=TEXTS), as_bytes)


def test_invalid_utf8_and_codes_read_as_text_are_named_errors(folder):
    as_bytes = dataclasses.replace(oxe.CONFIGS["language_table"], language="utf8_bytes")
    broken = oxe_fixtures.language_table(folder / "lt_broken", texts=("ok", b"caf\xe9 au lait"))
    with pytest.raises(DatasetError, match="not valid UTF-8") as caught:
        oxe.load(broken, as_bytes)
    assert caught.value.episode == 1 and caught.value.field == "observation/instruction"
    as_text = dataclasses.replace(oxe.CONFIGS["language_table"], language="text")
    with pytest.raises(DatasetError, match="language='codes' or 'utf8_bytes'"):
        oxe.load(oxe_fixtures.language_table(folder / "lt_text"), as_text)


def test_several_cameras_each_in_rgb_whatever_order_they_were_saved_in(folder):
    episodes = oxe.load(oxe_fixtures.franka_two_cameras(folder / "two_cams"), FRANKA)
    for key in ("observation/image", "observation/wrist_image"):
        frames = episodes[0].steps[key]
        assert frames.shape == (3, *oxe_fixtures.IMG) and frames.dtype == np.uint8
        assert tuple(frames[0, 0, 0]) == oxe_fixtures.RED_RGB, f"{key} is not red in RGB"
    as_saved = oxe.load(oxe_fixtures.franka_two_cameras(folder / "two_cams_rgb"),
                        dataclasses.replace(FRANKA, cameras={"wrist": oxe.Camera("observation/wrist_image")}))
    assert tuple(as_saved[0].steps["observation/wrist_image"][0, 0, 0]) == oxe_fixtures.RED_BGR


def test_an_absurd_action_is_refused_naming_its_step_and_the_bounds_are_config(folder):
    path = oxe_fixtures.franka_two_cameras(folder / "absurd", absurd=(2, 1))
    with pytest.raises(DatasetError, match=r"action\[2\] = 1e\+06 is outside") as caught:
        oxe.load(path, FRANKA)
    assert (caught.value.episode, caught.value.step, caught.value.field) == (2, 1, "action")
    with pytest.warns(UserWarning):
        kept = oxe.load(path, FRANKA, on_error="skip")
    assert [ep.index for ep in kept] == [0, 1]
    loose = dataclasses.replace(FRANKA, action_limit=(1e7,) * 6)
    assert len(oxe.load(path, loose)) == 3
    tight = dataclasses.replace(FRANKA, action_limit=(0.005,) * 6)   # every 0.01 step is beyond it
    with pytest.raises(DatasetError, match="no usable episodes \\(3 rejected; the first: .*episode 0"):
        oxe.load(path, tight, on_error="skip")


def test_leading_noop_steps_are_dropped_when_the_config_says_so(folder):
    path = oxe_fixtures.bridge(folder / "bridge_still", still_first_step=True)
    episodes = oxe.load(path, oxe.CONFIGS["bridge"])
    kept = oxe.load(path, dataclasses.replace(oxe.CONFIGS["bridge"], drop_leading_noops=False))
    for ep, whole in zip(episodes, kept):
        assert ep.metadata["dropped_leading_noops"] == 1 and len(ep) == len(whole) - 1
        assert whole.steps["is_noop"][0] and not ep.steps["is_noop"][0]
        np.testing.assert_array_equal(ep.steps["is_first"], np.arange(len(ep)) == 0)
        np.testing.assert_array_equal(ep.steps["observation/state"], whole.steps["observation/state"][1:])


def test_the_worked_example_of_the_datasets_readme_runs(folder, capsys):
    """datasets/README.md's "bring your own dataset" example, on a look-alike of the data it describes."""
    readme = (REPO / "datasets" / "README.md").read_text()
    example = readme.split("### Bring your own dataset", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    path = oxe_fixtures.franka_two_cameras(folder / "readme", absurd=(1, 1))
    assert '"~/data/our_franka/1.0.0"' in example
    with pytest.warns(UserWarning):
        exec(example.replace('"~/data/our_franka/1.0.0"', repr(str(path))), {})
    printed = capsys.readouterr().out
    assert "2 episodes kept, 6 steps, 4 transitions" in printed
    assert "episode 1: " in printed and "step 1, field 'action'" in printed and "outside the action space" in printed


MATRIX = oxe.OxeConfig(name="franka_rotation_matrix", image_key="observation/image", state_keys=("observation/state",),
                       action_keys=("action",), rotation="matrix",
                       gripper=oxe.Gripper(index=12, mode="absolute", open_value=-1.0, closed_value=1.0))


def test_rotation_matrices_become_euler_angles_and_a_reflection_is_refused(folder):
    quarter_turn_z = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    episodes = oxe.load(oxe_fixtures.franka_matrix(folder / "rmat", [np.eye(3), quarter_turn_z, np.eye(3)]), MATRIX)
    np.testing.assert_allclose(episodes[0].steps["action"][:2, 3:6], [[0, 0, 0], [0, 0, np.pi / 2]], atol=1e-6)
    mirror = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(DatasetError, match="not a rotation") as caught:
        oxe.load(oxe_fixtures.franka_matrix(folder / "rmat_bad", [np.eye(3), mirror, np.eye(3)]), MATRIX)
    assert (caught.value.step, caught.value.field) == (1, "action")


@pytest.mark.parametrize("space", ["joint_position", "joint_velocity", "bimanual", "mobile_base"])
def test_actions_the_common_view_cannot_hold_are_refused_not_reshaped(folder, space):
    path = oxe_fixtures.austin_buds(folder / f"joints_{space}")
    joints = dataclasses.replace(oxe.CONFIGS["austin_buds_dataset_converted_externally_to_rlds"], action_space=space)
    with pytest.raises(DatasetError, match="would invent data"):
        oxe.load(path, joints)
    with pytest.raises(ValueError, match="action_space must be"):
        oxe.load(path, dataclasses.replace(joints, action_space="eef_somehow"))


def test_a_dataset_without_gripper_commands_holds_the_gripper_the_config_says(language_table, folder):
    assert set(language_table[0].steps["action"][:, 6]) == {1.0}          # default: open
    holding = dataclasses.replace(oxe.CONFIGS["language_table"], gripper_when_absent=oxe.CLOSED)
    episodes = oxe.load(oxe_fixtures.language_table(folder / "lt_closed"), holding)
    assert set(episodes[0].steps["action"][:, 6]) == {0.0}
    with pytest.raises(ValueError, match="gripper_when_absent"):
        oxe.load(oxe_fixtures.language_table(folder / "lt_half"),
                 dataclasses.replace(holding, gripper_when_absent=0.5))


# ---------------------------------------------------------------- the rest of the published standardisation


def test_a_state_made_of_chosen_numbers_of_a_wide_field(folder):
    """stanford_hydra: 7 of 27 state numbers (position, Euler angles, gripper), a wrist camera,
    and a gripper whose 1 means closed."""
    [ep] = oxe.load(oxe_fixtures.stanford_hydra(folder / "hydra"),
                    oxe.CONFIGS["stanford_hydra_dataset_converted_externally_to_rlds"])
    state = ep.steps["observation/state"]
    assert state.shape == (5, 7) and not (state >= 100).any(), "numbers outside state_indices were kept"
    np.testing.assert_allclose(state[:, 5], [0, 0.1, 0.2, 0.3, 0.4], atol=1e-6)      # yaw, from index 9
    np.testing.assert_array_equal(state[:, 6], [0, 0, 1, 1, 0])                       # gripper, from index 24
    np.testing.assert_array_equal(ep.steps["action"][:, 6], [1, 1, 0, 0, 1])          # 1 = open in the common view
    assert ep.steps["observation/wrist_image"].shape == (5, *oxe_fixtures.IMG)
    assert ep.metadata["state_encoding"] == "pos_euler" and ep.metadata["gripper_source"] == "command"


def test_axis_angle_rotations_and_the_first_of_several_future_waypoints(folder):
    """bc_z: the action is the first of ten future residuals; a quarter turn about z as axis-angle."""
    [ep] = oxe.load(oxe_fixtures.bc_z(folder / "bc_z"), oxe.CONFIGS["bc_z"])
    np.testing.assert_allclose(ep.steps["action"][:-1, :6], [[0, 0, 0.01, 0, 0, np.pi / 2]] * 3, atol=1e-6)
    np.testing.assert_array_equal(ep.steps["action"][:, 6], [1, 0, 0, 1])             # target_close 1 -> closed
    assert ep.steps["observation/state"].shape == (4, 7) and ep.language == "place the sponge in the tray"


def test_a_gripper_read_from_the_measured_state_is_labelled_as_such(folder):
    """berkeley_fanuc_manipulation logs no gripper command: the state's gripper stands in, said so."""
    [ep] = oxe.load(oxe_fixtures.berkeley_fanuc(folder / "fanuc"), oxe.CONFIGS["berkeley_fanuc_manipulation"])
    np.testing.assert_array_equal(ep.steps["action"][:, 6], [1, 1, 0, 0, 0, 1])
    assert ep.metadata["gripper_source"].startswith("measured (observation/state)")
    assert ep.steps["observation/state"].shape == (6, 7) and ep.metadata["state_encoding"] == "joint"
    elsewhere = dataclasses.replace(oxe.CONFIGS["berkeley_fanuc_manipulation"],
                                    gripper=oxe.Gripper(index=6, key="observation/gripper"))
    with pytest.raises(DatasetError, match="missing key") as caught:
        oxe.load(oxe_fixtures.berkeley_fanuc(folder / "fanuc_missing"), elsewhere)
    assert caught.value.field == "observation/gripper"


ROT6D = dataclasses.replace(MATRIX, name="franka_rotation", rotation="rot6d",
                            gripper=oxe.Gripper(index=9, mode="absolute", open_value=-1.0, closed_value=1.0))


def first_two_columns(matrix):
    return np.asarray(matrix, np.float32)[:, :2].T.reshape(6)


def test_six_number_rotations_become_euler_angles_and_skewed_ones_are_refused(folder):
    quarter_turn_z = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    six = [first_two_columns(np.eye(3)), first_two_columns(quarter_turn_z), first_two_columns(np.eye(3))]
    [ep] = oxe.load(oxe_fixtures.franka_rotation(folder / "r6", six), ROT6D)
    np.testing.assert_allclose(ep.steps["action"][:2, 3:6], [[0, 0, 0], [0, 0, np.pi / 2]], atol=1e-6)
    skewed = [six[0], np.r_[1, 0, 0, 0.7, 0.7, 0], six[0]]                # columns not at right angles
    with pytest.raises(DatasetError, match="not a rotation") as caught:
        oxe.load(oxe_fixtures.franka_rotation(folder / "r6_bad", skewed), ROT6D)
    assert (caught.value.step, caught.value.field) == (1, "action")
    with pytest.raises(DatasetError, match="too few for a rot6d rotation"):
        oxe.load(oxe_fixtures.franka_rotation(folder / "r6_short", [[1, 0, 0]] * 3), ROT6D)


def test_state_indices_and_encodings_are_checked_with_named_errors(folder):
    path = oxe_fixtures.stanford_hydra(folder / "hydra_checks")
    hydra = oxe.CONFIGS["stanford_hydra_dataset_converted_externally_to_rlds"]
    with pytest.raises(DatasetError, match=r"state_indices \[27\] are beyond the 27 numbers"):
        oxe.load(path, dataclasses.replace(hydra, state_indices=(0, 1, 27)))
    with pytest.raises(DatasetError, match="a pos_euler state needs at least 6 numbers"):
        oxe.load(path, dataclasses.replace(hydra, state_indices=(0, 1, 2)))
    # the quaternion is at 3:7 of the raw state; read as pos_quat from the Euler part, it is not unit
    with pytest.raises(DatasetError, match="not the unit quaternion") as caught:
        oxe.load(path, dataclasses.replace(hydra, state_indices=(0, 1, 2, 7, 8, 9, 24), state_encoding="pos_quat"))
    assert (caught.value.step, caught.value.field) == (0, "observation/state")
    as_quat = oxe.load(path, dataclasses.replace(hydra, state_indices=tuple(range(7)), state_encoding="pos_quat"))
    assert as_quat[0].metadata["state_encoding"] == "pos_quat"
    with pytest.raises(ValueError, match="state_encoding must be one of"):
        oxe.load(path, dataclasses.replace(hydra, state_encoding="xyz"))


def test_every_published_config_names_a_known_convention():
    for name, config in oxe.CONFIGS.items():
        assert config.name == name
        assert config.rotation in oxe.ROTATIONS and config.state_encoding in oxe.STATE_ENCODINGS
        assert config.language in oxe.LANGUAGE_ENCODINGS and config.action_space == "eef_delta"
        assert len(config.action_limit) == 6
