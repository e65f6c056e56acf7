"""hardware.recorder: lab episodes as an RLDS folder that keeps every finalised episode through kills and full disks."""
import errno
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import REPO
from hardware import recorder
from hardware.recorder import DiskFullError, EpisodeWriter, RecordingError, recover
from wmlib import data

JOINTS = ("shoulder", "elbow", "gripper")
IMAGE = (6, 8, 3)


def writer_at(root, image_shape=None, **kwargs) -> EpisodeWriter:
    return EpisodeWriter(root, joint_names=JOINTS, control_freq=30.0, robot="so101", image_shape=image_shape,
                         **{"fsync": "never", **kwargs})


def observation(e: int, t: int, image_shape=None) -> dict:
    """A recognisable observation: state (J,) = [episode, step, 0.5], frame filled with the step."""
    obs = {"state": np.array([e, t, 0.5])}
    if image_shape:
        obs["image"] = np.full(image_shape, t, np.uint8)
    return obs


def record(writer: EpisodeWriter, e: int, actions: int, image_shape=None, finish: bool = True):
    """Episode e with `actions` steps; executed = proposed clipped to [-1, 1], proposed = t - 1 on every joint."""
    writer.begin(f"task {e}", seed=100 + e, operator="ada")
    for t in range(actions):
        proposed = np.full(3, t - 1.0)
        executed = np.clip(proposed, -1, 1)
        writer.add(observation(e, t, image_shape), executed, proposed, reward=float(t),
                   intervention=["step limit: elbow"] if t >= 3 else "")
    if finish:
        return writer.end(observation(e, actions, image_shape), success=e % 2 == 0, terminated=True,
                          end="success" if e % 2 == 0 else "terminated")


# ---------------------------------------------------------------- the format


@pytest.mark.parametrize("image_shape", [None, IMAGE], ids=["state_only", "with_images"])
def test_round_trip_through_wmlib_load_and_plain_tfds(tmp_path, image_shape):
    with writer_at(tmp_path, image_shape, fsync="episode") as writer:
        paths = [record(writer, e, actions=4 + e, image_shape=image_shape) for e in range(2)]

    episodes = data.load(tmp_path)  # validates every episode
    assert [ep.num_actions for ep in episodes] == [4, 5]
    for e, ep in enumerate(episodes):
        steps = ep.steps
        assert np.array_equal(steps["observation/state"][:, 1], np.arange(ep.num_actions + 1))
        assert steps["observation/state"].dtype == np.float32
        assert list(steps["is_first"]) == [True] + [False] * ep.num_actions
        assert list(steps["is_last"]) == [False] * ep.num_actions + [True]
        assert list(steps["is_terminal"]) == [False] * ep.num_actions + [True]
        assert set(steps["language_instruction"]) == {f"task {e}"}
        assert np.array_equal(steps["reward"][:-1], np.arange(ep.num_actions))
        assert ep.metadata == {"robot": "so101", "control_freq": 30.0, "seed": 100 + e, "success": e == 0,
                               "source": "lab", "end": ["success", "terminated"][e],
                               "interventions": ep.num_actions - 3, "episode_id": e, "extra": '{"operator": "ada"}'}
        if image_shape:
            assert steps["observation/image"].shape == (ep.num_actions + 1, *image_shape)
            assert np.array_equal(steps["observation/image"][:, 0, 0, 0], np.arange(ep.num_actions + 1))  # lossless
        else:
            assert "observation/image" not in steps

    builder = tfds.builder_from_directory(str(tmp_path))  # no course code
    assert [str(p) for p in builder.info.splits["train"].filepaths] == [str(p) for p in paths]  # one file each
    assert builder.info.metadata["joint_names"] == list(JOINTS)
    read = [(int(ep["episode_metadata"]["episode_id"]), [step["observation"]["state"].numpy() for step in ep["steps"]])
            for ep in builder.as_dataset(split="train")]
    assert [episode_id for episode_id, _ in read] == [0, 1]
    assert [len(states) for _, states in read] == [5, 6]
    assert np.array_equal(read[1][1][-1], [1, 5, 0.5])


