"""Tiny RLDS datasets written with the published feature specs of real OXE datasets.

There is no network here, so the OXE loader is tested on look-alikes: the same
feature names, nesting, dtypes and conventions as the released datasets, with a
few short episodes whose values are chosen so that every convention shows.
Images are small (the loader does not care about their size).
"""
import zlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

IMG = (8, 10, 3)


def write_rlds(folder, name, step_features, episodes, metadata_features=None):
    """Write episodes (dicts with "steps": list of step dicts) as an RLDS tfds dataset; return its folder."""
    features = {"steps": tfds.features.Dataset(step_features)}
    if metadata_features:
        features["episode_metadata"] = tfds.features.FeaturesDict(metadata_features)

    class LookAlike(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("0.1.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features),
                                         disable_shuffling=True)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, episode in enumerate(episodes):
                yield f"{i:04d}", episode

    LookAlike.name = name  # the dataset's published name
    builder = LookAlike(data_dir=str(folder))
    builder.download_and_prepare(download_dir=str(folder / "downloads"))
    return folder / name / "0.1.0"


def flags(n, terminal=True):
    return [dict(is_first=t == 0, is_last=t == n - 1, is_terminal=terminal and t == n - 1) for t in range(n)]


def image():
    return np.zeros(IMG, np.uint8)


T = tfds.features.Tensor
S = tfds.features.Scalar
FLAGS = {"is_first": S(np.bool_), "is_last": S(np.bool_), "is_terminal": S(np.bool_)}
REWARD = {"reward": S(np.float32), "discount": S(np.float32)}


def fractal(folder):
    """RT-1 (fractal20220817_data): dict actions, relative gripper (+1 close, -1 open, 0 hold)."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG),
                        "base_pose_tool_reached": T(shape=(7,), dtype=np.float32),
                        "natural_language_instruction": tfds.features.Text(),
                        "natural_language_embedding": T(shape=(512,), dtype=np.float32)},
        "action": {"world_vector": T(shape=(3,), dtype=np.float32), "rotation_delta": T(shape=(3,), dtype=np.float32),
                   "gripper_closedness_action": T(shape=(1,), dtype=np.float32),
                   "base_displacement_vector": T(shape=(2,), dtype=np.float32),
                   "base_displacement_vertical_rotation": T(shape=(1,), dtype=np.float32),
                   "terminate_episode": T(shape=(3,), dtype=np.int32)},
        **REWARD, **FLAGS,
    }
    gripper = [0, 0, 1, 0, 0, -1, 0, 0]  # hold, hold, close, hold, hold, open, hold, (last)
    n = len(gripper)
    steps = [{
        "observation": {"image": image(), "base_pose_tool_reached": np.r_[0.1 * t, 0, 0, 0, 0, 0, 1].astype(np.float32),
                        "natural_language_instruction": "pick coke can",
                        "natural_language_embedding": np.zeros(512, np.float32)},
        "action": {"world_vector": np.array([0.01 * t, 0, 0], np.float32), "rotation_delta": np.zeros(3, np.float32),
                   "gripper_closedness_action": np.array([gripper[t]], np.float32),
                   "base_displacement_vector": np.zeros(2, np.float32),
                   "base_displacement_vertical_rotation": np.zeros(1, np.float32),
                   "terminate_episode": np.array([0, 1, 0], np.int32)},
        "reward": float(t == n - 1), "discount": 1.0, **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, "fractal20220817_data", step_features, [{"steps": steps}])


def bridge(folder, still_first_step=False, name="bridge"):
    """Bridge (OXE release): absolute end-effector state, actions to relabel from it; 2 episodes.
    still_first_step: the robot does not move during the first step (an all-zero first action)."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "state": T(shape=(7,), dtype=np.float32),
                        "natural_language_instruction": tfds.features.Text()},
        "action": {"world_vector": T(shape=(3,), dtype=np.float32), "rotation_delta": T(shape=(3,), dtype=np.float32),
                   "open_gripper": S(np.bool_), "terminate_episode": S(np.float32)},
        **REWARD, **FLAGS,
    }
    episodes = []
    for e, (n, yaw_step) in enumerate([(5, 0.1), (4, 3.0)]):  # the second crosses +-pi in yaw
        moves = [max(t - 1, 0) if still_first_step else t for t in range(n)]
        states = [np.r_[0.02 * m, 0.01 * e, 0.1, 0, 0, np.angle(np.exp(1j * yaw_step * m)), 1].astype(np.float32)
                  for m in moves]
        steps = [{"observation": {"image": image(), "state": states[t],
                                  "natural_language_instruction": "put spoon in pot"},
                  "action": {"world_vector": np.full(3, 9.0, np.float32), "rotation_delta": np.zeros(3, np.float32),
                             "open_gripper": t < 2, "terminate_episode": 0.0},
                  "reward": 0.0, "discount": 1.0, **flags(n, terminal=False)[t]} for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, name, step_features, episodes)


