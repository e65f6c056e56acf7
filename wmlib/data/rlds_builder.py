"""The course dataset as a tfds RLDS builder: ``wmr_maniskill/push_cube`` and ``/pick_cube``.

Written with ``build(...)``; read back anywhere with
``tfds.builder_from_directory("datasets/wmr_maniskill/push_cube/1.0.0")`` (no course code
needed) or with ``wmlib.data.load``. One config per task, because each task's state
vector has its own size; the dataset's ``metadata.json`` names every slice of it.
"""
from __future__ import annotations

import pathlib
import tempfile

import numpy as np
import tensorflow_datasets as tfds

from wmlib.data.conventions import PROPRIO_KEYS, metadata

NAME = "wmr_maniskill"
IMAGE_SIZE = 128


class TaskConfig(tfds.core.BuilderConfig):
    def __init__(self, *, env_id: str, state_dim: int, **kwargs):
        super().__init__(version=tfds.core.Version("1.0.0"), **kwargs)
        self.env_id = env_id
        self.state_dim = state_dim


class WmrManiskill(tfds.core.GeneratorBasedBuilder):
    """ManiSkill Panda episodes (pd_ee_delta_pos) from four sources, in RLDS form."""

    BUILDER_CONFIGS = [
        TaskConfig(name="push_cube", env_id="PushCube-v1", state_dim=35, description="PushCube-v1"),
        TaskConfig(name="pick_cube", env_id="PickCube-v1", state_dim=42, description="PickCube-v1"),
    ]

    def __init__(self, *, episodes=(), layout: dict | None = None, image_size: int = IMAGE_SIZE,
                 plan: dict | None = None, **kwargs):
        self._episodes = episodes
        self._layout = layout or {}
        self._image_size = image_size
        self._plan = plan or {}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        cfg, size = self.builder_config, self._image_size
        proprio_dim = sum(self._layout[k].stop - self._layout[k].start for k in PROPRIO_KEYS) if self._layout else 25
        scalar = lambda dtype: tfds.features.Scalar(dtype=dtype)  # noqa: E731
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{cfg.env_id}: random, scripted success, scripted failure and recovery episodes.",
            features=tfds.features.FeaturesDict({
                "steps": tfds.features.Dataset({
                    "observation": tfds.features.FeaturesDict({
                        "state": tfds.features.Tensor(shape=(cfg.state_dim,), dtype=np.float32),
                        "image": tfds.features.Image(shape=(size, size, 3), encoding_format="jpeg"),  # as most OXE data
                        "proprio": tfds.features.Tensor(shape=(proprio_dim,), dtype=np.float32),
                    }),
                    "action": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                    "reward": scalar(np.float32),
                    "discount": scalar(np.float32),
                    "is_first": scalar(np.bool_),
                    "is_last": scalar(np.bool_),
                    "is_terminal": scalar(np.bool_),
                    "language_instruction": tfds.features.Text(),
                }),
                "episode_metadata": tfds.features.FeaturesDict({
                    "env_id": tfds.features.Text(),
                    "robot": tfds.features.Text(),
                    "control_mode": tfds.features.Text(),
                    "control_freq": scalar(np.int32),
                    "camera_intrinsics": tfds.features.Tensor(shape=(3, 3), dtype=np.float32),
                    "camera_extrinsics": tfds.features.Tensor(shape=(3, 4), dtype=np.float32),
                    "source": tfds.features.Text(),
                    "mistake": tfds.features.Text(),
                    "success": scalar(np.bool_),
                    "seed": scalar(np.int64),
                }),
            }),
            metadata=tfds.core.MetadataDict(metadata(self._layout), plan=self._plan) if self._layout else None,
            disable_shuffling=True,  # episode i of the dataset is the i-th collected: errors can name it
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for index, episode in enumerate(self._episodes):
            steps = episode["steps"]
            n = len(steps["reward"])
            step_list = [
                {
                    "observation": {k: v[t] for k, v in steps["observation"].items()},
                    **{k: steps[k][t] for k in steps if k != "observation"},
                }
                for t in range(n)
            ]
            yield f"{index:06d}", {"steps": step_list, "episode_metadata": episode["episode_metadata"]}


def config_for(env_id: str) -> TaskConfig:
    for cfg in WmrManiskill.BUILDER_CONFIGS:
        if cfg.env_id == env_id:
            return cfg
    raise ValueError(f"no dataset config for {env_id!r}")


def write(env_id: str, episodes, layout: dict[str, slice], data_dir: str | pathlib.Path,
          image_size: int = IMAGE_SIZE, plan: dict | None = None) -> pathlib.Path:
    """Write episodes (an iterable of run_episode dicts) as an RLDS dataset; return its folder."""
    cfg = config_for(env_id)
    width = max(s.stop for s in layout.values())
    if width != cfg.state_dim:
        raise ValueError(f"{env_id}: the simulator's state has {width} numbers, "
                         f"the dataset config expects {cfg.state_dim}")
    builder = WmrManiskill(config=cfg.name, data_dir=str(data_dir), episodes=episodes, layout=layout,
                           image_size=image_size, plan=plan)
    with tempfile.TemporaryDirectory() as nothing_to_download:  # keep tfds' downloads/ out of data_dir
        builder.download_and_prepare(download_dir=nothing_to_download)
    return pathlib.Path(builder.data_dir)
