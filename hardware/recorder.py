"""The episode writer of the robot lab: every finalised episode survives a crash, a kill or a full disk.

    with EpisodeWriter(root, joint_names=names, control_freq=30.0, robot="so101") as writer:
        writer.begin("put the cube in the bowl", seed=0)
        obs = {"state": reading.position}                      # (J,) rad; plus "image" (H, W, 3) uint8
        for t in range(horizon):
            proposed = policy(obs)                             # (J,) what the policy asks for
            target, reasons = safety.filter(proposed, reading) # (J,) what the motors get, and why it changed
            writer.add(obs, target, proposed, reward=0.0, intervention=reasons)
            reading = robot.step(target); obs = {"state": reading.position}
        writer.end(obs, success=True, terminated=True, end="success")

The folder is a tfds RLDS dataset: ``tfds.builder_from_directory(root)`` reads it without any
course code, and ``wmlib.data.load(root)`` reads and validates it. One record file per episode:

    root/dataset_info.json, features.json, metadata.json   the index, rewritten atomically after each episode
    root/train/episode.tfrecord-00000, -00001, ...         one finalised episode each (never rewritten)
    root/open_episode.journal                              the episode being recorded, one record per step
    root/.writer.lock                                      held by the one process writing into the folder

tfds finds the episode files through the split's ``filepath_template`` ("{SPLIT}/episode.{FILEFORMAT}-
{SHARD_INDEX}") and its shard lengths (all 1) in dataset_info.json, so adding an episode renames nothing.

Durability. While an episode is open each step is appended to the journal with one ``os.write`` (a
killed process loses at most the record being written; ``fsync="step"`` also survives power loss).
``end`` appends the final observation to the journal, then turns the journal into the episode's
file (written under a temporary name, then ``os.replace``d), rewrites the index the same way and
only then deletes the journal. A crash at any point leaves either the journal or a finished file,
and ``recover`` (also run by ``EpisodeWriter`` on opening such a folder) finishes the work: a journal
without its end becomes an episode truncated at its last whole step (end="crash"), a torn last
record is dropped, and the index is rebuilt from the episode files alone. A full disk (ENOSPC)
raises ``DiskFullError`` naming the episode; the finalised episodes and the journal stay intact.

Episode ids are the episode's position in the folder (0, 1, 2, ...) and name its file. An episode
without a single action (no ``add``, or only one before a crash) is not kept: the course's readers
refuse it (``wmlib.data.validate``), so ``end`` raises and ``abandon``/``recover`` drop it.
"""
from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import pathlib
import re
import shutil
import struct
import warnings
import zlib
from typing import Iterator, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import dataset_info as tfds_info
from tensorflow_datasets.core import naming, splits

from hardware.atomic import fsync_folder, replace_atomically
from wmlib.data.conventions import STEP_CONVENTION
from wmlib.data.episodes import DatasetError

NAME, VERSION, SPLIT = "robot_lab", "1.0.0", "train"
EPISODE_TEMPLATE = "{SPLIT}/episode.{FILEFORMAT}-{SHARD_INDEX}"
EPISODE_FILE = re.compile(r"episode\.tfrecord-(\d{5})")
MAX_EPISODES = 99_999  # tfds writes a sixth digit from 100000 shards on, which would rename every file
JOURNAL, LOCK, STAGING = "open_episode.journal", ".writer.lock", ".index-staging"
INDEX_FILES = ("features.json", "metadata.json", "dataset_info.json")  # dataset_info.json last: it points at the rest
END_REASONS = ("success", "terminated", "timeout", "operator_reset", "operator_stop", "safety_stop", "crash")
EPISODE_METADATA = ("robot", "control_freq", "seed", "success", "source", "end", "interventions", "episode_id", "extra")
FSYNC_MODES = ("never", "episode", "step")
PNG_LEVEL = 1  # zlib level of the stored frames: on camera frames ~10x faster than tfds' default (6), ~15% larger

