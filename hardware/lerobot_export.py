"""Export course episodes as a LeRobotDataset (format v3.0), written with pyarrow and ffmpeg.

LeRobot needs a newer Python than the course, so we write its on-disk format ourselves:

    from hardware.lerobot_export import export, check_layout
    root = export(episodes, "out/push_cube_lerobot", fps=20, robot_type="panda")
    assert check_layout(root) == []

Layout written (LeRobotDataset v3.0, ``codebase_version = "v3.0"`` in lerobot's
``datasets/dataset_metadata.py``; many episodes share one file, and metadata says where each lives):

    meta/info.json       codebase_version, robot_type, total_episodes, total_frames, total_tasks,
                         chunks_size (files per chunk folder), data_files_size_in_mb, video_files_size_in_mb,
                         fps (int), splits {"train": "0:E"}, data_path and video_path (templates below),
                         features {key: {dtype, shape, names[, info]}}: the frame columns (observation.state,
                         action, next.reward, next.done as in LeRobot's sim recordings), the cameras
                         (dtype "video", shape [H, W, 3], info with video.height/width/codec/pix_fmt/fps/
                         channels, has_audio, is_depth_map and the encoder settings) and the five
                         bookkeeping columns timestamp (float32), frame_index, episode_index, index,
                         task_index (int64), all of shape [1].
    meta/stats.json      {feature: {min, max, mean, std, count, q01, q10, q50, q90, q99}} as lists; vectors
                         (D,), scalars (1,), cameras (3, 1, 1) per channel in [0, 1]; count (1,). Exact over
                         all frames; cameras pooled from per-episode frame samples, their quantiles bounds.
    meta/tasks.parquet   task_index (int64) and task (string), stored as a pandas frame indexed by task.
    meta/episodes/chunk-XXX/file-XXX.parquet
                         (we write one file) one row per episode: episode_index, tasks (list of str), length,
                         data/chunk_index, data/file_index, dataset_from_index, dataset_to_index (global row
                         range), videos/<key>/chunk_index, .../file_index, .../from_timestamp,
                         .../to_timestamp (seconds inside that mp4), stats/<feature>/<stat> (the episode's
                         own statistics), meta/episodes/chunk_index, meta/episodes/file_index.
    data/chunk-XXX/file-XXX.parquet
                         one row per frame, one row group per episode: every non-video feature (vectors as
                         fixed-size lists, shape-[1] features as scalars), then the bookkeeping columns.
    videos/<key>/chunk-XXX/file-XXX.mp4
                         the camera's frames of consecutive episodes, back to back at fps; episode e's
                         frame k is shown at from_timestamp + k / fps.

Episodes never straddle files. A new file starts when the next episode would take the current one past
its size limit (data: the episode's uncompressed table; video: the episode's own encoded mp4, joined to
the others without re-encoding); file number n lives in chunk n // chunks_size as file n % chunks_size.
"""
from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import tempfile

import imageio_ffmpeg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from wmlib.data.episodes import DatasetError, Episode

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)
BOOKKEEPING = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
               "task_index": "int64"}
INFO_KEYS = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
             "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
             "features")
VIDEO_INFO_KEYS = ("video.height", "video.width", "video.codec", "video.pix_fmt", "video.fps", "video.channels")
ENCODER = {"g": 2, "crf": 30}  # LeRobot's defaults: a key frame every 2 frames keeps random access cheap
ARROW = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "int32": pa.int32(),
         "bool": pa.bool_(), "string": pa.string()}
STATS_SAMPLE_FRAMES = 100  # camera statistics use at most this many evenly spaced frames per episode


# ----------------------------------------------------------------------------------------------- export

