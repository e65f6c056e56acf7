"""Open X-Embodiment (OXE) and other RLDS datasets, mapped to the course's common view.

Every lab logs robot data its own way. One small ``OxeConfig`` per dataset says
where things are and which conventions the lab used; ``load`` turns the episodes
into the common view below, and nothing else in the course needs to know the lab.

The common view (an ``Episode`` of ``wmlib.data``):

- ``observation/state``: the config's state keys, concatenated, float32.
- ``observation/image``: the main camera, uint8 (H, W, 3) in RGB order, when images=True;
  ``observation/<name>_image`` for each further camera of the config.
- ``action`` (T + 1, 7) float32: ``[dx, dy, dz, droll, dpitch, dyaw, gripper]``:
  end-effector deltas in the dataset's own units (``metadata["action_units"]``),
  rotation as extrinsic x-y-z Euler angles (radians), and the gripper as an
  **absolute** command, 1 = open, 0 = closed. Missing parts are padded: no
  rotation is 0, no gripper is open (1).
- ``is_noop`` (T + 1,): the action moves nothing and leaves the gripper as it was.
- ``language_instruction``: text; an empty instruction means *unlabelled*
  (``Episode.language`` is None), never "the empty task".
- metadata: ``control_freq``, ``gripper_convention``, ``gripper_source`` (command or measured),
  ``state_encoding``, ``robot``, ``dataset``, ``labelled``, ``action_units``, ``dropped_leading_noops``.

As everywhere in the course, the last step's action means nothing (it is excluded
from transitions and statistics), and ``is_last`` without ``is_terminal`` is a
truncation. Pointing it at a dataset you downloaded (the folder holding
``dataset_info.json``, e.g. ``~/tensorflow_datasets/fractal20220817_data/0.1.0``)::

    from wmlib.data import oxe
    episodes = oxe.load("~/tensorflow_datasets/fractal20220817_data/0.1.0", oxe.CONFIGS["fractal20220817_data"])
    stats = oxe.statistics(episodes)

A dataset with a few bad episodes can still be used: ``load(..., on_error="skip")`` returns the
good ones and lists every rejected episode with its error (``episodes.rejected``,
``episodes.report()``); the default, "raise", stops at the first bad episode.
"""
from __future__ import annotations

import dataclasses
import pathlib
import warnings
import zlib

import numpy as np

from wmlib.data.episodes import DatasetError, Episode
from wmlib.data.reader import load as load_raw
from wmlib.data.validate import EpisodeSpec, validate_episode

OPEN, CLOSED = 1.0, 0.0
COMMON_GRIPPER = "absolute: 1 open, 0 closed"
QUATERNION_TOLERANCE = 1e-3
# Largest |value| of a meaningful action, per dimension of [dx, dy, dz, droll, dpitch, dyaw], in the
# dataset's units: no arm moves 10 units (metres, or a normalised full range several times over) or
# more than a full turn in one step. A value beyond it is a logging fault, and it would ruin the
# dataset's statistics, so it is refused; a config can set tighter bounds of its own.
DEFAULT_ACTION_LIMIT = (10.0, 10.0, 10.0, 2 * np.pi, 2 * np.pi, 2 * np.pi)
LANGUAGE_ENCODINGS = ("text", "codes", "utf8_bytes")
REFUSED_ACTION_SPACES = ("joint_position", "joint_velocity", "bimanual", "mobile_base")
ROTATIONS = {"euler": 3, "quaternion": 4, "axis_angle": 3, "rot6d": 6, "matrix": 9, "none": 0}  # numbers each takes
STATE_ENCODINGS = ("unknown", "pos_euler", "pos_quat", "joint")


@dataclasses.dataclass(frozen=True)
class Gripper:
    """How a dataset commands its gripper.

    mode="absolute": the command is a position; ``open_value``/``closed_value`` are the
    raw values for fully open/closed (so 1 = closed polarity and [-1, 1] ranges are
    just other numbers). Values in between are resolved to the next decisive command.
    mode="relative": the command says "close" (raw * close_sign > 0.5), "open" (< -0.5)
    or "no change"; the absolute state is held from the last decisive command.
    key: the field ``index`` counts in; None: the raw action. A dataset that logs no gripper command
    can name its measured gripper state here (it lags the command; the metadata says so).
    """
    index: int
    mode: str = "absolute"
    open_value: float = 1.0
    closed_value: float = 0.0
    close_sign: float = 1.0
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class Decoder:
    """How a stored field becomes numbers. kind="zlib_float32": each step holds the zlib-compressed
    bytes of a float32 tensor of ``shape`` (kuka stores its state this way)."""
    kind: str
    shape: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Camera:
    """A camera field and its channel order: "RGB", or "BGR" as OpenCV saves frames."""
    key: str
    channels: str = "RGB"


