"""Tiny RLDS datasets written with the published feature specs of real OXE datasets.

There is no network here, so the OXE loader is tested on look-alikes: the same
feature names, nesting, dtypes and conventions as the released datasets, with a
few short episodes whose values are chosen so that every convention shows.
Images are small (the loader does not care about their size).
"""
import numpy as np
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


def bridge(folder):
    """Bridge (OXE release): absolute end-effector state, actions to relabel from it; 2 episodes."""
    step_features = {
        "observation": {"image": tfds.features.Image(shape=IMG), "state": T(shape=(7,), dtype=np.float32),
                        "natural_language_instruction": tfds.features.Text()},
        "action": {"world_vector": T(shape=(3,), dtype=np.float32), "rotation_delta": T(shape=(3,), dtype=np.float32),
                   "open_gripper": S(np.bool_), "terminate_episode": S(np.float32)},
        **REWARD, **FLAGS,
    }
    episodes = []
    for e, (n, yaw_step) in enumerate([(5, 0.1), (4, 3.0)]):  # the second crosses +-pi in yaw
        states = [np.r_[0.02 * t, 0.01 * e, 0.1, 0, 0, np.angle(np.exp(1j * yaw_step * t)), 1].astype(np.float32)
                  for t in range(n)]
        steps = [{"observation": {"image": image(), "state": states[t],
                                  "natural_language_instruction": "put spoon in pot"},
                  "action": {"world_vector": np.full(3, 9.0, np.float32), "rotation_delta": np.zeros(3, np.float32),
                             "open_gripper": t < 2, "terminate_episode": 0.0},
                  "reward": 0.0, "discount": 1.0, **flags(n, terminal=False)[t]} for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, "bridge", step_features, episodes)


def language_table(folder):
    """Language Table: 2-D actions, instruction as 512 zero-padded character codes; one unlabelled episode."""
    step_features = {
        "observation": {"rgb": tfds.features.Image(shape=IMG), "effector_translation": T(shape=(2,), dtype=np.float32),
                        "effector_target_translation": T(shape=(2,), dtype=np.float32),
                        "instruction": T(shape=(512,), dtype=np.int32)},
        "action": T(shape=(2,), dtype=np.float32), **REWARD, **FLAGS,
    }
    episodes = []
    for text in ["push the red star to the left", ""]:
        codes = np.zeros(512, np.int32)
        codes[: len(text)] = [ord(c) for c in text]
        n = 4
        steps = [{"observation": {"rgb": image(), "effector_translation": np.array([0.1 * t, 0], np.float32),
                                  "effector_target_translation": np.zeros(2, np.float32), "instruction": codes},
                  "action": np.array([0.03, -0.01], np.float32) if t != 1 else np.zeros(2, np.float32),
                  "reward": 0.0, "discount": 1.0, **flags(n, terminal=False)[t]} for t in range(n)]
        episodes.append({"steps": steps})
    return write_rlds(folder, "language_table", step_features, episodes)


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