def export(episodes: list[Episode], out: str | pathlib.Path, *, fps: float, robot_type: str,
           state_key: str = "observation/state", action_key: str = "action",
           image_keys: dict[str, str] | None = None, state_names: list[str] | None = None,
           action_names: list[str] | None = None, vcodec: str | None = None,
           data_files_size_in_mb: float = DATA_FILES_SIZE_IN_MB,
           video_files_size_in_mb: float = VIDEO_FILES_SIZE_IN_MB, chunks_size: int = CHUNKS_SIZE) -> pathlib.Path:
    """Write ``episodes`` as a LeRobotDataset v3.0 folder at ``out`` (absent or empty) and return its path.

    An episode of T + 1 steps becomes T frames. LeRobot stores one row per frame with the action taken
    at that frame, so the course's last step (the final observation o_T, whose action means nothing) is
    dropped: frame t holds o_t (state ``(D,)``, camera images ``(H, W, 3)`` uint8) and a_t ``(A,)``.
    Per frame also: ``next.reward`` (the reward a_t earned, when the episodes record rewards) and
    ``next.done`` (True on each episode's last frame: the episode ends after that action, whether it was
    terminated or truncated; LeRobot's own recorders mark it the same way). The episode's
    ``language_instruction`` becomes its task (one per frame). Statistics per feature go to
    meta/stats.json (all frames) and to each episode's row (that episode's frames).

    fps: frames per second, an integer (LeRobot stores fps as an int); an episode whose metadata records
        another ``control_freq`` is refused.
    state_key, action_key: the course fields exported as ``observation.state`` and ``action`` (float32).
    image_keys: course image field -> LeRobot camera key, default {"observation/image":
        "observation.images.front"}; {} exports no video.
    state_names, action_names: one name per dimension (default "state_0", ... and "action_0", ...).
    vcodec: "libsvtav1" (AV1, LeRobot's default), "libx264" (H.264) or None: AV1 when this ffmpeg has it,
        else H.264.
    data_files_size_in_mb, video_files_size_in_mb, chunks_size: when to start a new file / chunk folder.

    Raises DatasetError naming the episode (its position in ``episodes``, which becomes its
    episode_index) for bad input: a missing field or instruction, shapes or frame sizes that differ
    between episodes, another control frequency.
    """
    image_keys = {"observation/image": "observation.images.front"} if image_keys is None else dict(image_keys)
    fps = _integer_fps(fps)
    codec = _pick_codec(vcodec) if image_keys else None
    out = pathlib.Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: export writes a new dataset")
    shapes = _check_episodes(episodes, fps, state_key, action_key, image_keys)
    features = _features(shapes, state_names, action_names, image_keys,
                         with_reward=all("reward" in ep.steps for ep in episodes))

    tasks: dict[str, int] = {}  # instruction -> task_index, in order of first appearance
    frames, rows, total = [], [], 0  # per episode: its frame columns, its meta/episodes row
    for i, ep in enumerate(episodes):
        texts = [_text(t) for t in ep.steps["language_instruction"][:-1]]
        task_index = [tasks.setdefault(text, len(tasks)) for text in texts]
        frames.append(_frames(ep, i, total, fps, state_key, action_key, task_index, "next.reward" in features))
        length = len(texts)
        rows.append({"episode_index": i, "tasks": list(dict.fromkeys(texts)), "length": length,
                     "dataset_from_index": total, "dataset_to_index": total + length})
        total += length
    columns = [k for k, ft in features.items() if ft["dtype"] != "video"]

    out.mkdir(parents=True, exist_ok=True)
    for row, (chunk, file) in zip(rows, _write_data(out, frames, features, columns, data_files_size_in_mb,
                                                    chunks_size)):
        row["data/chunk_index"], row["data/file_index"] = chunk, file
    episode_stats = [{key: _stats(_as_2d(f[key])) for key in columns} for f in frames]
    for source, key in image_keys.items():
        videos = [ep.steps[source][:-1] for ep in episodes]
        placed = _write_video(out, key, videos, fps, codec, video_files_size_in_mb, chunks_size)
        for row, where, stats, pictures in zip(rows, placed, episode_stats, videos):
            row.update({f"videos/{key}/{name}": value for name, value in where.items()})
            stats[key] = _image_stats(_stats_sample(pictures))
        features[key]["info"] = _video_info(out / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
                                            codec)

    stats = {key: _stats(np.concatenate([_as_2d(f[key]) for f in frames])) for key in columns}
    stats.update({key: _pool([s[key] for s in episode_stats]) for key in image_keys.values()})
    _write_episodes(out, rows, episode_stats)
    _write_tasks(out, tasks)
    _write_json(out / "meta/stats.json", {key: _listed(s) for key, s in stats.items()})
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": len(episodes),
            "total_frames": total, "total_tasks": len(tasks), "chunks_size": chunks_size,
            "data_files_size_in_mb": data_files_size_in_mb, "video_files_size_in_mb": video_files_size_in_mb,
            "fps": fps, "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if image_keys else None, "features": features}
    _write_json(out / "meta/info.json", info)
    return out


def _integer_fps(fps: float) -> int:
    if not (fps > 0 and float(fps).is_integer()):
        raise ValueError(f"fps must be a positive whole number (LeRobot stores it as an int), not {fps!r}")
    return int(fps)