def language_table(folder, texts=("push the red star to the left", ""), encoding="codes", name="language_table"):
    """Language Table: 2-D actions, instruction as 512 zero-padded integers, Unicode code points as
    the published standardisation reads them (encoding="utf8_bytes": the text's UTF-8 bytes instead);
    one unlabelled episode."""
    step_features = {
        "observation": {"rgb": tfds.features.Image(shape=IMG), "effector_translation": T(shape=(2,), dtype=np.float32),
                        "effector_target_translation": T(shape=(2,), dtype=np.float32),
                        "instruction": T(shape=(512,), dtype=np.int32)},
        "action": T(shape=(2,), dtype=np.float32), **REWARD, **FLAGS,
    }
    episodes = []
    for text in texts:
        if isinstance(text, bytes):                     # deliberately broken UTF-8
            encoded = list(text)
        else:
            encoded = list(text.encode("utf-8")) if encoding == "utf8_bytes" else [ord(c) for c in text]
        codes = np.zeros(512, np.int32)
        codes[: len(encoded)] = encoded
        n = 4
        steps = [{"observation": {"rgb": image(), "effector_translation": np.array([0.1 * t, 0], np.float32),
                                  "effector_target_translation": np.zeros(2, np.float32), "instruction": codes},
                  "action": np.array([0.03, -0.01], np.float32) if t != 1 else np.zeros(2, np.float32),
                  "reward": 0.0, "discount": 1.0, **flags(n, terminal=False)[t]} for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, name, step_features, episodes)