@dataclasses.dataclass(frozen=True)
class OxeConfig:
    """Where a dataset keeps things and which conventions it follows.

    action_keys: step fields concatenated into the raw action (e.g. "action" or
    "action/world_vector", "action/rotation_delta", ...), in order.
    position: indices of the raw action's translation (1 to 3 of x, y, z).
    action_space: what the actions command. "eef_delta": end-effector motions, which the common view
    holds; "joint_position", "joint_velocity", "bimanual" and "mobile_base" (a navigating base's
    motion) actions cannot be honestly turned into end-effector deltas of one arm, so ``load``
    refuses such a dataset (read it raw with ``wmlib.data.load``); an absolute end-effector pose is
    "eef_delta" with ``absolute_from_state``.
    rotation: how the raw action holds its rotation, at ``rotation_index``: "euler" (roll, pitch,
    yaw), "quaternion" (x, y, z, w), "axis_angle" (a rotation vector: axis times angle), "rot6d"
    (the first two columns of the rotation matrix), "matrix" (3 x 3, row-major), or "none".
    state_indices: which numbers of the concatenated state keys make the state (None: all of them),
    e.g. a 27-number robot state of which only x, y, z, roll, pitch, yaw and the gripper matter.
    state_encoding: what the state's leading numbers are: "pos_euler" (x, y, z, roll, pitch, yaw,
    ...), "pos_quat" (x, y, z, then a unit quaternion x, y, z, w, ...), "joint" (joint positions) or
    "unknown"; checked on load and kept in the metadata, so a consumer never guesses.
    absolute_from_state: the action is an absolute pose; relabel it as the change
    between consecutive states, taking x, y, z(, roll, pitch, yaw) at these state indices.
    language_key: the instruction's field; language: how it is stored, "text", "codes" (integer
    Unicode code points, zero-padded) or "utf8_bytes" (integers that are the UTF-8 bytes, zero-padded).
    gripper: how the action commands the gripper, or None when it does not; the common view then
    holds ``gripper_when_absent``: open (1) by default, closed (0) for a gripper that holds its
    object throughout (a cable, a tool).
    image_channels: channel order of the main camera; cameras: further cameras by name.
    decoders: fields stored encoded, decoded before anything else reads them.
    drop_leading_noops: remove the steps at the start whose action moves nothing (a recorder
    that logs a zero action before the first command); the metadata counts them.
    action_limit: the largest |value| of each of the six motion dimensions of a meaningful action.
    """
    name: str
    image_key: str
    state_keys: tuple[str, ...]
    action_keys: tuple[str, ...]
    action_space: str = "eef_delta"
    state_indices: tuple[int, ...] | None = None
    state_encoding: str = "unknown"
    position: tuple[int, ...] = (0, 1, 2)
    rotation: str = "euler"
    rotation_index: int = 3
    gripper: Gripper | None = None
    gripper_when_absent: float = OPEN
    absolute_from_state: tuple[int, ...] | None = None
    language_key: str | None = "language_instruction"
    language: str = "text"
    control_freq: float = 10.0
    robot: str = "unknown"
    action_units: str = "metres and radians per step"
    image_channels: str = "RGB"
    cameras: dict[str, Camera] = dataclasses.field(default_factory=dict)
    decoders: dict[str, Decoder] = dataclasses.field(default_factory=dict)
    drop_leading_noops: bool = False
    action_limit: tuple[float, ...] = DEFAULT_ACTION_LIMIT