@functools.cache
def _encoders() -> frozenset[str]:
    """The video encoders of imageio-ffmpeg's ffmpeg."""
    listing = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True,
                             text=True, check=True).stdout
    return frozenset(line.split()[1] for line in listing.splitlines() if line.startswith(" V"))


def _pick_codec(vcodec: str | None) -> str:
    if vcodec is None:
        return "libsvtav1" if "libsvtav1" in _encoders() else "libx264"
    codec = {"h264": "libx264", "av1": "libsvtav1"}.get(vcodec, vcodec)
    if codec not in ("libsvtav1", "libx264"):
        raise ValueError(f"vcodec must be 'libsvtav1' or 'libx264' (or None to choose), not {vcodec!r}")
    if codec not in _encoders():
        raise ValueError(f"this ffmpeg ({imageio_ffmpeg.get_ffmpeg_exe()}) has no {codec} encoder")
    return codec


def _check_episodes(episodes: list[Episode], fps: int, state_key: str, action_key: str,
                    image_keys: dict[str, str]) -> dict[str, tuple]:
    """Refuse what cannot become one LeRobot dataset; return each field's per-step shape."""
    if not episodes:
        raise ValueError("no episodes to export")
    for key in image_keys.values():
        if "/" in key:
            raise ValueError(f"LeRobot feature names cannot contain '/': {key!r}")
    fields = (state_key, action_key, "language_instruction", *image_keys)
    shapes: dict[str, tuple] = {}
    for i, ep in enumerate(episodes):
        def bad(problem, field=None):
            return DatasetError(problem, dataset=ep.dataset, episode=i, field=field)

        freq = ep.metadata.get("control_freq")
        if freq is not None and float(freq) != fps:
            raise bad(f"recorded at {freq} Hz, but the export is at fps={fps}: export each rate separately")
        for field in fields:
            if field not in ep.steps:
                hint = " (pass image_keys={} to export without video)" if field in image_keys else ""
                raise bad(f"has no field {field!r}{hint}", field)
        length = len(ep.steps[state_key])
        if length < 2:
            raise bad(f"has {length} step(s): at least 2 are needed for one frame (o_0, a_0)")
        for field in fields:
            value = np.asarray(ep.steps[field])
            if len(value) != length:
                raise bad(f"has {len(value)} steps but {state_key!r} has {length}", field)
            if field in image_keys and (value.dtype != np.uint8 or value.ndim != 4 or value.shape[-1] != 3):
                raise bad(f"images must be (T+1, H, W, 3) uint8, not {value.shape} {value.dtype}", field)
            if field in image_keys and (value.shape[1] % 2 or value.shape[2] % 2):
                raise bad(f"frames of {value.shape[1]}x{value.shape[2]}: yuv420p video needs an even height "
                          "and width", field)
            shape = value.shape[1:]
            if shapes.setdefault(field, shape) != shape:
                size = "frames of a different size" if field in image_keys else "a different shape"
                raise bad(f"{size}: {shape} per step, but episode 0 has {shapes[field]}", field)
        for t, text in enumerate(ep.steps["language_instruction"][:-1]):
            if not text:
                raise DatasetError("has no language instruction: LeRobot needs a task for every frame",
                                   dataset=ep.dataset, episode=i, step=t, field="language_instruction")
    return {"observation.state": shapes[state_key], "action": shapes[action_key],
            **{key: shapes[source] for source, key in image_keys.items()}}