# Journal records: length (u32) and CRC-32 (u32) of the body, then the body: one kind byte and its payload.
FRAME = struct.Struct("<II")
HEADER, STEP, END = b"H", b"S", b"E"


class RecordingError(DatasetError):
    """A step, an episode or a call the writer refuses, naming the folder, episode, step and field."""


class DiskFullError(OSError):
    """The disk filled (ENOSPC) while an episode was journalled or finalised; nothing finalised is lost."""

    def __init__(self, episode: int, what: str, journal: pathlib.Path):
        self.episode, self.journal = episode, journal
        super().__init__(errno.ENOSPC, f"disk full while {what} episode {episode}: the finalised episodes are "
                         f"intact and this one is kept in {journal}; free some space, then call "
                         "hardware.recorder.recover(root) (or begin the next episode) to finalise it")


# --- the journal: an append-only file of checksummed records -----------------------------------------------------

def write_fully(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is down (a full disk raises OSError ENOSPC here)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Journal:
    """The open episode's steps, one framed record each, each handed to the OS as soon as it is added.

    A failed append (a full disk) is cut back off the file, so the journal stays a clean sequence of
    whole records and the episode can go on once there is space, or be abandoned.
    """

    def __init__(self, path: pathlib.Path, fsync: bool):
        self.path, self.fsync = path, fsync
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.size = 0

    def append(self, kind: bytes, payload: bytes) -> None:
        body = kind + payload
        try:
            write_fully(self.fd, FRAME.pack(len(body), zlib.crc32(body)) + body)
            if self.fsync:
                os.fsync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass  # a torn tail is dropped by read_journal anyway
            raise
        self.size += FRAME.size + len(body)

    def close(self) -> None:
        os.close(self.fd)


def read_journal(path: pathlib.Path) -> Iterator[tuple[bytes, bytes]]:
    """(kind, payload) of each whole record; stops at the first torn or corrupt one (the process died there)."""
    with open(path, "rb") as file:
        while len(frame := file.read(FRAME.size)) == FRAME.size:
            length, crc = FRAME.unpack(frame)
            body = file.read(length)
            if len(body) < max(length, 1) or zlib.crc32(body) != crc:
                return
            yield body[:1], body[1:]


def pack(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Named arrays -> bytes (an uncompressed .npz: fast enough for a camera frame every step)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def unpack(payload: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


# --- the dataset's description and index ---------------------------------------------------------------------------

def episode_features(num_joints: int, image_shape: tuple[int, int, int] | None = None) -> tfds.features.FeaturesDict:
    """The RLDS schema of a lab episode with J = num_joints joints (state, actions: (J,) float32)."""
    f = tfds.features
    joints = f.Tensor(shape=(num_joints,), dtype=np.float32)
    observation = {"state": joints}
    if image_shape is not None:
        observation["image"] = f.Image(shape=tuple(image_shape), encoding_format="png")  # lossless
    scalar = lambda dtype: f.Scalar(dtype=dtype)  # noqa: E731
    return f.FeaturesDict({
        "steps": f.Dataset({
            "observation": f.FeaturesDict(observation),
            "action": joints,
            "action_proposed": joints,
            "intervention": f.Text(),
            "reward": scalar(np.float32),
            "discount": scalar(np.float32),
            "is_first": scalar(np.bool_),
            "is_last": scalar(np.bool_),
            "is_terminal": scalar(np.bool_),
            "language_instruction": f.Text(),
        }),
        "episode_metadata": f.FeaturesDict({
            "robot": f.Text(),
            "control_freq": scalar(np.float32),
            "seed": scalar(np.int64),
            "success": scalar(np.bool_),
            "source": f.Text(),
            "end": f.Text(),
            "interventions": scalar(np.int32),
            "episode_id": scalar(np.int64),
            "extra": f.Text(),  # begin()'s other metadata, as JSON
        }),
    })


def dataset_metadata(joint_names: Sequence[str], image_shape) -> dict:
    """metadata.json: what RLDS itself does not record (names, units, conventions)."""
    return {
        "joint_names": list(joint_names),
        "action_names": list(joint_names),
        "image_shape": list(image_shape) if image_shape is not None else None,
        "state_units": "rad: measured joint positions (the gripper too: the angle of its moving jaw)",
        "action_units": "rad: joint-position targets; action = executed (after the safety layer), "
                        "action_proposed = what the policy asked for, intervention = the safety layer's reasons",
        "step_convention": STEP_CONVENTION,
        "end_reasons": list(END_REASONS),
    }


def episode_path(root: pathlib.Path, episode: int) -> pathlib.Path:
    return root / SPLIT / f"episode.tfrecord-{episode:05d}"


def episode_files(root: pathlib.Path) -> list[pathlib.Path]:
    """The finalised episode files, in order; they must be numbered 0..N-1 (as the index lists them)."""
    found = sorted((int(m[1]), p) for p in (root / SPLIT).glob("episode.tfrecord-*")
                   if (m := EPISODE_FILE.fullmatch(p.name)))
    numbers = [n for n, _ in found]
    if numbers != list(range(len(found))):
        missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
        raise RecordingError(f"episode files {missing} are missing: the others cannot be indexed", dataset=str(root))
    return [p for _, p in found]


def write_index(root: pathlib.Path, features, metadata: dict, fsync: bool) -> int:
    """Rewrite dataset_info.json (and features.json, metadata.json) from the episode files on disk.

    tfds writes the files into a staging folder; each then replaces its old copy atomically.
    Returns the number of episodes.
    """
    files = episode_files(root)
    template = naming.ShardedFileTemplate(data_dir=root, template=EPISODE_TEMPLATE, dataset_name=NAME, split=SPLIT,
                                          filetype_suffix="tfrecord")
    split = splits.SplitInfo(name=SPLIT, shard_lengths=[1] * len(files), num_bytes=sum(p.stat().st_size for p in files),
                             filename_template=template)
    identity = tfds_info.DatasetIdentity(name=NAME, version=tfds.core.Version(VERSION), data_dir=str(root),
                                         module_name=__name__)
    info = tfds.core.DatasetInfo(builder=identity, features=features, disable_shuffling=True,
                                 description="Robot lab episodes, one record file each, in recording order.",
                                 metadata=tfds.core.MetadataDict(metadata), split_dict=splits.SplitDict([split]))
    info.set_file_format("tfrecord")
    staging = root / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    info.write_to_directory(staging)
    for name in INDEX_FILES:
        replace_atomically(staging / name, root / name, fsync)
    staging.rmdir()
    return len(files)


def write_episode_file(path: pathlib.Path, record: bytes, fsync: bool) -> None:
    """One serialized episode -> a one-record TFRecord file at ``path``, via a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(exist_ok=True)
    try:
        try:
            with tf.io.TFRecordWriter(str(temporary)) as writer:
                writer.write(record)
        except tf.errors.OpError as err:  # TensorFlow reports a full disk as RESOURCE_EXHAUSTED
            full = isinstance(err, tf.errors.ResourceExhaustedError)
            raise OSError(errno.ENOSPC if full else errno.EIO, f"cannot write {temporary}: {err.message}") from None
        replace_atomically(temporary, path, fsync)
    finally:
        temporary.unlink(missing_ok=True)


# --- from journal to episode ---------------------------------------------------------------------------------------

def encode_frame(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 -> PNG bytes (lossless), which tfds' Image feature stores as they are."""
    return tf.io.encode_png(image, compression=PNG_LEVEL).numpy()


def rlds_step(record: dict, t: int, last: bool, terminated: bool, instruction: str) -> dict:
    """One journal record (o_t and, except for a final observation, a_t) -> one RLDS step."""
    state = record["observation/state"]
    no_action = np.zeros_like(state)  # the last step's action means nothing
    observation = {"state": state}
    if "observation/image" in record:
        observation["image"] = encode_frame(record["observation/image"])
    return {
        "observation": observation,
        "action": record.get("action", no_action),
        "action_proposed": record.get("action_proposed", no_action),
        "intervention": str(record.get("intervention", "")),
        "reward": float(record.get("reward", 0.0)),
        "discount": 0.0 if last and terminated else 1.0,
        "is_first": t == 0,
        "is_last": last,
        "is_terminal": last and terminated,
        "language_instruction": instruction,
    }


def journal_episode(journal: pathlib.Path, header: dict, ending: dict | None, reasons: list[str]) -> dict | None:
    """The journal as one tfds example {"steps": RLDS steps, "episode_metadata": {...}}; None without an action.

    With its end record's final observation the T journalled steps are followed by o_T; without one
    (``abandon``, or the process died) the last journalled observation is o_T, so T is one less.
    """
    final_observation = ending is not None and "observation/state" in ending
    actions = len(reasons) if final_observation else len(reasons) - 1
    if actions < 1:
        return None
    terminated = bool(ending["terminated"]) if ending is not None else False

    def steps():  # read again one step at a time: frames are encoded as they come, never all held raw
        t = 0
        for kind, payload in read_journal(journal):
            if kind == STEP and t <= actions:
                yield rlds_step(unpack(payload), t, t == actions, terminated, header["instruction"])
                t += 1
        if final_observation:
            yield rlds_step(ending, t, True, terminated, header["instruction"])

    return {"steps": steps(), "episode_metadata": {
        "robot": header["robot"], "control_freq": header["control_freq"], "seed": header["seed"],
        "success": bool(ending["success"]) if ending is not None else False, "source": "lab",
        "end": str(ending["end"]) if ending is not None else "crash",
        "interventions": sum(map(bool, reasons[:actions])), "episode_id": header["episode_id"],
        "extra": json.dumps(header["metadata"])}}


def finalise_journal(root: pathlib.Path, fsync: bool) -> pathlib.Path | None:
    """The journal -> the episode's file, then a new index, then the journal is deleted.

    The episode ends as the journal's end record says (``end``, ``abandon``); without one (the process
    died) it is truncated at its last whole step, end="crash". Returns the episode's file, or None
    when the journal held no whole action (then the journal is dropped).
    """
    journal = root / JOURNAL
    header, ending, reasons = None, None, []
    for kind, payload in read_journal(journal):  # a first pass for what the metadata needs
        if kind == HEADER:
            header = json.loads(payload)
        elif kind == STEP:
            reasons.append(str(unpack(payload)["intervention"]))
        elif kind == END:
            ending = unpack(payload)
            break
    features, metadata = read_schema(root)
    episode = header["episode_id"] if header else None  # no header: the process died creating the journal
    path = episode_path(root, episode) if header else None
    try:
        # an existing file: the episode was written, and only its index or the journal's removal was missing
        if header and not path.exists() and (example := journal_episode(journal, header, ending, reasons)):
            write_episode_file(path, features.serialize_example(example), fsync)
        write_index(root, features, metadata, fsync)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise DiskFullError(episode, "finalising", journal) from err
        raise
    journal.unlink()
    if fsync:
        fsync_folder(root)
    return path if path is not None and path.exists() else None


def read_schema(root: pathlib.Path):
    """(features, metadata dict) of a recorder folder, from its features.json and metadata.json."""
    if not (root / "features.json").exists():
        raise RecordingError("no features.json: not a folder written by hardware.recorder", dataset=str(root))
    features = tfds.features.FeatureConnector.from_config(str(root))
    metadata_file = root / "metadata.json"
    return features, (json.loads(metadata_file.read_text()) if metadata_file.exists() else {})


def lock_folder(root: pathlib.Path) -> int:
    """Take the folder's writer lock (released by the OS when the process dies, however it dies)."""
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RecordingError("another EpisodeWriter or recover() is writing into this folder", dataset=str(root)) \
            from None
    return fd


def recover_locked(root: pathlib.Path, fsync: bool) -> pathlib.Path | None:
    for leftover in (root / SPLIT).glob(".*.tmp"):  # an episode file that was being written
        leftover.unlink()
    shutil.rmtree(root / STAGING, ignore_errors=True)
    if (root / JOURNAL).exists():
        return finalise_journal(root, fsync)
    features, metadata = read_schema(root)
    write_index(root, features, metadata, fsync)
    return None


def recover(root: str | pathlib.Path, *, fsync: bool = True) -> pathlib.Path | None:
    """Finish whatever a dead writer left in ``root``: its journal becomes an episode, the index is rebuilt.

    Returns the file of the episode recovered from the journal (None when there was no journal, or
    one without a single action). Refuses while a live writer holds the folder.
    """
    root = pathlib.Path(root)
    read_schema(root)
    fd = lock_folder(root)
    try:
        return recover_locked(root, fsync)
    finally:
        os.close(fd)


# --- the writer ----------------------------------------------------------------------------------------------------

class EpisodeWriter:
    """Records episodes of one robot into an RLDS folder, one ``begin``/``add``.../``end`` at a time.

    joint_names: the J joints, in the order of every state and action vector (J,).
    image_shape: (H, W, 3) of the camera frame in each observation, or None for state only.
    fsync: "episode" (default: every finalised file is on the platter before it is put in place),
    "step" (also each journal record: a power cut loses at most one step) or "never" (tests).
    """

    def __init__(self, root: str | pathlib.Path, *, joint_names: tuple[str, ...], control_freq: float, robot: str,
                 image_shape: tuple[int, int, int] | None = None, fsync: str = "episode"):
        self.root = pathlib.Path(root)
        self.joint_names, self.control_freq, self.robot = tuple(joint_names), float(control_freq), str(robot)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"joint_names must be distinct and not empty, got {self.joint_names}")
        if not self.control_freq > 0:
            raise ValueError(f"control_freq must be positive (Hz), got {control_freq}")
        if self.image_shape is not None and (len(self.image_shape) != 3 or self.image_shape[2] != 3):
            raise ValueError(f"image_shape must be (H, W, 3), got {self.image_shape}")
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {FSYNC_MODES}, got {fsync!r}")
        self.fsync = fsync
        self.features = episode_features(len(self.joint_names), self.image_shape)
        self.metadata = dataset_metadata(self.joint_names, self.image_shape)
        self.episode_id: int | None = None  # of the open episode
        self._journal: Journal | None = None
        self._steps = 0  # steps added to the open episode
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = lock_folder(self.root)
        try:
            if (self.root / "dataset_info.json").exists():
                self._check_same_schema()
                if (self.root / JOURNAL).exists() or self._indexed() != len(episode_files(self.root)):
                    recover_locked(self.root, self._durable)
            else:
                write_index(self.root, self.features, self.metadata, self._durable)
                if (self.root / JOURNAL).exists():
                    recover_locked(self.root, self._durable)
        except BaseException:
            os.close(self._lock)
            self._lock = None
            raise

    @property
    def _durable(self) -> bool:
        return self.fsync != "never"

    def _indexed(self) -> int:
        info = json.loads((self.root / "dataset_info.json").read_text())
        return sum(int(n) for split in info.get("splits", []) for n in split.get("shardLengths", []))

    def _check_same_schema(self) -> None:
        features, metadata = read_schema(self.root)
        same = features.to_json() == self.features.to_json() and metadata.get("joint_names") == self.metadata[
            "joint_names"] and metadata.get("image_shape") == self.metadata["image_shape"]
        if not same:
            theirs = f"joints {metadata.get('joint_names')} with image {metadata.get('image_shape')}"
            ours = f"joints {list(self.joint_names)} with image {self.metadata['image_shape']}"
            raise RecordingError(f"the folder holds episodes of {theirs}; this writer records {ours}: use a new folder",
                                 dataset=str(self.root))

    def _fail(self, problem: str, step: int | None = None, field: str | None = None):
        raise RecordingError(problem, dataset=str(self.root), episode=self.episode_id, step=step, field=field)

    # --- checks of what a step brings -----------------------------------------------------------------------------

    def _joints(self, field: str, value, step: int) -> np.ndarray:
        """A (J,) vector of finite numbers, as float32."""
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            self._fail(f"must be numbers, got dtype {array.dtype}", step, field)
        if array.shape != (len(self.joint_names),):
            self._fail(f"must have shape ({len(self.joint_names)},), one value per joint {self.joint_names}, "
                       f"got {array.shape}", step, field)
        array = array.astype(np.float32)
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            self._fail(f"non-finite value {array[bad[0]]} for {self.joint_names[bad[0]]!r}", step, field)
        return array

    def _observation(self, observation: Mapping, step: int) -> dict[str, np.ndarray]:
        """{"state": (J,), "image": (H, W, 3) uint8 if the writer has images} -> journal arrays."""
        expected = {"state", "image"} if self.image_shape else {"state"}
        if not isinstance(observation, Mapping) or set(observation) != expected:
            keys = sorted(observation) if isinstance(observation, Mapping) else type(observation).__name__
            self._fail(f"must be a dict with keys {sorted(expected)}, got {keys}", step, "observation")
        arrays = {"observation/state": self._joints("observation/state", observation["state"], step)}
        if self.image_shape:
            image = np.asarray(observation["image"])
            if image.dtype != np.uint8 or image.shape != self.image_shape:
                self._fail(f"must be uint8 of shape {self.image_shape}, got {image.dtype} {image.shape}", step,
                           "observation/image")
            arrays["observation/image"] = image
        return arrays

    def _require_open(self, call: str) -> None:
        if self._lock is None:
            self._fail(f"{call}() on a closed writer")
        if self._journal is None:
            self._fail(f"{call}() with no open episode: call begin() first")

    def _append(self, kind: bytes, payload: bytes, what: str) -> None:
        """One record into the journal; ``what`` (e.g. "journalling step 7 of") names it in an error."""
        try:
            self._journal.append(kind, payload)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise DiskFullError(self.episode_id, what, self._journal.path) from err
            err.add_note(f"while {what} episode {self.episode_id} in {self.root}")
            raise

    # --- the episode ---------------------------------------------------------------------------------------------

    def begin(self, instruction: str, seed: int, **metadata) -> int:
        """Open a new episode; returns its id. ``metadata``: anything JSON can hold, stored as episode "extra"."""
        if self._lock is None:
            self._fail("begin() on a closed writer")
        if self._journal is not None:
            self._fail("begin() while this episode is open: end() or abandon() it first")
        if (self.root / JOURNAL).exists():  # an episode whose finalisation failed (disk full): finish it first
            recover_locked(self.root, self._durable)
        taken = sorted(set(metadata) & set(EPISODE_METADATA))
        if taken:
            raise RecordingError(f"metadata {taken} is set by the writer itself", dataset=str(self.root))
        try:
            extra = json.loads(json.dumps(metadata))
        except (TypeError, ValueError) as err:
            raise RecordingError(f"metadata must be JSON: {err}", dataset=str(self.root)) from None
        episode = len(episode_files(self.root))
        if episode >= MAX_EPISODES:
            raise RecordingError(f"the folder holds {episode} episodes, the most one folder can: start a new folder",
                                 dataset=str(self.root))
        header = {"episode_id": episode, "instruction": str(instruction), "seed": int(seed), "robot": self.robot,
                  "control_freq": self.control_freq, "metadata": extra}
        self._journal, self.episode_id, self._steps = Journal(self.root / JOURNAL, self.fsync == "step"), episode, 0
        try:
            self._append(HEADER, json.dumps(header).encode(), "opening")
        except OSError:
            self._leave_journal()  # an empty journal: the next begin() or recover() drops it
            raise
        return episode

    def add(self, observation: Mapping, action_executed, action_proposed, reward: float = 0.0,
            intervention: str | Sequence[str] = "") -> int:
        """Record step t: o_t, the executed a_t (J,), the proposed one (J,), its reward and the safety layer's reasons.

        intervention: "" when the safety layer left the proposal alone, else its reasons (a list is joined by "; ").
        Returns t. A bad value raises RecordingError naming the episode, the step and the field; nothing is recorded.
        """
        self._require_open("add")
        t = self._steps
        record = self._observation(observation, t)
        record["action"] = self._joints("action_executed", action_executed, t)
        record["action_proposed"] = self._joints("action_proposed", action_proposed, t)
        if not isinstance(reward, (int, float, np.number)) or not np.isfinite(reward):
            self._fail(f"must be a finite number, got {reward!r}", t, "reward")
        record["reward"] = np.float32(reward)
        record["intervention"] = np.str_(intervention if isinstance(intervention, str) else "; ".join(intervention))
        self._append(STEP, pack(record), f"journalling step {t} of")
        self._steps += 1
        return t

    def end(self, final_observation: Mapping, success: bool, terminated: bool, end: str) -> pathlib.Path:
        """Finish the episode with o_T and write it; returns its file.

        terminated: the task ended the episode (is_terminal); False is a truncation (time, operator, ...).
        end: why it ended, one of END_REASONS. An episode without any action is not kept: RecordingError.
        """
        self._require_open("end")
        if end not in END_REASONS:
            self._fail(f"end must be one of {END_REASONS}, got {end!r}", field="end")
        record = self._observation(final_observation, self._steps)
        if self._steps == 0:
            episode = self.episode_id
            self._discard()
            raise RecordingError("has no action (end() right after begin()): it is not kept, since an episode "
                                 "needs at least one action and the observation after it", dataset=str(self.root),
                                 episode=episode)
        record.update(success=np.bool_(success), terminated=np.bool_(terminated), end=np.str_(end))
        self._append(END, pack(record), "ending")
        return self._finalise()

    def abandon(self, end: str = "crash") -> pathlib.Path | None:
        """Finish the open episode early, truncated at its last recorded step (that step's o_t becomes o_T).

        For exceptions and signals. Returns its file, or None when it had no action (then nothing is kept).
        """
        self._require_open("abandon")
        if end not in END_REASONS or end in ("success", "terminated"):
            self._fail(f"abandon's end must be one of {END_REASONS[2:]}, got {end!r}", field="end")
        self._append(END, pack({"success": np.bool_(False), "terminated": np.bool_(False), "end": np.str_(end)}),
                     "abandoning")
        return self._finalise()

    def _finalise(self) -> pathlib.Path | None:
        self._journal.close()
        self._journal = None  # whatever happens next, the journal holds the episode and recover() finishes it
        try:
            return finalise_journal(self.root, self._durable)
        finally:
            self.episode_id = None

    def _discard(self) -> None:
        """Forget the open episode and its journal."""
        path = self._journal.path
        self._leave_journal()
        path.unlink()

    def _leave_journal(self) -> None:
        """Stop writing the open episode, leaving its journal on disk for recover()."""
        self._journal.close()
        self._journal, self.episode_id = None, None

    def close(self) -> None:
        """Release the folder; an episode still open is abandoned first (end="crash")."""
        if self._lock is None:
            return
        try:
            if self._journal is not None:
                warnings.warn(f"episode {self.episode_id} was still open at close(): abandoned (end='crash')")
                self.abandon("crash")
        finally:
            if self._journal is not None:  # abandon failed: the journal waits for recover()
                self._leave_journal()
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> "EpisodeWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None and self._journal is not None:
            try:
                self.abandon("crash")
            except (OSError, DatasetError) as err:  # keep the first error; the journal waits for recover()
                warnings.warn(f"could not finalise the open episode after {exc_type.__name__}: {err}")
                if self._journal is not None:
                    self._leave_journal()
        self.close()