# Published conventions of a few OXE datasets (their feature names as released).
CONFIGS = {
    "fractal20220817_data": OxeConfig(  # RT-1, Google robot: relative gripper, +1 = close
        name="fractal20220817_data", image_key="observation/image",
        state_keys=("observation/base_pose_tool_reached",), state_encoding="pos_quat",
        action_keys=("action/world_vector", "action/rotation_delta", "action/gripper_closedness_action"),
        gripper=Gripper(index=6, mode="relative", close_sign=1.0),
        language_key="observation/natural_language_instruction", control_freq=3.0, robot="google_robot"),
    "bridge": OxeConfig(  # WidowX: actions relabelled from consecutive end-effector states; the
        # first step of an episode carries an all-zero action, logged before the first command
        name="bridge", image_key="observation/image", state_keys=("observation/state",), state_encoding="pos_euler",
        action_keys=("action/world_vector", "action/rotation_delta", "action/open_gripper"),
        gripper=Gripper(index=6, mode="absolute", open_value=1.0, closed_value=0.0),
        absolute_from_state=(0, 1, 2, 3, 4, 5), drop_leading_noops=True,
        language_key="observation/natural_language_instruction", control_freq=5.0, robot="widowx"),
    "language_table": OxeConfig(  # planar pusher: 2-D actions; the instruction is 512 zero-padded
        # integers, read as Unicode code points by the published standardisation (Octo's transforms)
        name="language_table", image_key="observation/rgb",
        state_keys=("observation/effector_translation",), action_keys=("action",),
        position=(0, 1), rotation="none", gripper=None,
        language_key="observation/instruction", language="codes", control_freq=10.0, robot="xarm_pusher"),
    "kuka": OxeConfig(  # QT-Opt, KUKA iiwa: state stored as zlib-compressed float32; relative gripper
        name="kuka", image_key="observation/image",
        state_keys=("observation/clip_function_input/base_pose_tool_reached", "observation/gripper_closed"),
        state_encoding="pos_quat",
        action_keys=("action/world_vector", "action/rotation_delta", "action/gripper_closedness_action"),
        gripper=Gripper(index=6, mode="relative", close_sign=1.0),
        decoders={"observation/clip_function_input/base_pose_tool_reached": Decoder("zlib_float32", (7,)),
                  "observation/gripper_closed": Decoder("zlib_float32", (1,))},
        language_key="observation/natural_language_instruction", control_freq=10.0, robot="kuka_iiwa"),
    "austin_buds_dataset_converted_externally_to_rlds": OxeConfig(  # Franka: 1 = closed, range [-1, 1];
        # of its 24 state numbers the first 8 are the 7 joints and the gripper
        name="austin_buds_dataset_converted_externally_to_rlds", image_key="observation/image",
        state_keys=("observation/state",), state_indices=tuple(range(8)), state_encoding="joint",
        action_keys=("action",),
        gripper=Gripper(index=6, mode="absolute", open_value=-1.0, closed_value=1.0),
        control_freq=20.0, robot="franka"),
    "furniture_bench_dataset_converted_externally_to_rlds": OxeConfig(  # Franka: quaternion, 1 = closed
        name="furniture_bench_dataset_converted_externally_to_rlds", image_key="observation/image",
        state_keys=("observation/state",), action_keys=("action",), rotation="quaternion",
        gripper=Gripper(index=7, mode="absolute", open_value=-1.0, closed_value=1.0),
        control_freq=10.0, robot="franka"),
    "stanford_hydra_dataset_converted_externally_to_rlds": OxeConfig(  # Franka with a wrist camera; 1 =
        # closed; of its 27 state numbers: position 0:3, Euler angles 7:10 and the gripper at 24
        name="stanford_hydra_dataset_converted_externally_to_rlds", image_key="observation/image",
        cameras={"wrist": Camera("observation/wrist_image")},
        state_keys=("observation/state",), state_indices=(0, 1, 2, 7, 8, 9, 24), state_encoding="pos_euler",
        action_keys=("action",), gripper=Gripper(index=6, mode="absolute", open_value=0.0, closed_value=1.0),
        control_freq=10.0, robot="franka"),
    "bc_z": OxeConfig(  # Google robot: actions are residuals to ten future waypoints, of which the next
        # one is the action; rotation as an axis-angle vector; target_close 1 = close
        name="bc_z", image_key="observation/image",
        state_keys=("observation/present/xyz", "observation/present/axis_angle", "observation/present/sensed_close"),
        action_keys=("action/future/xyz_residual", "action/future/axis_angle_residual", "action/future/target_close"),
        rotation="axis_angle", rotation_index=30,
        gripper=Gripper(index=60, mode="absolute", open_value=0.0, closed_value=1.0),
        language_key="observation/natural_language_instruction", control_freq=10.0, robot="google_robot"),
    "berkeley_fanuc_manipulation": OxeConfig(  # FANUC arm: no gripper command is logged, so the gripper
        # is read from the measured state (index 6, 1 = closed), which lags the command
        name="berkeley_fanuc_manipulation", image_key="observation/image",
        cameras={"wrist": Camera("observation/wrist_image")},
        state_keys=("observation/state",), state_indices=tuple(range(7)), state_encoding="joint",
        action_keys=("action",),
        gripper=Gripper(index=6, mode="absolute", open_value=0.0, closed_value=1.0, key="observation/state"),
        control_freq=10.0, robot="fanuc_mate"),
    "wmr_maniskill": OxeConfig(  # the course's own data, read like any other
        name="wmr_maniskill", image_key="observation/image", state_keys=("observation/state",),
        action_keys=("action",), rotation="none",
        gripper=Gripper(index=3, mode="absolute", open_value=1.0, closed_value=-1.0),
        control_freq=20.0, robot="panda", action_units="normalised: 1.0 = a 0.1 m move of the gripper target"),
}