def test_executed_and_proposed_actions_are_both_kept(tmp_path):
    with writer_at(tmp_path) as writer:
        record(writer, 0, actions=5)
    steps = data.load(tmp_path)[0].steps
    proposed = np.repeat(np.arange(5.0) - 1, 3).reshape(5, 3)
    assert np.array_equal(steps["action_proposed"][:-1], proposed)
    assert np.array_equal(steps["action"][:-1], np.clip(proposed, -1, 1))  # the clamped ones differ
    assert not np.array_equal(steps["action"][:-1], steps["action_proposed"][:-1])
    assert list(steps["intervention"][:-1]) == ["", "", "", "step limit: elbow", "step limit: elbow"]


def test_writer_appends_to_its_folder_and_refuses_another_robot_shape(tmp_path):
    with writer_at(tmp_path) as writer:
        record(writer, 0, actions=2)
    with writer_at(tmp_path) as writer:
        assert writer.begin("again", seed=1) == 1
        writer.add(observation(1, 0), np.zeros(3), np.zeros(3))
        writer.end(observation(1, 1), success=False, terminated=False, end="timeout")
    assert [ep.metadata["episode_id"] for ep in data.load(tmp_path)] == [0, 1]
    with pytest.raises(RecordingError, match="holds episodes of joints"):
        EpisodeWriter(tmp_path, joint_names=("a", "b"), control_freq=30, robot="so101")
    with pytest.raises(RecordingError, match="holds episodes of joints"):
        writer_at(tmp_path, IMAGE)


def test_one_writer_per_folder(tmp_path):
    with writer_at(tmp_path):
        with pytest.raises(RecordingError, match="another EpisodeWriter"):
            writer_at(tmp_path)
        with pytest.raises(RecordingError, match="another EpisodeWriter"):
            recover(tmp_path)


# ---------------------------------------------------------------- refused input, named


BAD_STEPS = {
    "nan_executed": (dict(action_executed=[0.0, np.nan, 0.0]), "action_executed", "non-finite value nan for 'elbow'"),
    "nan_proposed": (dict(action_proposed=[np.inf, 0.0, 0.0]), "action_proposed", "non-finite"),
    "short_action": (dict(action_executed=[0.0, 0.0]), "action_executed", r"shape \(3,\).*got \(2,\)"),
    "text_action": (dict(action_proposed=["a", "b", "c"]), "action_proposed", "must be numbers"),
    "wide_state": (dict(observation={"state": np.zeros(4)}), "observation/state", r"got \(4,\)"),
    "stray_image": (dict(observation={"state": np.zeros(3), "image": np.zeros(IMAGE, np.uint8)}), "observation",
                    "keys"),
    "nan_reward": (dict(reward=float("nan")), "reward", "finite number"),
}


@pytest.mark.parametrize("name", sorted(BAD_STEPS))
def test_a_bad_step_is_refused_naming_episode_step_and_field(tmp_path, name):
    change, field, problem = BAD_STEPS[name]
    with writer_at(tmp_path) as writer:
        record(writer, 0, actions=1)
        writer.begin("push", seed=1)
        writer.add(observation(1, 0), np.zeros(3), np.zeros(3))
        writer.add(observation(1, 1), np.zeros(3), np.zeros(3))
        step = dict(observation=observation(1, 2), action_executed=np.zeros(3), action_proposed=np.zeros(3))
        with pytest.raises(RecordingError, match=problem) as caught:
            writer.add(**{**step, **change})
        assert (caught.value.episode, caught.value.step, caught.value.field) == (1, 2, field)
        assert "episode 1, step 2" in str(caught.value)
        assert writer.add(**step) == 2  # nothing of the bad step was recorded
        writer.end(observation(1, 3), success=True, terminated=True, end="success")
    assert data.load(tmp_path)[1].num_actions == 3