def franka_quaternion(folder, quaternions=None, name="furniture_bench_dataset_converted_externally_to_rlds"):
    """A Franka dataset (furniture_bench-like): quaternion rotation, gripper in [-1, 1] with +1 = closed."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "state": T(shape=(8,), dtype=np.float32)},
        "action": T(shape=(8,), dtype=np.float32), "language_instruction": tfds.features.Text(), **REWARD, **FLAGS,
    }
    half = np.sqrt(0.5)
    quaternions = quaternions or [[0, 0, 0, 1], [0, 0, half, half], [half, 0, 0, half], [0, 0, 0, 1], [0, 0, 0, 1]]
    gripper = [-1.0, -0.97, 0.2, 1.0, 0.0]  # open, open, closing..., closed, (last)
    n = len(quaternions)
    steps = [{"observation": {"image": image(), "state": np.zeros(8, np.float32)},
              "action": np.r_[0.01, 0, 0, quaternions[t], gripper[t]].astype(np.float32),
              "language_instruction": "", "reward": 0.0, "discount": 1.0, **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, name, step_features, [{"steps": steps}])


def austin_buds(folder):
    """austin_buds (Franka): Euler deltas, continuous gripper in [-1, 1] with +1 = closed."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "state": T(shape=(24,), dtype=np.float32)},
        "action": T(shape=(7,), dtype=np.float32), "language_instruction": tfds.features.Text(), **REWARD, **FLAGS,
    }
    gripper = [-1.0, -1.0, 0.1, 0.6, 1.0, 1.0, -0.4, -1.0, 0.0]
    n = len(gripper)
    steps = [{"observation": {"image": image(), "state": np.full(24, t, np.float32)},
              "action": np.r_[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, gripper[t]].astype(np.float32) if t in (0, 1) else
              np.r_[0.01, 0.0, -0.01, 0.0, 0.0, 0.05, gripper[t]].astype(np.float32),
              "language_instruction": "take the tool out of the box", "reward": 0.0, "discount": 1.0,
              **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, "austin_buds_dataset_converted_externally_to_rlds", step_features, [{"steps": steps}])


def zlib_float32(values) -> bytes:
    return zlib.compress(np.asarray(values, np.float32).tobytes())


def kuka(folder, corrupt=None):
    """kuka (QT-Opt): end-effector pose and gripper state stored as zlib-compressed float32 bytes;
    relative gripper. corrupt=(episode, step): that step's pose bytes are not zlib data."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG),
                        "clip_function_input": {"base_pose_tool_reached": T(shape=(), dtype=tf.string)},
                        "gripper_closed": T(shape=(), dtype=tf.string),
                        "natural_language_instruction": tfds.features.Text()},
        "action": {"world_vector": T(shape=(3,), dtype=np.float32), "rotation_delta": T(shape=(3,), dtype=np.float32),
                   "gripper_closedness_action": T(shape=(1,), dtype=np.float32)},
        **REWARD, **FLAGS,
    }
    episodes = []
    for e in range(3):
        n = 4
        steps = [{"observation": {"image": image(),
                                  "clip_function_input": {"base_pose_tool_reached": b"\x00garbage" if corrupt == (e, t)
                                                          else zlib_float32([0.1 * t, e, 0.5, 0, 0, 0, 1])},
                                  "gripper_closed": zlib_float32([float(t >= 2)]),
                                  "natural_language_instruction": "pick anything"},
                  "action": {"world_vector": np.array([0.01, 0, 0], np.float32),
                             "rotation_delta": np.zeros(3, np.float32),
                             "gripper_closedness_action": np.array([1.0 if t == 1 else 0.0], np.float32)},
                  "reward": 0.0, "discount": 1.0, **flags(n, terminal=False)[t]} for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, "kuka", step_features, episodes)


RED_RGB, RED_BGR = (255, 0, 0), (0, 0, 255)


def franka_two_cameras(folder, absurd=None):
    """A Franka with an agent camera (RGB) and a wrist camera whose frames were saved by OpenCV, in
    BGR order; both show red. absurd=(episode, step): that step's dz is 1e6 (a logging fault)."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "wrist_image": tfds.features.Image(shape=IMG),
                        "state": T(shape=(8,), dtype=np.float32)},
        "action": T(shape=(7,), dtype=np.float32), "language_instruction": tfds.features.Text(), **REWARD, **FLAGS,
    }
    episodes = []
    for e in range(3):
        n = 3
        steps = [{"observation": {"image": np.full(IMG, RED_RGB, np.uint8),
                                  "wrist_image": np.full(IMG, RED_BGR, np.uint8),
                                  "state": np.full(8, t, np.float32)},
                  "action": np.r_[0.01, 0.0, 1e6 if absurd == (e, t) else -0.01, 0, 0, 0, -1.0].astype(np.float32),
                  "language_instruction": "open the drawer", "reward": 0.0, "discount": 1.0, **flags(n)[t]}
                 for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, "franka_two_cameras", step_features, episodes)