# ------------------------------------------------------------------ conventions, one function each


def decisive_gripper(fraction_open: np.ndarray) -> np.ndarray:
    """Absolute gripper fractions in [0, 1] -> 1 (open) / 0 (closed).

    Values near 1 or 0 decide; a value in between (the gripper on its way) takes
    the next decisive value, since that is where it is going; trailing in-between
    values take the last decisive one (or open, if there is none).
    """
    decided = np.where(fraction_open >= 0.95, OPEN, np.where(fraction_open <= 0.05, CLOSED, np.nan))
    out = decided.copy()
    upcoming = np.nan
    for t in range(len(out) - 1, -1, -1):
        if np.isnan(out[t]):
            out[t] = upcoming
        else:
            upcoming = out[t]
    last = OPEN
    for t in range(len(out)):  # in-between values after the last decisive one
        if np.isnan(out[t]):
            out[t] = last
        else:
            last = out[t]
    return out.astype(np.float32)


def absolute_gripper(raw: np.ndarray, gripper: Gripper) -> np.ndarray:
    """Raw gripper commands (T,) -> absolute 1 = open / 0 = closed."""
    if gripper.mode == "absolute":
        span = gripper.open_value - gripper.closed_value
        return decisive_gripper(np.clip((raw - gripper.closed_value) / span, 0.0, 1.0))
    if gripper.mode != "relative":
        raise ValueError(f"gripper mode must be 'absolute' or 'relative', not {gripper.mode!r}")
    command = raw * gripper.close_sign  # > 0.5: close, < -0.5: open, else hold
    decisive = np.flatnonzero(np.abs(command) > 0.5)
    state = OPEN if len(decisive) == 0 or command[decisive[0]] > 0 else CLOSED  # before the first command
    out = np.empty(len(raw), np.float32)
    for t, c in enumerate(command):
        if c > 0.5:
            state = CLOSED
        elif c < -0.5:
            state = OPEN
        out[t] = state
    return out


def quaternion_to_euler(quat: np.ndarray, where: tuple[str, int]) -> np.ndarray:
    """(T, 4) quaternions (x, y, z, w) -> (T, 3) extrinsic x-y-z Euler angles; non-unit ones are refused."""
    from scipy.spatial.transform import Rotation

    norms = np.linalg.norm(quat, axis=-1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1) > QUATERNION_TOLERANCE))
    if len(bad):
        dataset, episode = where
        raise DatasetError(f"rotation quaternion {np.round(quat[bad[0]], 4).tolist()} has norm {norms[bad[0]]:.4f}, "
                           "not 1: it is not a rotation", dataset=dataset, episode=episode, step=int(bad[0]),
                           field="action")
    return Rotation.from_quat(quat).as_euler("xyz").astype(np.float32)


def matrix_to_euler(matrices: np.ndarray, where: tuple[str, int]) -> np.ndarray:
    """(T, 3, 3) rotation matrices (row-major in the action) -> (T, 3) extrinsic x-y-z Euler angles;
    a matrix that is not a rotation (not orthonormal, or a reflection) is refused."""
    from scipy.spatial.transform import Rotation

    identity = np.einsum("tij,tkj->tik", matrices, matrices) - np.eye(3)
    error = np.abs(identity).reshape(len(matrices), -1).max(axis=1)
    bad = np.flatnonzero(~np.isfinite(error) | (error > 1e-3) | (np.linalg.det(matrices) < 0))
    if len(bad):
        raise DatasetError(f"rotation matrix {np.round(matrices[bad[0]], 3).tolist()} is not a rotation "
                           "(not orthonormal, or a reflection)", dataset=where[0], episode=where[1],
                           step=int(bad[0]), field="action")
    return Rotation.from_matrix(matrices).as_euler("xyz").astype(np.float32)