def _features(shapes: dict[str, tuple], state_names, action_names, image_keys: dict[str, str],
              with_reward: bool) -> dict[str, dict]:
    """info.json's features: frame columns, cameras, then LeRobot's bookkeeping columns."""
    features = {}
    for key, names in (("observation.state", state_names), ("action", action_names)):
        if len(shapes[key]) != 1:
            raise ValueError(f"{key} must be a vector per step, not shape {shapes[key]}")
        dim = shapes[key][0]
        short = key.split(".")[-1]
        names = list(names) if names is not None else [f"{short}_{d}" for d in range(dim)]
        if len(names) != dim:
            raise ValueError(f"{len(names)} names for {key}, which has {dim} dimensions")
        features[key] = {"dtype": "float32", "shape": [dim], "names": names}
    for key in image_keys.values():
        features[key] = {"dtype": "video", "shape": list(shapes[key]), "names": ["height", "width", "channels"]}
    if with_reward:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    features.update({key: {"dtype": dtype, "shape": [1], "names": None} for key, dtype in BOOKKEEPING.items()})
    return features


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _frames(ep: Episode, episode_index: int, start: int, fps: int, state_key: str, action_key: str,
            task_index: list[int], with_reward: bool) -> dict[str, np.ndarray]:
    """One episode's frame columns, each (T,) or (T, D): its T + 1 steps without the last; rows from ``start``."""
    steps = len(task_index)
    frame_index = np.arange(steps, dtype=np.int64)
    columns = {"observation.state": np.asarray(ep.steps[state_key][:-1], np.float32),
               "action": np.asarray(ep.steps[action_key][:-1], np.float32),
               "next.done": frame_index == steps - 1, "timestamp": (frame_index / fps).astype(np.float32),
               "frame_index": frame_index, "episode_index": np.full(steps, episode_index, np.int64),
               "index": start + frame_index, "task_index": np.array(task_index, np.int64)}
    if with_reward:
        columns["next.reward"] = np.asarray(ep.steps["reward"][:-1], np.float32)
    return columns


def _column(values: np.ndarray, feature: dict) -> pa.Array:
    """(T,) -> a scalar column, (T, D) -> a column of fixed-size lists of D."""
    dtype = ARROW[feature["dtype"]]
    if feature["shape"] == [1]:
        return pa.array(values.reshape(-1), dtype)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), dtype), feature["shape"][0])


def _file_numbers(sizes: list[int], size_in_mb: float) -> list[int]:
    """Which file each episode goes to: episodes in order, a new file when the next would pass the limit."""
    numbers, number, used = [], 0, 0
    for size in sizes:
        if used and used + size > size_in_mb * 2**20:
            number, used = number + 1, 0
        numbers.append(number)
        used += size
    return numbers


def _chunk_file(number: int, chunks_size: int) -> tuple[int, int]:
    """File number n -> (chunk index, file index)."""
    return number // chunks_size, number % chunks_size


def _write_data(out: pathlib.Path, frames: list[dict], features: dict, columns: list[str], size_in_mb: float,
                chunks_size: int) -> list[tuple[int, int]]:
    """Write the frame tables, one row group per episode; return each episode's (chunk, file)."""
    tables = [pa.table({key: _column(f[key], features[key]) for key in columns}) for f in frames]
    numbers = _file_numbers([t.nbytes for t in tables], size_in_mb)  # uncompressed: files stay under the limit
    for number in sorted(set(numbers)):
        chunk, file = _chunk_file(number, chunks_size)
        path = out / DATA_PATH.format(chunk_index=chunk, file_index=file)
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = [t for t, n in zip(tables, numbers) if n == number]
        with pq.ParquetWriter(path, mine[0].schema, compression="snappy") as writer:
            for table in mine:
                writer.write_table(table)
    return [_chunk_file(n, chunks_size) for n in numbers]


def _encode(path: pathlib.Path, frames: np.ndarray, fps: int, codec: str) -> None:
    """Encode (T, H, W, 3) uint8 frames as an mp4 at fps, with LeRobot's encoder settings."""
    params = ["-g", str(ENCODER["g"]), "-crf", str(ENCODER["crf"])] + (["-preset", "12"] if codec == "libsvtav1"
                                                                       else [])
    writer = imageio_ffmpeg.write_frames(str(path), (frames.shape[2], frames.shape[1]), fps=fps, codec=codec,
                                         quality=None, macro_block_size=1, ffmpeg_log_level="error",
                                         output_params=params)
    before = os.environ.get("SVT_LOG")
    os.environ["SVT_LOG"] = "1"  # SVT-AV1 prints its banner unless told to report errors only
    try:
        writer.send(None)  # starts ffmpeg
    finally:
        if before is None:
            del os.environ["SVT_LOG"]
        else:
            os.environ["SVT_LOG"] = before
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()


def _concatenate(parts: list[pathlib.Path], path: pathlib.Path) -> None:
    """Join mp4 files of one codec and size back to back, without re-encoding."""
    listing = parts[0].parent / "parts.txt"
    listing.write_text("".join(f"file '{part.name}'\n" for part in parts))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", "-f", "concat",
                    "-safe", "0", "-i", str(listing), "-c", "copy", str(path)], check=True, capture_output=True)


