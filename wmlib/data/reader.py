"""Reading RLDS datasets through tfds: episode folders to ``Episode`` lists, and where the
course's own data lives.

    from wmlib.data import load, default_path
    episodes = load(default_path("push_cube"), images=False)   # every episode, validated

Two readers give the same episodes: tfds' own (``read_dataset``) and a faster one that parses the
record files in chunks (``parse_records``); ``load`` takes the fast one when it can.
"""
from __future__ import annotations

import pathlib

import numpy as np

from wmlib.data.episodes import DatasetError, Episode
from wmlib.data.validate import EpisodeSpec, validate_dataset


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


def spec_of(builder, images: bool = True) -> EpisodeSpec:
    """The shapes, dtypes and action bounds an episode of this dataset must have."""
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


def rlds_transitions(path: str | pathlib.Path, split: str = "train", key: str = "state"):
    """The same (o_t, a_t, o_t+1) as ``transitions``, built inside tf.data with RLDS's own windowing.

    ``rlds.transformations.batch(steps, size=2, shift=1)`` pairs each step with the next
    one, inside each episode, so no pair crosses an episode boundary; pairs are taken
    from t = 0..T-1, so the last step only ever appears as o_t+1. Returns a tf.data.Dataset
    of dicts with state, action, next_state (``Transitions``' names; for pipelines that stay in TF).
    """
    import rlds
    import tensorflow as tf

    ds, _ = read_dataset(path, split, images=False)

    def pairs(episode):
        steps = tf.data.Dataset.from_tensor_slices(episode["steps"])
        windows = rlds.transformations.batch(steps, size=2, shift=1, drop_remainder=True)
        return windows.map(lambda w: {"state": w["observation"][key][0], "action": w["action"][0],
                                      "next_state": w["observation"][key][1]})

    return ds.flat_map(pairs)


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