def axis_angle_to_euler(rotvec: np.ndarray) -> np.ndarray:
    """(T, 3) rotation vectors (unit axis times angle, radians) -> (T, 3) extrinsic x-y-z Euler angles."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rotvec).as_euler("xyz").astype(np.float32)


def rot6d_to_euler(six: np.ndarray, where: tuple[str, int]) -> np.ndarray:
    """(T, 6) rotations as the first two columns of their matrix -> (T, 3) extrinsic x-y-z Euler angles.

    The third column is their cross product; columns that are not orthonormal are refused (by
    ``matrix_to_euler``): a stored rotation is a real one, and anything else is a misread field.
    """
    first, second = six[:, 0:3], six[:, 3:6]
    matrices = np.stack([first, second, np.cross(first, second)], axis=-1)  # columns
    return matrix_to_euler(matrices, where)


def relabel_from_states(pose: np.ndarray) -> np.ndarray:
    """(T+1, k) absolute poses -> (T+1, k) deltas: delta[t] = pose[t+1] - pose[t], zero on the last step.

    N steps give N - 1 actions: nothing wraps around from the last pose to the first.
    Angle differences are wrapped into [-pi, pi).
    """
    delta = np.zeros_like(pose)
    delta[:-1] = pose[1:] - pose[:-1]
    if pose.shape[1] > 3:
        delta[:-1, 3:] = (delta[:-1, 3:] + np.pi) % (2 * np.pi) - np.pi
    return delta


def decode_language(value, encoding: str = "text", where: tuple = ("", None, None, None)) -> str:
    """One stored instruction -> str ('' when unlabelled).

    encoding "text": str or UTF-8 bytes; "codes": integer Unicode code points; "utf8_bytes":
    integers that are the UTF-8 bytes of the text. Integer arrays are zero-padded at the end.
    """
    dataset, episode, step, field = where

    def fail(problem):
        raise DatasetError(problem, dataset=dataset, episode=episode, step=step, field=field)

    if encoding not in LANGUAGE_ENCODINGS:
        raise ValueError(f"language must be one of {LANGUAGE_ENCODINGS}, not {encoding!r}")
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        codes = value.reshape(-1)
        codes = codes[: np.flatnonzero(codes)[-1] + 1] if codes.any() else codes[:0]   # zero padding
        if encoding == "text":
            fail("the instruction is stored as integers: set language='codes' or 'utf8_bytes' in the config")
        if encoding == "utf8_bytes":
            if codes.min(initial=0) < 0 or codes.max(initial=0) > 255:
                fail(f"value {int(codes.max())} is not a byte: the instruction is not UTF-8 bytes "
                     "(language='codes' for code points?)")
            value = bytes(codes.astype(np.uint8).tolist())
        else:
            return "".join(map(chr, codes.tolist())).strip()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as error:
            fail(f"the instruction is not valid UTF-8 ({error.reason} at byte {error.start})")
    return str(value).strip()


def decode_field(values, decoder: Decoder, where: tuple) -> np.ndarray:
    """(T,) stored values of one field -> (T, *decoder.shape) float32."""
    dataset, episode, field = where
    if decoder.kind != "zlib_float32":
        raise ValueError(f"decoder kind must be 'zlib_float32', not {decoder.kind!r}")
    out = np.empty((len(values), *decoder.shape), np.float32)
    for t, value in enumerate(values):
        try:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            array = np.frombuffer(zlib.decompress(raw), dtype=np.float32)
            out[t] = array.reshape(decoder.shape)
        except (zlib.error, ValueError, TypeError) as error:
            raise DatasetError(f"cannot decode as zlib-compressed float32 of shape {decoder.shape}: {error}",
                               dataset=dataset, episode=episode, step=t, field=field) from None
    return out


def rgb(frames: np.ndarray, channels: str, where: tuple) -> np.ndarray:
    """(T, H, W, 3) frames in the camera's channel order -> RGB."""
    if channels not in ("RGB", "BGR"):
        raise ValueError(f"camera channels must be 'RGB' or 'BGR', not {channels!r}")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise DatasetError(f"frames should be (T, H, W, 3), got {frames.shape}", dataset=where[0],
                           episode=where[1], field=where[2])
    return frames[..., ::-1] if channels == "BGR" else frames


def noop_mask(action7: np.ndarray) -> np.ndarray:
    """(T+1, 7) -> (T+1,): no translation, no rotation, gripper unchanged from the step before."""
    still = np.all(np.abs(action7[:, :6]) < 1e-8, axis=1)
    previous = np.r_[action7[:1, 6], action7[:-1, 6]]
    return still & (action7[:, 6] == previous)


# ------------------------------------------------------------------ the mapping