def _write_video(out: pathlib.Path, key: str, episodes_frames: list[np.ndarray], fps: int, codec: str,
                 size_in_mb: float, chunks_size: int) -> list[dict]:
    """Encode each episode's (T, H, W, 3) frames, then join them into files; return where each episode went."""
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        parts = [pathlib.Path(tmp) / f"episode-{i:06d}.mp4" for i in range(len(episodes_frames))]
        for part, frames in zip(parts, episodes_frames):
            _encode(part, frames, fps, codec)
        numbers = _file_numbers([part.stat().st_size for part in parts], size_in_mb)
        placed, shown = [], 0
        for i, (number, frames) in enumerate(zip(numbers, episodes_frames)):
            shown = 0 if i == 0 or number != numbers[i - 1] else shown
            chunk, file = _chunk_file(number, chunks_size)
            placed.append({"chunk_index": chunk, "file_index": file, "from_timestamp": shown / fps,
                           "to_timestamp": (shown + len(frames)) / fps})
            shown += len(frames)
        for number in sorted(set(numbers)):
            chunk, file = _chunk_file(number, chunks_size)
            path = out / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            mine = [part for part, n in zip(parts, numbers) if n == number]
            if len(mine) == 1:
                mine[0].replace(path)
            else:
                _concatenate(mine, path)
    return placed


def _probe(path: pathlib.Path) -> dict:
    """ffmpeg's description of a video: codec, pix_fmt, fps, size (W, H), duration."""
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(reader)
    finally:
        reader.close()


def _video_info(path: pathlib.Path, codec: str) -> dict:
    meta = _probe(path)
    width, height = meta["size"]
    info = {"video.height": height, "video.width": width, "video.codec": meta["codec"],
            "video.pix_fmt": meta["pix_fmt"].split("(")[0], "video.fps": int(round(meta["fps"])),
            "video.channels": 3, "has_audio": False, "video.g": ENCODER["g"], "video.crf": ENCODER["crf"]}
    if codec == "libsvtav1":
        info["video.preset"] = 12
    info["is_depth_map"] = False
    return info


# ------------------------------------------------------------------------------------------- statistics

def _as_2d(values: np.ndarray) -> np.ndarray:
    """(T,) -> (T, 1); (T, D) stays."""
    return values.reshape(len(values), -1)


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-column statistics of x (N, D): min, max, mean, std, quantiles, each (D,); count (1,)."""
    x = x.astype(np.float64)
    stats = {"min": x.min(0), "max": x.max(0), "mean": x.mean(0), "std": x.std(0), "count": np.array([len(x)])}
    stats.update(zip(QUANTILES, np.quantile(x, list(QUANTILES.values()), axis=0)))
    return stats


def _stats_sample(frames: np.ndarray) -> np.ndarray:
    """At most STATS_SAMPLE_FRAMES evenly spaced frames (T, H, W, 3), large ones thinned to about 150 px."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), STATS_SAMPLE_FRAMES)).round().astype(int))
    stride = max(frames.shape[1:3]) // 150 if max(frames.shape[1:3]) >= 300 else 1
    return frames[picks, ::stride, ::stride]


def _image_stats(sample: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of (N, H, W, 3) uint8 frames, in [0, 1], each (3, 1, 1); count = N frames."""
    stats = {k: v.reshape(3, 1, 1) for k, v in _stats(sample.reshape(-1, 3) / 255.0).items() if k != "count"}
    return {**stats, "count": np.array([len(sample)])}


def _pool(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset statistics from episode statistics: exact count, min, max, mean and std; the quantiles are
    bounds (lowest episode value for q <= 50, highest above), as LeRobot aggregates them."""
    counts = np.array([p["count"][0] for p in parts], np.float64)
    weights = (counts / counts.sum()).reshape(-1, *[1] * parts[0]["mean"].ndim)
    means = np.stack([p["mean"] for p in parts])
    mean = (weights * means).sum(0)
    variance = (weights * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(0)
    pooled = {"min": np.min([p["min"] for p in parts], 0), "max": np.max([p["max"] for p in parts], 0),
              "mean": mean, "std": np.sqrt(variance), "count": np.array([int(counts.sum())])}
    for q, level in QUANTILES.items():
        pooled[q] = (np.min if level <= 0.5 else np.max)([p[q] for p in parts], 0)
    return pooled


def _listed(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


# -------------------------------------------------------------------------------------------- metadata

def _write_json(path: pathlib.Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4) + "\n")


def _write_episodes(out: pathlib.Path, rows: list[dict], episode_stats: list[dict]) -> None:
    """meta/episodes: one row per episode (all in one file), its own stats flattened as stats/<key>/<stat>."""
    order = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
             "dataset_to_index"]
    order += [k for k in rows[0] if k.startswith("videos/")]
    table = {k: [row[k] for row in rows] for k in order}
    for key in episode_stats[0]:
        for stat in STAT_KEYS:
            table[f"stats/{key}/{stat}"] = [s[key][stat].tolist() for s in episode_stats]
    table["meta/episodes/chunk_index"] = [0] * len(rows)
    table["meta/episodes/file_index"] = [0] * len(rows)
    path = out / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)


