"""Episodes as arrays, and the tuples models learn from.

An ``Episode`` holds one RLDS episode as NumPy arrays keyed by flat field names
(``"observation/state"``, ``"action"``, ``"is_last"``, ...), each with the step
axis first: ``steps["observation/state"]`` is ``(T + 1, D)`` for an episode of T
actions. Conventions (the same for every dataset the course reads):

- step t holds observation o_t and the action a_t sent from it, and the reward
  that action earned;
- the last step (``is_last``) holds the final observation o_T only: its action,
  reward and discount mean nothing and never enter a target or a statistic;
- ``is_last`` without ``is_terminal`` is a truncation (time ran out), not a
  termination: the world would have gone on.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:
    from wmlib.data.validate import EpisodeSpec

STEP_FIELDS = ("observation/state", "action", "reward", "discount", "is_first", "is_last", "is_terminal",
               "language_instruction")


class DatasetError(ValueError):
    """Bad data, with the dataset, episode, step and field it was found in."""

    def __init__(self, problem: str, dataset: str = "", episode: int | None = None, step: int | None = None,
                 field: str | None = None):
        self.problem, self.dataset, self.episode, self.step, self.field = problem, dataset, episode, step, field
        where = [f"dataset {dataset!r}" if dataset else "", f"episode {episode}" if episode is not None else "",
                 f"step {step}" if step is not None else "", f"field {field!r}" if field else ""]
        super().__init__(", ".join(w for w in where if w) + f": {problem}")


@dataclasses.dataclass
class Episode:
    steps: dict[str, np.ndarray]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    index: int = 0
    dataset: str = ""

    def __len__(self) -> int:
        """Number of steps, T + 1 (the last holds only the final observation)."""
        return len(self.steps["is_last"])

    @property
    def num_actions(self) -> int:
        """T: the steps whose action means something."""
        return len(self) - 1

    @property
    def terminated(self) -> bool:
        return bool(self.steps["is_terminal"][-1])

    @property
    def language(self) -> str | None:
        """The task instruction, or None when the episode is unlabelled (empty text is no task)."""
        text = self.steps["language_instruction"][0] if "language_instruction" in self.steps else ""
        return text or None

    def __repr__(self) -> str:
        source = self.metadata.get("source", "?")
        success = self.metadata.get("success")
        return f"Episode({self.dataset}#{self.index}, {len(self)} steps, source={source}, success={success})"


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"observation": {"state": x}} -> {"observation/state": x}."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}/"))
        else:
            out[prefix + key] = value
    return out


def to_text(value):
    """bytes (or arrays of bytes) from TensorFlow -> str, where they are UTF-8 text.

    Bytes that are not UTF-8 (a compressed tensor, an encoded image) stay bytes: what they mean is
    for the dataset's config to say (``wmlib.data.oxe``), not for the reader to guess.
    """
    def text(v):
        if not isinstance(v, bytes):
            return v
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return v

    if isinstance(value, bytes):
        return text(value)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.array([text(v) for v in value.reshape(-1)], dtype=object).reshape(value.shape)
    return value


# ------------------------------------------------------------------ transitions


@dataclasses.dataclass
class Transitions:
    """(o_t, a_t, o_t+1) for every meaningful action of every episode; never across episodes.

    obs, next_obs: (N, D); action: (N, A); reward, terminal: (N,);
    episode, step: (N,) where each transition came from.
    ``terminal[i]`` is True when o_t+1 ended the episode by termination (not truncation).
    """
    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    episode: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)

    def to_torch(self, device=None) -> dict:
        import torch

        return {f.name: torch.as_tensor(getattr(self, f.name), device=device) for f in dataclasses.fields(self)}


def transitions(episodes: Iterable[Episode], key: str = "observation/state") -> Transitions:
    """All (o_t, a_t, o_t+1) with t = 0..T-1 of each episode: the last step gives none of its own."""
    parts = []
    for ep in episodes:
        obs, T = ep.steps[key], ep.num_actions
        parts.append(dict(
            obs=obs[:-1], action=ep.steps["action"][:-1], next_obs=obs[1:], reward=ep.steps["reward"][:-1],
            terminal=ep.steps["is_terminal"][1:], episode=np.full(T, ep.index), step=np.arange(T),
        ))
    if not parts:
        raise DatasetError("no episodes to make transitions from")
    return Transitions(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


@dataclasses.dataclass
class WamTuples:
    """(o_t, l, a_t, o_t+1, a_t+1) for a World Action Model; t = 0..T-2 of each episode.

    a_t+1 must be a real action, so the step before the last gives none: an episode
    of T actions gives T-1 tuples. obs/next_obs: (N, D); action/next_action: (N, A);
    language: (N,) str; episode, step: (N,).
    """
    obs: np.ndarray
    language: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    next_action: np.ndarray
    episode: np.ndarray
    step: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)


def wam_tuples(episodes: Iterable[Episode], key: str = "observation/state") -> WamTuples:
    parts = []
    for ep in episodes:
        obs, act, n = ep.steps[key], ep.steps["action"], ep.num_actions - 1
        if n <= 0:
            continue
        parts.append(dict(
            obs=obs[:n], language=np.array([ep.language] * n, dtype=object), action=act[:n],
            next_obs=obs[1:n + 1], next_action=act[1:n + 1], episode=np.full(n, ep.index), step=np.arange(n),
        ))
    if not parts:
        raise DatasetError("no episode has two actions: no (o_t, l, a_t, o_t+1, a_t+1) tuple exists")
    return WamTuples(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


# ------------------------------------------------------------------ reading


def open_builder(path: str | pathlib.Path):
    """The tfds builder of a dataset folder (``.../name/config/version``), or a DatasetError."""
    import tensorflow_datasets as tfds

    path = pathlib.Path(path)
    if not (path / "dataset_info.json").exists():
        raise DatasetError(f"no tfds dataset at {path} (dataset_info.json missing): build it with `make dataset`",
                           dataset=str(path))
    try:
        return tfds.builder_from_directory(str(path))
    except Exception as err:  # a damaged dataset_info.json / features.json
        raise DatasetError(f"cannot open the dataset's description files: {err}", dataset=str(path)) from err


def read_dataset(path: str | pathlib.Path, split: str = "train", images: bool = True):
    """tfds' own reader: a tf.data.Dataset of whole episodes (steps batched into arrays), and the builder."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = open_builder(path)
    step_features = builder.info.features["steps"].feature
    decoders = None
    if not images and "observation" in step_features and "image" in step_features["observation"]:
        decoders = {"steps": {"observation": {"image": tfds.decode.SkipDecoding()}}}
    ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)

    def whole_episode(episode):
        episode = dict(episode)
        steps = episode["steps"].batch(1_000_000).get_single_element()
        if decoders:
            steps["observation"] = {k: v for k, v in steps["observation"].items() if k != "image"}
        episode["steps"] = steps
        return episode

    return ds.map(whole_episode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), builder