def franka_rotation(folder, rotations, name="franka_rotation"):
    """A Franka dataset whose action is [x, y, z, rotation (k numbers, flattened), gripper]."""
    rotations = [np.asarray(r, np.float32).reshape(-1) for r in rotations]
    k = len(rotations[0])
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "state": T(shape=(8,), dtype=np.float32)},
        "action": T(shape=(k + 4,), dtype=np.float32), "language_instruction": tfds.features.Text(), **REWARD, **FLAGS,
    }
    n = len(rotations)
    steps = [{"observation": {"image": image(), "state": np.zeros(8, np.float32)},
              "action": np.r_[0.01, 0, 0, rotations[t], -1.0].astype(np.float32),
              "language_instruction": "", "reward": 0.0, "discount": 1.0, **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, name, step_features, [{"steps": steps}])


def franka_matrix(folder, matrices, name="franka_rotation_matrix"):
    """A Franka dataset whose action is [x, y, z, rotation matrix (9, row-major), gripper]."""
    return franka_rotation(folder, matrices, name)


def stanford_hydra(folder):
    """stanford_hydra (Franka): 27 state numbers (position 0:3, quaternion 3:7, Euler 7:10, ...,
    gripper at 24), a wrist camera, Euler deltas and an absolute gripper with 1 = closed."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "wrist_image": tfds.features.Image(shape=IMG),
                        "state": T(shape=(27,), dtype=np.float32)},
        "action": T(shape=(7,), dtype=np.float32), "language_instruction": tfds.features.Text(),
        "language_embedding": T(shape=(512,), dtype=np.float32), **REWARD, **FLAGS,
    }
    closed = [0, 0, 1, 1, 0]
    n = len(closed)
    steps = []
    for t in range(n):
        state = np.full(27, 100.0 + t, np.float32)   # numbers the common view must leave out
        state[0:3], state[3:7], state[7:10], state[24] = [0.4, 0.01 * t, 0.2], [0, 0, 0, 1], [0, 0, 0.1 * t], closed[t]
        steps.append({"observation": {"image": image(), "wrist_image": image(), "state": state},
                      "action": np.r_[0, 0.01, 0, 0, 0, 0.1, closed[t]].astype(np.float32),
                      "language_instruction": "make a cup of coffee", "language_embedding": np.zeros(512, np.float32),
                      "reward": 0.0, "discount": 1.0, **flags(n)[t]})
    return write_rlds(folder, "stanford_hydra_dataset_converted_externally_to_rlds", step_features, [{"steps": steps}])


def bc_z(folder, angle=np.pi / 2):
    """bc_z (Google robot): each action is the residual to ten future waypoints (xyz and axis-angle,
    30 numbers each) and ten future gripper targets (1 = close); the first of each is the action."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "present/xyz": T(shape=(3,), dtype=np.float32),
                        "present/axis_angle": T(shape=(3,), dtype=np.float32),
                        "present/sensed_close": T(shape=(1,), dtype=np.float32),
                        "natural_language_instruction": tfds.features.Text()},
        "action": {"future/xyz_residual": T(shape=(30,), dtype=np.float32),
                   "future/axis_angle_residual": T(shape=(30,), dtype=np.float32),
                   "future/target_close": T(shape=(10,), dtype=np.int64)},
        **REWARD, **FLAGS,
    }
    close = [0, 1, 1, 0]
    n = len(close)
    steps = [{"observation": {"image": image(), "present/xyz": np.array([0.5, 0, 0.01 * t], np.float32),
                              "present/axis_angle": np.zeros(3, np.float32),
                              "present/sensed_close": np.array([close[t]], np.float32),
                              "natural_language_instruction": "place the sponge in the tray"},
              "action": {"future/xyz_residual": np.tile([0, 0, 0.01], 10).astype(np.float32) * np.repeat(
                             np.arange(1, 11), 3).astype(np.float32),
                         "future/axis_angle_residual": np.tile([0, 0, angle], 10).astype(np.float32),
                         "future/target_close": np.full(10, close[t], np.int64)},
              "reward": 0.0, "discount": 1.0, **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, "bc_z", step_features, [{"steps": steps}])


def berkeley_fanuc(folder):
    """berkeley_fanuc_manipulation: 6-number end-effector deltas and no gripper command; the
    state holds 6 joints, the gripper (1 = closed) and 6 joint velocities; a wrist camera."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "wrist_image": tfds.features.Image(shape=IMG),
                        "state": T(shape=(13,), dtype=np.float32)},
        "action": T(shape=(6,), dtype=np.float32), "language_instruction": tfds.features.Text(), **REWARD, **FLAGS,
    }
    closed = [0, 0, 1, 1, 1, 0]
    n = len(closed)
    steps = [{"observation": {"image": image(), "wrist_image": image(),
                              "state": np.r_[np.full(6, 0.1 * t), closed[t], np.full(6, 9.0)].astype(np.float32)},
              "action": np.array([0.01, 0, 0, 0, 0, 0], np.float32), "language_instruction": "pick up the cup",
              "reward": 0.0, "discount": 1.0, **flags(n)[t]} for t in range(n)]
    return write_rlds(folder, "berkeley_fanuc_manipulation", step_features, [{"steps": steps}])