def _write_tasks(out: pathlib.Path, tasks: dict[str, int]) -> None:
    """meta/tasks.parquet as pandas would write a frame indexed by "task" (LeRobot reads it with pandas)."""
    pandas_meta = {"index_columns": ["task"], "column_indexes": [
        {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
         "metadata": {"encoding": "UTF-8"}}], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
         "metadata": None},
        {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
        "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.0"}
    table = pa.table({"task_index": pa.array(list(tasks.values()), pa.int64()),
                      "task": pa.array(list(tasks), pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), out / "meta/tasks.parquet")


# --------------------------------------------------------------------------------------------- checking

def check_layout(root: str | pathlib.Path) -> list[str]:
    """Every way the folder at ``root`` departs from the LeRobotDataset v3.0 layout above; [] when none.

    Re-reads info.json, stats.json, tasks and episodes metadata, every data file (columns, arrow types,
    row counts, index continuity, timestamps) and every video (frame count, size, fps, episode time
    ranges), and checks that they agree with each other.
    """
    root = pathlib.Path(root)
    problems: list[str] = []
    info = _read_json(root / "meta/info.json", problems)
    if info is None:
        return problems
    problems += [f"info.json: missing key {k!r}" for k in INFO_KEYS if k not in info]
    problems += [f"info.json: unexpected key {k!r}" for k in info if k not in (*INFO_KEYS, "tools")]
    if problems:
        return problems
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"info.json: codebase_version {info['codebase_version']!r}, expected {CODEBASE_VERSION!r}")
    features = info["features"]
    videos = [k for k, ft in features.items() if ft.get("dtype") == "video"]
    expected_paths = {"data_path": DATA_PATH, "video_path": VIDEO_PATH if videos else None}
    problems += [f"info.json: {k} is {info[k]!r}, expected {v!r}" for k, v in expected_paths.items() if info[k] != v]
    if not isinstance(info["fps"], int) or info["fps"] <= 0:
        problems.append(f"info.json: fps must be a positive int, not {info['fps']!r}")
        return problems
    problems += _check_features(features)
    if info["splits"] != {"train": f"0:{info['total_episodes']}"}:
        problems.append(f"info.json: splits {info['splits']!r} do not cover the {info['total_episodes']} episodes")
    problems += _check_stats(_read_json(root / "meta/stats.json", problems), features, "stats.json")

    tasks = _read_parquet(root / "meta/tasks.parquet", problems)
    episode_files = sorted((root / "meta/episodes").glob("*/*.parquet"))
    if not episode_files:
        problems.append("meta/episodes: no chunk-XXX/file-XXX.parquet")
    episodes = [t for t in (_read_parquet(p, problems) for p in episode_files) if t is not None]
    if tasks is None or not episodes:
        return problems
    problems += _check_tasks(tasks, info)
    episodes = pa.concat_tables(episodes, promote_options="default").to_pylist()
    problems += _check_episodes_table(episodes, info, videos, set(tasks.column("task").to_pylist()))
    if problems:
        return problems
    problems += _check_data(root, info, episodes)
    for key in videos:
        problems += _check_video(root, info, key, episodes)
    return problems


def _read_json(path: pathlib.Path, problems: list[str]) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        problems.append(f"{path.name}: cannot read ({err})")
        return None


def _read_parquet(path: pathlib.Path, problems: list[str]) -> pa.Table | None:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        problems.append(f"{path}: cannot read ({err})")
        return None