def test_a_bad_image_is_refused(tmp_path):
    with writer_at(tmp_path, IMAGE) as writer:
        writer.begin("push", seed=0)
        with pytest.raises(RecordingError, match=r"episode 0, step 0, field 'observation/image'.*uint8"):
            writer.add({"state": np.zeros(3), "image": np.zeros(IMAGE, np.float32)}, np.zeros(3), np.zeros(3))
        with pytest.raises(RecordingError, match="keys"):
            writer.add({"state": np.zeros(3)}, np.zeros(3), np.zeros(3))
        assert writer.abandon() is None


def test_calls_out_of_order_are_refused(tmp_path):
    with writer_at(tmp_path) as writer:
        with pytest.raises(RecordingError, match=r"add\(\) with no open episode"):
            writer.add(observation(0, 0), np.zeros(3), np.zeros(3))
        writer.begin("push", seed=0)
        with pytest.raises(RecordingError, match="episode 0.*open"):
            writer.begin("push", seed=1)
        with pytest.raises(RecordingError, match="end must be one of"):
            writer.end(observation(0, 0), success=True, terminated=True, end="done")
        with pytest.raises(RecordingError, match="abandon's end must be one of"):
            writer.abandon("success")
        writer.abandon()


def test_an_episode_without_an_action_is_not_kept(tmp_path):
    """Chosen: not kept, since wmlib.data.validate refuses it and one such file would make the folder unreadable."""
    with writer_at(tmp_path) as writer:
        record(writer, 0, actions=2)
        writer.begin("push", seed=1)
        with pytest.raises(RecordingError, match="episode 1: has no action"):
            writer.end(observation(1, 0), success=False, terminated=False, end="timeout")
        writer.begin("push", seed=2)
        writer.add(observation(2, 0), np.zeros(3), np.zeros(3))
        assert writer.abandon("operator_reset") is None  # o_0 and a_0 but no o_1: no whole action
        assert writer.begin("push", seed=3) == 1  # the id is not burnt
        writer.add(observation(3, 0), np.zeros(3), np.zeros(3))
        writer.end(observation(3, 1), success=False, terminated=False, end="timeout")
    assert [ep.metadata["seed"] for ep in data.load(tmp_path)] == [100, 3]