def common_state(steps: dict, config: OxeConfig, where: tuple[str, int]) -> np.ndarray:
    """The config's state keys, concatenated, the ``state_indices`` kept: (T+1, D) float32.

    The state encoding is checked: "pos_euler" needs 6 numbers, "pos_quat" 7 with a unit
    quaternion at 3:7 on every step (a misplaced index shows up here, not in a model).
    """
    n = len(steps["is_last"])
    state = np.concatenate([np.asarray(steps[k], np.float32).reshape(n, -1) for k in config.state_keys], axis=1)
    if config.state_indices is not None:
        beyond = [i for i in config.state_indices if not -state.shape[1] <= i < state.shape[1]]
        if beyond:
            raise DatasetError(f"state_indices {beyond} are beyond the {state.shape[1]} numbers of "
                               f"{'+'.join(config.state_keys)}", dataset=where[0], episode=where[1], field="state")
        state = state[:, list(config.state_indices)]
    encoding = config.state_encoding
    if encoding not in STATE_ENCODINGS:
        raise ValueError(f"{config.name}: state_encoding must be one of {STATE_ENCODINGS}, not {encoding!r}")
    width = {"pos_euler": 6, "pos_quat": 7}.get(encoding, 0)
    if state.shape[1] < width:
        raise DatasetError(f"a {encoding} state needs at least {width} numbers, the config gives {state.shape[1]}",
                           dataset=where[0], episode=where[1], field="observation/state")
    if encoding == "pos_quat":
        norms = np.linalg.norm(state[:, 3:7], axis=1)
        bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1) > QUATERNION_TOLERANCE))
        if len(bad):
            raise DatasetError(f"state numbers 3:7 {np.round(state[bad[0], 3:7], 4).tolist()} have norm "
                               f"{norms[bad[0]]:.4f}: not the unit quaternion a pos_quat state holds there",
                               dataset=where[0], episode=where[1], step=int(bad[0]), field="observation/state")
    return state


def standard_action(steps: dict, config: OxeConfig, where: tuple[str, int]) -> np.ndarray:
    """The dataset's raw action fields -> (T+1, 7) [dx, dy, dz, droll, dpitch, dyaw, gripper]."""
    for key in config.action_keys:
        if key not in steps:
            raise DatasetError("missing key (named in the dataset's config)", dataset=where[0],
                               episode=where[1], field=key)
    raw = np.concatenate([np.asarray(steps[k], np.float32).reshape(len(steps[k]), -1) for k in config.action_keys],
                         axis=1)
    n = len(raw)
    action = np.zeros((n, 7), np.float32)
    if config.absolute_from_state is not None:
        idx = list(config.absolute_from_state)
        action[:, : len(idx)] = relabel_from_states(common_state(steps, config, where)[:, idx])
    else:
        action[:, : len(config.position)] = raw[:, list(config.position)]
        r, kind = config.rotation_index, config.rotation
        if kind not in ROTATIONS:
            raise ValueError(f"{config.name}: rotation must be one of {tuple(ROTATIONS)}, not {kind!r}")
        if kind != "none" and r + ROTATIONS[kind] > raw.shape[1]:
            raise DatasetError(f"the raw action has {raw.shape[1]} numbers, too few for a {kind} rotation at "
                               f"index {r}", dataset=where[0], episode=where[1], field="action")
        rotation = raw[:-1, r:r + ROTATIONS[kind]]  # the last step's action means nothing: never converted
        if kind == "euler":
            action[:-1, 3:6] = rotation
        elif kind == "quaternion":
            action[:-1, 3:6] = quaternion_to_euler(rotation, where)
        elif kind == "axis_angle":
            action[:-1, 3:6] = axis_angle_to_euler(rotation)
        elif kind == "rot6d":
            action[:-1, 3:6] = rot6d_to_euler(rotation, where)
        elif kind == "matrix":
            action[:-1, 3:6] = matrix_to_euler(rotation.reshape(-1, 3, 3), where)
    if config.gripper is None:
        if config.gripper_when_absent not in (OPEN, CLOSED):
            raise ValueError(f"{config.name}: gripper_when_absent must be {OPEN} (open) or {CLOSED} (closed)")
        action[:, 6] = config.gripper_when_absent
    else:
        source = raw
        if config.gripper.key is not None:
            if config.gripper.key not in steps:
                raise DatasetError("missing key (the gripper's, named in the dataset's config)", dataset=where[0],
                                   episode=where[1], field=config.gripper.key)
            source = np.asarray(steps[config.gripper.key], np.float32).reshape(n, -1)
        if config.gripper.index >= source.shape[1]:
            raise DatasetError(f"gripper index {config.gripper.index} is beyond its {source.shape[1]} numbers",
                               dataset=where[0], episode=where[1], field=config.gripper.key or "action")
        action[:, 6] = absolute_gripper(source[:, config.gripper.index], config.gripper)
    return action