def _check_features(features: dict) -> list[str]:
    problems = []
    for key, dtype in BOOKKEEPING.items():
        if features.get(key, {}).get("dtype") != dtype or features[key].get("shape") != [1]:
            problems.append(f"info.json: feature {key!r} must be {dtype} of shape [1]")
    for key, ft in features.items():
        if "/" in key or not {"dtype", "shape", "names"} <= set(ft):
            problems.append(f"info.json: feature {key!r} needs dtype, shape and names, and no '/' in its name")
        elif ft["dtype"] == "video":
            missing = [k for k in VIDEO_INFO_KEYS if k not in ft.get("info", {})]
            if missing or len(ft["shape"]) != 3:
                problems.append(f"info.json: video {key!r} needs shape [H, W, C] and info {missing}")
            elif [ft["info"]["video.height"], ft["info"]["video.width"]] != ft["shape"][:2]:
                problems.append(f"info.json: video {key!r} info size differs from its shape {ft['shape']}")
        elif ft["dtype"] not in ARROW:
            problems.append(f"info.json: feature {key!r} has an unknown dtype {ft['dtype']!r}")
    return problems


def _stat_shape(ft: dict) -> list[int]:
    return [ft["shape"][2], 1, 1] if ft["dtype"] == "video" else ft["shape"]


def _check_stats(stats: dict | None, features: dict, where: str) -> list[str]:
    if stats is None:
        return []
    problems = []
    for key, ft in features.items():
        if ft["dtype"] == "string":
            continue
        if set(stats.get(key, {})) != set(STAT_KEYS):
            problems.append(f"{where}: {key!r} needs exactly {list(STAT_KEYS)}, has {sorted(stats.get(key, {}))}")
            continue
        for stat, value in stats[key].items():
            shape = [1] if stat == "count" else _stat_shape(ft)
            if list(np.shape(value)) != shape:
                problems.append(f"{where}: {key}/{stat} has shape {list(np.shape(value))}, expected {shape}")
    return problems


def _check_tasks(tasks: pa.Table, info: dict) -> list[str]:
    problems = []
    if tasks.schema.names != ["task_index", "task"] or tasks.schema.types != [pa.int64(), pa.string()]:
        problems.append(f"tasks.parquet: columns {tasks.schema}, expected task_index int64 and task string")
    elif tasks.column("task_index").to_pylist() != list(range(tasks.num_rows)):
        problems.append("tasks.parquet: task_index is not 0..n-1")
    meta = json.loads((tasks.schema.metadata or {}).get(b"pandas", b"{}"))
    if meta.get("index_columns") != ["task"]:
        problems.append("tasks.parquet: not indexed by 'task' (pandas metadata)")
    if tasks.num_rows != info["total_tasks"]:
        problems.append(f"tasks.parquet: {tasks.num_rows} tasks, info.json total_tasks {info['total_tasks']}")
    return problems