def test_an_exception_in_the_loop_keeps_the_episode_as_a_crash(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with writer_at(tmp_path) as writer:
            record(writer, 0, actions=2)
            record(writer, 1, actions=4, finish=False)
            1 / 0
    crashed = data.load(tmp_path)[1]
    assert (crashed.num_actions, crashed.terminated, crashed.metadata["end"]) == (3, False, "crash")
    assert crashed.steps["is_last"][-1] and not crashed.metadata["success"]
    assert not (tmp_path / recorder.JOURNAL).exists()

    writer = writer_at(tmp_path)
    record(writer, 2, actions=3, finish=False)
    with pytest.warns(UserWarning, match="episode 2 was still open"):
        writer.close()
    assert [(ep.num_actions, ep.metadata["end"]) for ep in data.load(tmp_path)][2] == (2, "crash")


# ---------------------------------------------------------------- a killed process


CHILD = """
import sys, time
import numpy as np
from hardware.recorder import EpisodeWriter
writer = EpisodeWriter(sys.argv[1], joint_names=("shoulder", "elbow", "gripper"), control_freq=30.0, robot="so101",
                       image_shape=(6, 8, 3))
for e in range(3):
    writer.begin(f"task {e}", seed=100 + e)
    for t in range(6 if e == 2 else 4):
        writer.add({"state": [e, t, 0.5], "image": np.full((6, 8, 3), t, np.uint8)}, [t, t, t], [t, t, t])
    if e < 2:
        writer.end({"state": [e, 4, 0.5], "image": np.zeros((6, 8, 3), np.uint8)}, success=True, terminated=True,
                   end="success")
print("recording", flush=True)
time.sleep(300)
"""


@pytest.fixture(scope="module")
def killed_folder(tmp_path_factory):
    """A folder whose writer was SIGKILLed in the middle of episode 2 (after 6 of its steps)."""
    root = tmp_path_factory.mktemp("killed")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line == "recording\n", child.stderr.read()[-2000:]
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.kill()
        child.wait()
    assert (root / recorder.JOURNAL).exists()
    return root


@pytest.fixture
def killed_copy(killed_folder, tmp_path):
    return shutil.copytree(killed_folder, tmp_path / "copy")


def assert_killed_episodes(root, open_actions: int):
    episodes = data.load(root)
    assert [ep.num_actions for ep in episodes] == [4, 4, open_actions]
    for ep in episodes[:2]:  # intact
        assert ep.terminated and ep.metadata["end"] == "success" and ep.metadata["success"]
        assert np.array_equal(ep.steps["observation/state"][:, 1], [0, 1, 2, 3, 4])
    crashed = episodes[2]
    assert not crashed.terminated and crashed.steps["is_last"][-1]  # truncated, not terminated
    assert (crashed.metadata["end"], crashed.metadata["success"], crashed.metadata["seed"]) == ("crash", False, 102)
    assert np.array_equal(crashed.steps["observation/state"][:, 1], np.arange(open_actions + 1))
    assert np.array_equal(crashed.steps["observation/image"][:, 0, 0, 0], np.arange(open_actions + 1))
    assert not (root / recorder.JOURNAL).exists()


def test_sigkill_mid_episode_then_recover_keeps_every_episode(killed_copy):
    assert len(data.load(killed_copy)) == 2  # readable while the journal waits
    path = recover(killed_copy)
    assert path == recorder.episode_path(killed_copy, 2)
    assert_killed_episodes(killed_copy, open_actions=5)  # 6 steps journalled: the 6th observation ends it


def test_opening_a_writer_recovers_the_killed_episode_and_continues(killed_copy):
    with writer_at(killed_copy, IMAGE) as writer:
        assert_killed_episodes(killed_copy, open_actions=5)
        assert writer.begin("next", seed=3) == 3
        writer.add(observation(3, 0, IMAGE), np.zeros(3), np.zeros(3))
        writer.end(observation(3, 1, IMAGE), success=True, terminated=True, end="success")
    assert len(data.load(killed_copy)) == 4


@pytest.mark.parametrize("tear", ["half_of_the_last_record", "a_flipped_byte_in_it", "garbage_after_it"])
def test_a_torn_journal_record_is_dropped(killed_copy, tear):
    journal = killed_copy / recorder.JOURNAL
    records = list(recorder.read_journal(journal))
    assert [kind for kind, _ in records] == [recorder.HEADER] + [recorder.STEP] * 6
    raw = journal.read_bytes()
    if tear == "half_of_the_last_record":
        last = recorder.FRAME.size + 1 + len(records[-1][1])
        journal.write_bytes(raw[:-last // 2])  # the process died while writing step 5
        kept = 4
    elif tear == "a_flipped_byte_in_it":  # whole length, wrong checksum
        journal.write_bytes(raw[:-10] + bytes([raw[-10] ^ 0xFF]) + raw[-9:])
        kept = 4
    else:
        journal.write_bytes(raw + recorder.FRAME.pack(1000, 0) + b"S half a frame")
        kept = 5
    recover(killed_copy)
    assert_killed_episodes(killed_copy, open_actions=kept)


def test_the_index_is_rebuilt_from_the_episode_files_alone(killed_copy):
    recover(killed_copy)
    (killed_copy / "dataset_info.json").unlink()
    assert recover(killed_copy) is None  # no journal left: only the index to rebuild
    assert_killed_episodes(killed_copy, open_actions=5)


def test_a_crash_between_episode_file_and_index_loses_nothing(tmp_path, monkeypatch):
    with writer_at(tmp_path) as writer:
        record(writer, 0, actions=2)
        calls = []

        def die_after_the_episode_file(*args):
            calls.append(args)
            raise KeyboardInterrupt  # as if the process stopped here

        monkeypatch.setattr(recorder, "write_index", die_after_the_episode_file)
        with pytest.raises(KeyboardInterrupt):
            record(writer, 1, actions=3)
        assert calls and recorder.episode_path(tmp_path, 1).exists()
    monkeypatch.undo()
    assert len(data.load(tmp_path)) == 1  # the old index: still readable
    assert recover(tmp_path) == recorder.episode_path(tmp_path, 1)
    episodes = data.load(tmp_path)
    assert [ep.num_actions for ep in episodes] == [2, 3] and episodes[1].metadata["end"] == "terminated"


# ---------------------------------------------------------------- a full disk


class FullDiskRecordWriter:
    """Stands in for tf.io.TFRecordWriter on a disk that fills half way through the episode's file."""

    error = OSError(errno.ENOSPC, "No space left on device")

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, record):
        with open(self.path, "wb") as file:
            file.write(record[: len(record) // 2])
        raise self.error


@pytest.mark.parametrize("error", ["OSError", "tensorflow"])
def test_disk_full_while_finalising_names_the_episode_and_loses_nothing(tmp_path, monkeypatch, error):
    writer = writer_at(tmp_path, IMAGE)
    record(writer, 0, actions=3, image_shape=IMAGE)
    if error == "tensorflow":  # what TensorFlow's own writer raises on ENOSPC (seen on /dev/full)
        monkeypatch.setattr(FullDiskRecordWriter, "error",
                            recorder.tf.errors.ResourceExhaustedError(None, None, "No space left on device"))
    monkeypatch.setattr(recorder.tf.io, "TFRecordWriter", FullDiskRecordWriter)
    with pytest.raises(DiskFullError, match="disk full while finalising episode 1") as caught:
        record(writer, 1, actions=4, image_shape=IMAGE)
    assert caught.value.errno == errno.ENOSPC
    assert len(data.load(tmp_path)) == 1  # the finalised episode is intact, the folder readable
    assert (tmp_path / recorder.JOURNAL).exists()
    assert not list((tmp_path / "train").glob(".*")), "no half-written file left behind"

    monkeypatch.undo()  # space was freed: the next episode finishes the waiting one first
    assert writer.begin("push", seed=9) == 2
    writer.abandon()
    writer.close()
    episodes = data.load(tmp_path)
    assert [ep.num_actions for ep in episodes] == [3, 4]  # episode 1 complete, with its final observation
    assert episodes[1].metadata["end"] == "terminated" and episodes[1].terminated


def test_disk_full_while_journalling_names_the_step_and_the_episode_goes_on(tmp_path, monkeypatch):
    real_write = recorder.write_fully

    def full_disk(fd, data_bytes):
        real_write(fd, data_bytes[:7])  # a torn record
        raise OSError(errno.ENOSPC, "No space left on device")

    with writer_at(tmp_path) as writer:
        writer.begin("push", seed=0)
        writer.add(observation(0, 0), np.zeros(3), np.zeros(3))
        monkeypatch.setattr(recorder, "write_fully", full_disk)
        with pytest.raises(DiskFullError, match="journalling step 1 of episode 0"):
            writer.add(observation(0, 1), np.ones(3), np.ones(3))
        monkeypatch.undo()
        assert writer.add(observation(0, 1), np.ones(3), np.ones(3)) == 1  # the torn bytes were cut off
        writer.end(observation(0, 2), success=True, terminated=True, end="success")
    episode = data.load(tmp_path)[0]
    assert np.array_equal(episode.steps["observation/state"][:, 1], [0, 1, 2])
    assert np.array_equal(episode.steps["action"][:-1], [[0, 0, 0], [1, 1, 1]])