def leading_noops(is_noop: np.ndarray) -> int:
    """How many steps at the start have a no-op action (keeping at least one action)."""
    moving = np.flatnonzero(~is_noop[:-1])
    return int(moving[0]) if len(moving) else 0


def to_common(ep: Episode, config: OxeConfig, images: bool = True) -> Episode:
    """One raw episode -> the common view."""
    where = (ep.dataset, ep.index)
    steps = dict(ep.steps)
    n = len(steps["is_last"]) if "is_last" in steps else 0
    cameras = {"observation/image": Camera(config.image_key, config.image_channels),
               **{f"observation/{name}_image": camera for name, camera in config.cameras.items()}}
    needed = (*config.state_keys, "is_first", "is_last", *config.decoders) + \
        (tuple(c.key for c in cameras.values()) if images else ())
    for key in needed:
        if key not in steps:
            raise DatasetError("missing key (named in the dataset's config)", dataset=ep.dataset,
                               episode=ep.index, field=key)
    for key, decoder in config.decoders.items():
        steps[key] = decode_field(steps[key], decoder, (*where, key))
    action = standard_action(steps, config, where)
    text = ""
    if config.language_key in steps:
        text = decode_language(steps[config.language_key][0], config.language, (*where, 0, config.language_key))
    common = {
        "observation/state": common_state(steps, config, where),
        "action": action,
        "is_noop": noop_mask(action),
        "reward": np.asarray(steps.get("reward", np.zeros(n)), np.float32),
        "discount": np.asarray(steps.get("discount", np.ones(n)), np.float32),
        "is_first": np.asarray(steps["is_first"], bool),
        "is_last": np.asarray(steps["is_last"], bool),
        "is_terminal": np.asarray(steps.get("is_terminal", np.zeros(n, bool)), bool),
        "language_instruction": np.array([text] * n, dtype=object),
    }
    if images:
        for name, camera in cameras.items():
            common[name] = rgb(steps[camera.key], camera.channels, (*where, camera.key))
    dropped = leading_noops(common["is_noop"]) if config.drop_leading_noops else 0
    if dropped:
        common = {key: values[dropped:] for key, values in common.items()}
        common["is_first"] = np.arange(n - dropped) == 0
    metadata = {**ep.metadata, "dataset": config.name, "robot": config.robot, "control_freq": config.control_freq,
                "gripper_convention": COMMON_GRIPPER, "state_encoding": config.state_encoding,
                "gripper_source": "command" if config.gripper is None or config.gripper.key is None else
                f"measured ({config.gripper.key}): lags the command",
                "action_units": config.action_units, "labelled": bool(text),
                "dropped_leading_noops": dropped}
    return Episode(common, metadata, index=ep.index, dataset=ep.dataset)


def common_spec(first: Episode, config: OxeConfig) -> EpisodeSpec:
    """Shapes and dtypes of the first good episode; the config's bounds on the action."""
    fields = {k: (tuple(np.asarray(v).shape[1:]), np.asarray(v).dtype) for k, v in first.steps.items()}
    fields["language_instruction"] = ((), np.dtype(object))
    if len(config.action_limit) != 6:
        raise ValueError(f"{config.name}: action_limit needs 6 bounds (dx, dy, dz, droll, dpitch, dyaw)")
    limit = np.asarray(config.action_limit, np.float32)
    return EpisodeSpec(fields=fields, action_low=np.r_[-limit, CLOSED].astype(np.float32),
                       action_high=np.r_[limit, OPEN].astype(np.float32))


@dataclasses.dataclass
class Rejected:
    episode: int
    error: DatasetError


class Loaded(list):
    """The episodes ``load`` kept (a list), with ``rejected``: every episode it left out and why."""

    def __init__(self, episodes, rejected=(), dataset: str = ""):
        super().__init__(episodes)
        self.rejected, self.dataset = list(rejected), dataset

    def report(self) -> str:
        steps = sum(len(ep) for ep in self)
        lines = [f"{self.dataset}: {len(self)} episodes kept, {steps} steps, {steps - len(self)} transitions "
                 "(the last step of an episode holds its final observation, not an action)"]
        if self.rejected:
            lines.append(f"{len(self.rejected)} episode(s) rejected:")
            lines += [f"  episode {r.episode}: {r.error}" for r in self.rejected]
        return "\n".join(lines)