def _check_episodes_table(episodes: list[dict], info: dict, videos: list[str], tasks: set[str]) -> list[str]:
    problems = []
    required = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"]
    required += [f"videos/{key}/{name}" for key in videos
                 for name in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    missing = [k for k in required if k not in episodes[0]]
    if missing:
        return [f"meta/episodes: missing columns {missing}"]
    if [e["episode_index"] for e in episodes] != list(range(len(episodes))):
        problems.append("meta/episodes: episode_index is not 0..E-1 in order")
    if len(episodes) != info["total_episodes"]:
        problems.append(f"meta/episodes: {len(episodes)} episodes, info.json total_episodes {info['total_episodes']}")
    frames = sum(e["length"] for e in episodes)
    if frames != info["total_frames"]:
        problems.append(f"meta/episodes: {frames} frames in all, info.json total_frames {info['total_frames']}")
    start = 0
    for e in episodes:
        name = f"meta/episodes: episode {e['episode_index']}"
        if (e["dataset_from_index"], e["dataset_to_index"]) != (start, start + e["length"]):
            problems.append(f"{name}: rows {e['dataset_from_index']}..{e['dataset_to_index']}, expected "
                            f"{start}..{start + e['length']}")
        start += e["length"]
        if not e["tasks"] or not set(e["tasks"]) <= tasks:
            problems.append(f"{name}: tasks {e['tasks']} are not in tasks.parquet")
        stats = {}
        for column, value in e.items():
            if column.startswith("stats/"):
                key, _, stat = column[len("stats/"):].rpartition("/")
                stats.setdefault(key, {})[stat] = value
        problems += _check_stats(stats, info["features"], name)
    return problems


def _check_data(root: pathlib.Path, info: dict, episodes: list[dict]) -> list[str]:
    features = info["features"]
    columns = [k for k, ft in features.items() if ft["dtype"] != "video"]
    files = sorted({(e["data/chunk_index"], e["data/file_index"]) for e in episodes})
    paths = {root / DATA_PATH.format(chunk_index=c, file_index=f) for c, f in files}
    problems = [f"data: {p.relative_to(root)} is in no episode's metadata (LeRobot would read it too)"
                for p in sorted(set((root / "data").glob("*/*.parquet")) - paths)]
    rows: dict[str, list] = {k: [] for k in ("index", "episode_index", "frame_index", "timestamp", "task_index")}
    for chunk, file in files:
        path = root / DATA_PATH.format(chunk_index=chunk, file_index=file)
        table = _read_parquet(path, problems)
        if table is None:
            continue
        name = path.relative_to(root)
        if table.schema.names != columns:
            problems.append(f"{name}: columns {table.schema.names}, expected {columns}")
            continue
        problems += [f"{name}: column {k!r} is {table.schema.field(k).type}, expected {features[k]['dtype']} of "
                     f"shape {features[k]['shape']}" for k in columns if not _type_ok(table.schema.field(k).type,
                                                                                         features[k])]
        mine = [e for e in episodes if (e["data/chunk_index"], e["data/file_index"]) == (chunk, file)]
        if table.num_rows != sum(e["length"] for e in mine):
            problems.append(f"{name}: {table.num_rows} rows, its episodes' lengths add up to "
                            f"{sum(e['length'] for e in mine)}")
        for k in rows:
            rows[k].append(table.column(k).to_numpy())
    if problems:
        return problems
    rows = {k: np.concatenate(v) for k, v in rows.items()}
    if not np.array_equal(rows["index"], np.arange(info["total_frames"])):
        problems.append(f"data: index is not 0..{info['total_frames'] - 1} in file order")
        return problems
    for e in episodes:
        span = slice(e["dataset_from_index"], e["dataset_to_index"])
        name = f"data: episode {e['episode_index']}"
        if not np.all(rows["episode_index"][span] == e["episode_index"]):
            problems.append(f"{name}: rows {span.start}..{span.stop} hold other episodes")
        if not np.array_equal(rows["frame_index"][span], np.arange(e["length"])):
            problems.append(f"{name}: frame_index is not 0..{e['length'] - 1}")
        if not np.allclose(rows["timestamp"][span], np.arange(e["length"]) / info["fps"], atol=1e-4):
            problems.append(f"{name}: timestamp is not frame_index / fps")
        if not np.all((rows["task_index"][span] >= 0) & (rows["task_index"][span] < info["total_tasks"])):
            problems.append(f"{name}: task_index outside 0..{info['total_tasks'] - 1}")
    return problems


def _type_ok(actual: pa.DataType, ft: dict) -> bool:
    """Whether a parquet column type holds the feature: scalars for shape [1], fixed-size lists for [D]."""
    base = ARROW[ft["dtype"]]
    if ft["shape"] == [1]:
        return actual == base
    return (len(ft["shape"]) == 1 and pa.types.is_fixed_size_list(actual) and actual.list_size == ft["shape"][0]
            and actual.value_type == base)


def _check_video(root: pathlib.Path, info: dict, key: str, episodes: list[dict]) -> list[str]:
    problems, fps = [], info["fps"]
    height, width, _ = info["features"][key]["shape"]
    files = sorted({(e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"]) for e in episodes})
    for chunk, file in files:
        path = root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
        name = path.relative_to(root)
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        mine = [e for e in episodes if (e[f"videos/{key}/chunk_index"], e[f"videos/{key}/file_index"]) == (chunk, file)]
        shown = 0
        for e in mine:
            begin, end = e[f"videos/{key}/from_timestamp"], e[f"videos/{key}/to_timestamp"]
            if abs(begin - shown / fps) > 1e-4 or abs(end - begin - e["length"] / fps) > 1e-4:
                problems.append(f"{name}: episode {e['episode_index']} spans {begin:.4f}..{end:.4f} s, expected "
                                f"{shown / fps:.4f}..{(shown + e['length']) / fps:.4f} s")
            shown += e["length"]
        try:
            meta, (count, _) = _probe(path), imageio_ffmpeg.count_frames_and_secs(str(path))
        except (OSError, RuntimeError, StopIteration, ValueError) as err:
            problems.append(f"{name}: cannot decode ({err})")
            continue
        if count != shown:
            problems.append(f"{name}: {count} frames, its episodes' lengths add up to {shown}")
        if tuple(meta["size"]) != (width, height):
            problems.append(f"{name}: frames are {meta['size'][0]}x{meta['size'][1]} (WxH), expected {width}x{height}")
        if abs(meta["fps"] - fps) > 1e-3:
            problems.append(f"{name}: {meta['fps']} fps, expected {fps}")
    return problems