def leaf_features(features, prefix: str = "") -> dict:
    """"steps/observation/state" -> its tfds feature, for every leaf (steps are a tfds Dataset)."""
    import tensorflow_datasets as tfds

    leaves = {}
    for key, feature in features.items():
        if isinstance(feature, tfds.features.Dataset):
            feature = feature.feature
        if isinstance(feature, tfds.features.FeaturesDict):
            leaves.update(leaf_features(feature, f"{prefix}{key}/"))
        else:
            leaves[prefix + key] = feature
    return leaves


def fast_readable(builder) -> bool:
    """True when every field is a plain tensor, scalar, text or image: then ``parse_records`` reads it."""
    import tensorflow_datasets as tfds

    plain = (tfds.features.Tensor, tfds.features.Text, tfds.features.Image)
    leaves = leaf_features(builder.info.features)
    return all(type(f) in plain or isinstance(f, tfds.features.Scalar) for f in leaves.values()) and all(
        isinstance(builder.info.features[k], (tfds.features.Dataset, tfds.features.FeaturesDict))
        for k in builder.info.features)


def parse_records(builder, split: str, images: bool, chunk: int = 16):
    """Parse the split's record files directly with the dataset's own example spec.

    The same result as tfds' reader, several times faster for state data: records are
    parsed in chunks by one ``tf.io.parse_example`` call each (chunks in parallel),
    step fields as ragged tensors (so every episode keeps its true length), and
    fields that are not wanted (images, when images=False) are never copied out.
    Yields one flat dict per episode ("steps/observation/state": (T+1, D), ...).
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    leaves = leaf_features(builder.info.features)
    spec, spec_shapes = {}, {}
    for key, example_spec in builder.info.features.tf_example_spec.items():
        spec_shapes[key] = tuple(example_spec.shape)
        if not images and isinstance(leaves[key], tfds.features.Image):
            continue
        if key.startswith("steps/"):  # all the step values of an episode, flat: reshaped below
            spec[key] = tf.io.RaggedFeature(example_spec.dtype)
        else:
            spec[key] = example_spec

    image_keys = [k for k in spec if isinstance(leaves[k], tfds.features.Image)]

    def parse(serialized):  # a chunk of records -> ragged step columns and metadata columns
        parsed = tf.io.parse_example(serialized, spec)
        for key in image_keys:  # decode every frame of the chunk
            frames = parsed[key]
            decoded = tf.map_fn(leaves[key].decode_example, frames.values, fn_output_signature=tf.uint8)
            parsed[key] = tf.RaggedTensor.from_row_splits(decoded, frames.row_splits) if key.startswith("steps/") \
                else decoded
        return parsed

    files = [str(p) for p in builder.info.splits[split].filepaths]
    chunks = (tf.data.TFRecordDataset(files).batch(chunk)
              .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2))
    for parsed in chunks:
        columns = {}
        for key, value in parsed.items():
            feature = leaves[key]
            if isinstance(value, tf.RaggedTensor):
                is_image = isinstance(feature, tfds.features.Image)
                step_shape = tuple(feature.shape if is_image else spec_shapes[key])
                width = 1 if is_image else int(np.prod(step_shape, dtype=int))  # values per step
                rows = np.asarray(value.values).astype(feature.np_dtype, copy=False).reshape(-1, *step_shape)
                columns[key] = (rows, value.row_splits.numpy() // width)
            else:
                columns[key] = (np.asarray(value).astype(feature.np_dtype, copy=False), None)
        first_values, first_splits = next(iter(columns.values()))
        count = len(first_splits) - 1 if first_splits is not None else len(first_values)
        for i in range(count):  # the episodes of this chunk
            yield {key: (values[splits[i]:splits[i + 1]] if splits is not None else values[i])
                   for key, (values, splits) in columns.items()}


def unflatten_episode(flat: dict) -> dict:
    """{"steps/observation/state": x, ...} -> {"steps": {"observation/state": x}, "episode_metadata": {...}}."""
    out = {"steps": {}, "episode_metadata": {}}
    for key, value in flat.items():
        group, _, name = key.partition("/")
        out.setdefault(group, {})[name] = value
    return out


def dataset_name(builder) -> str:
    config = builder.builder_config.name if builder.builder_config else ""
    return f"{builder.name}/{config}" if config else builder.name


def raw_episodes(builder, split: str, images: bool, reader: str = "auto"):
    """Episodes as {"steps": flat dict, "episode_metadata": flat dict} of NumPy values.

    reader: "records" (``parse_records``), "tfds" (tfds' own reader) or "auto" (records when it can).
    """
    if reader not in ("auto", "records", "tfds"):
        raise ValueError(f"reader must be 'auto', 'records' or 'tfds', not {reader!r}")
    if reader == "records" or (reader == "auto" and fast_readable(builder)):
        return (unflatten_episode(flat) for flat in parse_records(builder, split, images))
    ds, _ = read_dataset(builder.data_dir, split, images)
    return ({"steps": flatten(raw["steps"]), "episode_metadata": flatten(raw.get("episode_metadata", {}))}
            for raw in ds.as_numpy_iterator())


def load(path: str | pathlib.Path, split: str = "train", images: bool = True, validate: bool = True,
         reader: str = "auto") -> list[Episode]:
    """Read every episode of an RLDS dataset folder (``.../name/config/version``).

    images=False skips the camera frames (much faster for state models).
    validate=True checks every episode and raises DatasetError at the first bad one.
    reader: see ``raw_episodes`` (both readers give the same episodes).
    """
    import tensorflow as tf

    builder = open_builder(path)
    name = dataset_name(builder)
    if split not in builder.info.splits:
        raise DatasetError(f"no split {split!r}; the dataset has {list(builder.info.splits)}", dataset=name)
    episodes = []
    iterator = iter(raw_episodes(builder, split, images, reader))
    while True:
        try:
            raw = next(iterator)
        except StopIteration:
            break
        except tf.errors.OpError as err:
            raise DatasetError(f"unreadable data ({type(err).__name__}) in {bad_shard(builder, split) or 'a shard'}: "
                               f"{err.message.splitlines()[0]}", dataset=name, episode=len(episodes)) from None
        steps = {k: to_text(v) for k, v in raw["steps"].items()}
        metadata = {k: to_text(v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v)
                    for k, v in raw["episode_metadata"].items()}
        episodes.append(Episode(steps, metadata, index=len(episodes), dataset=name))
    if validate:
        from wmlib.data.validate import validate_dataset

        validate_dataset(episodes, spec_of(builder, images))
    return episodes


def bad_shard(builder, split: str) -> str | None:
    """The first record file of a split that TensorFlow cannot read to the end."""
    import tensorflow as tf

    for path in builder.info.splits[split].filepaths:
        try:
            for _ in tf.data.TFRecordDataset(str(path)):
                pass
        except tf.errors.OpError:
            return str(path)
    return None


def spec_of(builder, images: bool = True) -> "EpisodeSpec":
    """The shapes, dtypes and action bounds an episode of this dataset must have."""
    from wmlib.data.validate import EpisodeSpec

    metadata = builder.info.metadata or {}
    fields = flatten(_feature_tree(builder.info.features["steps"].feature))
    if not images:
        fields.pop("observation/image", None)
    low, high = metadata.get("action_low"), metadata.get("action_high")
    return EpisodeSpec(fields=fields, action_low=None if low is None else np.asarray(low, np.float32),
                       action_high=None if high is None else np.asarray(high, np.float32))


def _feature_tree(features) -> dict:
    """FeaturesDict -> nested dict of (shape, numpy dtype) leaves (Text becomes object)."""
    import tensorflow_datasets as tfds

    tree = {}
    for key, feature in features.items():
        if isinstance(feature, tfds.features.FeaturesDict):
            tree[key] = _feature_tree(feature)
        elif isinstance(feature, tfds.features.Text):
            tree[key] = ((), np.dtype(object))
        else:
            tree[key] = (tuple(feature.shape), np.dtype(feature.np_dtype))
    return tree


# ------------------------------------------------------------------ batching


def rlds_transitions(path: str | pathlib.Path, split: str = "train", key: str = "state"):
    """The same (o_t, a_t, o_t+1) as ``transitions``, built inside tf.data with RLDS's own windowing.

    ``rlds.transformations.batch(steps, size=2, shift=1)`` pairs each step with the next
    one, inside each episode, so no pair crosses an episode boundary; pairs are taken
    from t = 0..T-1, so the last step only ever appears as o_t+1. Returns a
    tf.data.Dataset of dicts with obs, action, next_obs (for pipelines that stay in TF).
    """
    import rlds
    import tensorflow as tf

    ds, _ = read_dataset(path, split, images=False)

    def pairs(episode):
        steps = tf.data.Dataset.from_tensor_slices(episode["steps"])
        windows = rlds.transformations.batch(steps, size=2, shift=1, drop_remainder=True)
        return windows.map(lambda w: {"obs": w["observation"][key][0], "action": w["action"][0],
                                      "next_obs": w["observation"][key][1]})

    return ds.flat_map(pairs)


def iterate_batches(data: Transitions | WamTuples, batch_size: int, shuffle: bool = True, seed: int = 0,
                    device=None, drop_last: bool = False):
    """Yield dicts of torch tensors of ``batch_size`` rows (text fields stay NumPy)."""
    import torch

    columns = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    tensors = {k: torch.as_tensor(v, device=device) for k, v in columns.items() if v.dtype != object}
    texts = {k: v for k, v in columns.items() if v.dtype == object}
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v[idx.to(v.device)] for k, v in tensors.items()}
        batch.update({k: v[idx.numpy()] for k, v in texts.items()})
        yield batch


# ------------------------------------------------------------------ where the course data lives


def default_path(config: str = "push_cube", root: str | pathlib.Path | None = None) -> pathlib.Path:
    """The course dataset folder of one task ("push_cube", "pick_cube"), built by `make dataset`.

    The root is $WMR_DATASETS if set, else the repository's datasets/ folder.
    """
    import os

    root = pathlib.Path(root or os.environ.get("WMR_DATASETS")
                        or pathlib.Path(__file__).resolve().parents[2] / "datasets")
    path = root / "wmr_maniskill" / config / "1.0.0"
    if not (path / "dataset_info.json").exists():
        raise DatasetError(f"the course dataset is not built at {path}: run `make dataset` in the course folder "
                           "(about 4 minutes), or set WMR_DATASETS to where it is", dataset=f"wmr_maniskill/{config}")
    return path


def dataset_metadata(path: str | pathlib.Path) -> dict:
    """What the dataset records beside its episodes (metadata.json): layouts, action space, conventions."""
    return dict(open_builder(path).info.metadata or {})


def state_layout(path: str | pathlib.Path) -> dict[str, slice]:
    """Name -> slice of the state vector, e.g. {"extra/obj_pose": slice(28, 35), ...}."""
    layout = dataset_metadata(path).get("state_layout")
    if not layout:
        raise DatasetError("the dataset records no state_layout", dataset=str(path))
    return {name: slice(start, stop) for name, (start, stop) in layout.items()}