def load(path: str | pathlib.Path, config: OxeConfig, split: str = "train", images: bool = True,
         on_error: str = "raise") -> Loaded:
    """Read an RLDS dataset folder and map every episode to the common view, validated.

    on_error="raise": the first bad episode raises its DatasetError (naming dataset, episode,
    step and field). on_error="skip": bad episodes are left out, each listed in ``.rejected``
    with its error, and a warning says how many; an unreadable file still raises.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    if config.action_space != "eef_delta":
        if config.action_space not in REFUSED_ACTION_SPACES:
            raise ValueError(f"{config.name}: action_space must be 'eef_delta' or one of {REFUSED_ACTION_SPACES}")
        raise DatasetError(f"its actions are {config.action_space.replace('_', ' ')} commands, and the common view "
                           "holds end-effector motions of one arm: turning them into that would invent data. "
                           "Read the episodes as they are with wmlib.data.load(path, validate=False)",
                           dataset=config.name)
    path = pathlib.Path(path).expanduser()
    kept, rejected, spec, name = [], [], None, str(path)
    for ep in load_raw(path, split=split, images=images, validate=False):
        name = ep.dataset or name
        try:
            common = to_common(ep, config, images)
            spec = spec or common_spec(common, config)
            validate_episode(common, spec)
        except DatasetError as error:
            if on_error == "raise":
                raise
            rejected.append(Rejected(ep.index, error))
            continue
        kept.append(common)
    loaded = Loaded(kept, rejected, dataset=name)
    if not kept:
        first = f"; the first: {rejected[0].error}" if rejected else ""
        raise DatasetError(f"no usable episodes ({len(rejected)} rejected{first})", dataset=name)
    if rejected:
        warnings.warn(loaded.report(), stacklevel=2)
    return loaded


# ------------------------------------------------------------------ normalisation


@dataclasses.dataclass
class NormStats:
    """Per-dimension statistics of meaningful steps (never a last step; actions: no no-ops).

    ``normalized`` marks the dimensions that get normalised: the gripper is left as it is.
    Spreads of (almost) zero are guarded: such a dimension normalises to 0 and back.
    """
    mean: np.ndarray
    std: np.ndarray
    p01: np.ndarray
    p99: np.ndarray
    normalized: np.ndarray
    count: int

    def normalize(self, x: np.ndarray, mode: str = "gaussian") -> np.ndarray:
        """(..., D) -> (..., D); "gaussian": zero mean, unit std; "bounds": p01..p99 -> -1..1, clipped."""
        if mode == "gaussian":
            spread, centre = self.std, self.mean
            z = (x - centre) / np.where(spread > 1e-8, spread, 1.0)
        elif mode == "bounds":
            spread, centre = (self.p99 - self.p01) / 2, (self.p99 + self.p01) / 2
            z = np.clip((x - centre) / np.where(spread > 1e-8, spread, 1.0), -1, 1)
        else:
            raise ValueError(f"mode must be 'gaussian' or 'bounds', not {mode!r}")
        z = np.where(spread > 1e-8, z, 0.0)
        return np.where(self.normalized, z, x).astype(np.float32)

    def unnormalize(self, z: np.ndarray, mode: str = "gaussian") -> np.ndarray:
        if mode == "gaussian":
            spread, centre = self.std, self.mean
        elif mode == "bounds":
            spread, centre = (self.p99 - self.p01) / 2, (self.p99 + self.p01) / 2
        else:
            raise ValueError(f"mode must be 'gaussian' or 'bounds', not {mode!r}")
        x = centre + z * np.where(spread > 1e-8, spread, 0.0)
        return np.where(self.normalized, x, z).astype(np.float32)


def stats_of(values: np.ndarray, normalized: np.ndarray) -> NormStats:
    if len(values) == 0:
        raise DatasetError("no meaningful steps to compute statistics from")
    return NormStats(mean=values.mean(0), std=values.std(0), p01=np.percentile(values, 1, axis=0),
                     p99=np.percentile(values, 99, axis=0), normalized=normalized, count=len(values))


def statistics(episodes: list[Episode]) -> dict[str, NormStats]:
    """Action and state statistics of common-view episodes (gripper left unnormalised)."""
    actions = np.concatenate([ep.steps["action"][:-1][~ep.steps["is_noop"][:-1]] for ep in episodes])
    states = np.concatenate([ep.steps["observation/state"][:-1] for ep in episodes])
    action_norm = np.r_[np.ones(6, bool), False]
    return {"action": stats_of(actions, action_norm), "state": stats_of(states, np.ones(states.shape[1], bool))}
