"""hardware.lerobot_export: course episodes -> a LeRobotDataset v3.0 folder, and its layout check.

Fast (no simulator): small episodes built with NumPy, plus the fixture dataset under datasets/fixture/.
"""
import json
import pathlib
import shutil
import subprocess

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hardware.lerobot_export import check_layout, export
from wmlib.data.episodes import DatasetError, Episode

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "datasets/fixture/wmr_maniskill/push_cube/1.0.0"
FPS = 20
H, W = 32, 48  # not square, so a swapped height and width shows
VIDEO = "videos/observation.images.front/chunk-000/file-000.mp4"


def gray(episode: int, step: int) -> int:
    """The grey level of frame ``step`` of episode ``episode``: distinct per frame, so order can be checked."""
    return 20 + 9 * step + 4 * episode


def make_episode(i: int, steps: int, instruction: str = "push the cube", state_dim: int = 5,
                 size: tuple = (H, W)) -> Episode:
    """An episode of ``steps`` steps (steps - 1 actions); the last step's action and reward are NaN."""
    rng = np.random.default_rng(i)
    action = rng.normal(size=(steps, 3)).astype(np.float32)
    action[-1] = np.nan  # meaningless on the last step: it must never reach the export
    reward = rng.normal(size=steps).astype(np.float32)
    reward[-1] = np.nan
    images = np.stack([np.full((*size, 3), gray(i, t), np.uint8) for t in range(steps)])
    return Episode(steps={
        "observation/state": rng.normal(size=(steps, state_dim)).astype(np.float32),
        "observation/image": images, "action": action, "reward": reward,
        "discount": np.ones(steps, np.float32), "is_first": np.arange(steps) == 0,
        "is_last": np.arange(steps) == steps - 1, "is_terminal": np.zeros(steps, bool),
        "language_instruction": np.array([instruction] * steps, dtype=object)},
        metadata={"control_freq": FPS}, index=i, dataset="toy")


@pytest.fixture(scope="module")
def episodes():
    return [make_episode(0, 6), make_episode(1, 9, "open the drawer"), make_episode(2, 4)]


@pytest.fixture(scope="module")
def root(episodes, tmp_path_factory):
    return export(episodes, tmp_path_factory.mktemp("lerobot") / "toy", fps=FPS, robot_type="panda",
                  action_names=["dx", "dy", "dz"])


def test_export_passes_its_own_layout_check(root):
    assert check_layout(root) == []


def test_info_json_totals_and_features(root):
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 5 + 8 + 3, 2)
    assert info["fps"] == FPS and info["robot_type"] == "panda" and info["splits"] == {"train": "0:3"}
    features = info["features"]
    assert features["action"] == {"dtype": "float32", "shape": [3], "names": ["dx", "dy", "dz"]}
    assert features["observation.state"]["shape"] == [5]
    camera = features["observation.images.front"]
    assert camera["dtype"] == "video" and camera["shape"] == [H, W, 3]
    assert (camera["info"]["video.height"], camera["info"]["video.width"], camera["info"]["video.fps"]) == (H, W, FPS)
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert features[key]["shape"] == [1]


def test_data_parquet_drops_the_last_step_and_keeps_indices_continuous(root, episodes):
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert table.schema.names == ["observation.state", "action", "next.reward", "next.done", "timestamp",
                                  "frame_index", "episode_index", "index", "task_index"]
    assert table.schema.field("action").type == pa.list_(pa.float32(), 3)
    assert table.schema.field("timestamp").type == pa.float32()
    assert table.schema.field("next.done").type == pa.bool_()
    assert table.num_rows == 16
    np.testing.assert_array_equal(table.column("index").to_numpy(), np.arange(16))
    np.testing.assert_array_equal(table.column("episode_index").to_numpy(), [0] * 5 + [1] * 8 + [2] * 3)
    np.testing.assert_array_equal(table.column("frame_index").to_numpy(), [*range(5), *range(8), *range(3)])
    np.testing.assert_allclose(table.column("timestamp").to_numpy(), table.column("frame_index").to_numpy() / FPS)
    action = np.stack(table.column("action").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(action, np.concatenate([ep.steps["action"][:-1] for ep in episodes]))
    state = np.stack(table.column("observation.state").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(state, np.concatenate([ep.steps["observation/state"][:-1] for ep in episodes]))
    assert np.flatnonzero(table.column("next.done").to_numpy(zero_copy_only=False)).tolist() == [4, 12, 15]
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pylist()
    by_index = {row["task_index"]: row["task"] for row in tasks}
    assert [by_index[i] for i in table.column("task_index").to_pylist()] == \
        ["push the cube"] * 5 + ["open the drawer"] * 8 + ["push the cube"] * 3


def test_episodes_metadata_rows(root, episodes):
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["length"] for r in rows] == [5, 8, 3]
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 5), (5, 13), (13, 16)]
    assert [r["tasks"] for r in rows] == [["push the cube"], ["open the drawer"], ["push the cube"]]
    key = "videos/observation.images.front"
    spans = [(r[f"{key}/from_timestamp"], r[f"{key}/to_timestamp"]) for r in rows]
    np.testing.assert_allclose(spans, [(0, 5 / FPS), (5 / FPS, 13 / FPS), (13 / FPS, 16 / FPS)])
    np.testing.assert_allclose(rows[1]["stats/action/mean"], episodes[1].steps["action"][:-1].mean(0), rtol=1e-6)
    assert rows[1]["stats/action/count"] == [8]
    assert np.shape(rows[1]["stats/observation.images.front/mean"]) == (3, 1, 1)
    np.testing.assert_allclose(rows[1]["stats/observation.images.front/max"], np.full((3, 1, 1), gray(1, 7) / 255))


def test_stats_json_covers_every_frame_and_no_last_step(root, episodes):
    stats = json.loads((root / "meta/stats.json").read_text())
    actions = np.concatenate([ep.steps["action"][:-1] for ep in episodes])
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], actions.std(0), rtol=1e-6)
    for name, level in (("q01", 0.01), ("q50", 0.5), ("q99", 0.99)):
        np.testing.assert_allclose(stats["action"][name], np.quantile(actions, level, axis=0), rtol=1e-6)
    assert stats["action"]["count"] == [16]
    assert stats["next.reward"]["count"] == [16] and np.isfinite(stats["next.reward"]["mean"]).all()
    images = np.concatenate([ep.steps["observation/image"][:-1] for ep in episodes])
    assert np.shape(stats["observation.images.front"]["mean"]) == (3, 1, 1)
    np.testing.assert_allclose(np.ravel(stats["observation.images.front"]["mean"]), images.mean() / 255, rtol=1e-6)
    assert stats["observation.images.front"]["min"] == [[[gray(0, 0) / 255]]] * 3


def test_video_decodes_to_every_frame_in_order(root, episodes):
    frames = np.stack(imageio.mimread(str(root / VIDEO), format="FFMPEG", memtest=False))
    assert frames.shape == (16, H, W, 3)
    expected = [gray(i, t) for i, ep in enumerate(episodes) for t in range(len(ep) - 1)]
    np.testing.assert_allclose(frames.mean(axis=(1, 2, 3)), expected, atol=3)


def test_fixture_dataset_exports_cleanly(tmp_path):
    import wmlib.data as data

    episodes = data.load(FIXTURE)
    names = data.dataset_metadata(FIXTURE)["action_names"]
    root = export(episodes, tmp_path / "push_cube", fps=20, robot_type="panda", action_names=names)
    assert check_layout(root) == []
    frames = sum(len(ep) - 1 for ep in episodes)
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"]) == (len(episodes), frames)
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    state = np.stack(table.column("observation.state").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(state, np.concatenate([ep.steps["observation/state"][:-1] for ep in episodes]))
    video = np.stack(imageio.mimread(str(root / VIDEO), format="FFMPEG", memtest=False))
    assert video.shape == (frames, 128, 128, 3)
    source = np.concatenate([ep.steps["observation/image"][:-1] for ep in episodes])
    assert np.abs(video.astype(int) - source).mean() < 8  # lossy, but the same pictures


def test_h264_and_one_file_per_episode(tmp_path, episodes):
    root = export(episodes, tmp_path / "h264", fps=FPS, robot_type="panda", vcodec="libx264", chunks_size=2,
                  data_files_size_in_mb=1e-6, video_files_size_in_mb=1e-6)
    assert check_layout(root) == []
    assert sorted(str(p.relative_to(root)) for p in root.glob("data/*/*.parquet")) == [
        "data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet", "data/chunk-001/file-000.parquet"]
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    key = "videos/observation.images.front"
    assert [(r[f"{key}/chunk_index"], r[f"{key}/file_index"], r[f"{key}/from_timestamp"]) for r in rows] == \
        [(0, 0, 0.0), (0, 1, 0.0), (1, 0, 0.0)]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["features"]["observation.images.front"]["info"]["video.codec"] == "h264"
    last = np.stack(imageio.mimread(str(root / "videos/observation.images.front/chunk-001/file-000.mp4"),
                                    format="FFMPEG", memtest=False))
    np.testing.assert_allclose(last.mean(axis=(1, 2, 3)), [gray(2, t) for t in range(3)], atol=3)


def test_state_only_export(tmp_path, episodes):
    root = export(episodes, tmp_path / "state", fps=FPS, robot_type="panda", image_keys={})
    assert check_layout(root) == []
    info = json.loads((root / "meta/info.json").read_text())
    assert info["video_path"] is None and not any(ft["dtype"] == "video" for ft in info["features"].values())
    assert not (root / "videos").exists()


def _rewrite_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _keep_frames(path, count):
    """Cut a video down to its first ``count`` frames (stream copy)."""
    short = path.with_name("short.mp4")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-frames:v", str(count),
                    "-c", "copy", str(short)], check=True)
    short.replace(path)


def _drop_last_row(path):
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)


CORRUPTIONS = {
    "missing video": (lambda r: (r / VIDEO).unlink(), "file-000.mp4: missing"),
    "short video": (lambda r: _keep_frames(r / VIDEO, 10), "10 frames, its episodes' lengths add up to 16"),
    "missing data": (lambda r: (r / "data/chunk-000/file-000.parquet").unlink(), "cannot read"),
    "missing tasks": (lambda r: (r / "meta/tasks.parquet").unlink(), "tasks.parquet"),
    "wrong total": (lambda r: _rewrite_json(r / "meta/info.json", lambda i: i.update(total_frames=17)),
                    "total_frames 17"),
    "wrong version": (lambda r: _rewrite_json(r / "meta/info.json", lambda i: i.update(codebase_version="v2.1")),
                      "codebase_version"),
    "missing stat": (lambda r: _rewrite_json(r / "meta/stats.json", lambda s: s["action"].pop("q99")), "q99"),
    "row lost": (lambda r: _drop_last_row(r / "data/chunk-000/file-000.parquet"), "15 rows"),
    "stray file": (lambda r: shutil.copy(r / "data/chunk-000/file-000.parquet", r / "data/chunk-000/file-009.parquet"),
                   "file-009.parquet is in no episode"),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_check_layout_reports_a_corrupted_export(root, tmp_path, name):
    corrupt, message = CORRUPTIONS[name]
    copy = shutil.copytree(root, tmp_path / "copy")
    corrupt(copy)
    problems = check_layout(copy)
    assert any(message in p for p in problems), problems


def _with(episode: Episode, **changes) -> Episode:
    steps = {**episode.steps, **{k: v for k, v in changes.items() if k != "metadata"}}
    return Episode(steps, changes.get("metadata", episode.metadata), episode.index, episode.dataset)


BAD_INPUT = {
    "state shape": (lambda e: [e[0], _with(e[1], **{"observation/state": np.zeros((9, 6), np.float32)}), e[2]],
                    1, "different shape"),
    "frame size": (lambda e: [e[0], e[1], make_episode(2, 4, size=(H, W + 2))], 2, "frames of a different size"),
    "no instruction": (lambda e: [e[0], _with(e[1], language_instruction=np.array([""] * 9, dtype=object)), e[2]],
                       1, "no language instruction"),
    "other fps": (lambda e: [_with(e[0], metadata={"control_freq": 10}), e[1]], 0, "10 Hz"),
    "no image": (lambda e: [e[0], Episode({k: v for k, v in e[1].steps.items() if k != "observation/image"})],
                 1, "image_keys={}"),
}


@pytest.mark.parametrize("name", BAD_INPUT)
def test_bad_input_names_the_episode(tmp_path, episodes, name):
    build, episode, message = BAD_INPUT[name]
    with pytest.raises(DatasetError, match=message) as caught:
        export(build(episodes), tmp_path / "bad", fps=FPS, robot_type="panda")
    assert caught.value.episode == episode
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_refuses_fractional_fps_and_a_used_folder(tmp_path, episodes):
    with pytest.raises(ValueError, match="whole number"):
        export(episodes, tmp_path / "a", fps=29.97, robot_type="panda")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        export(episodes, tmp_path / "b", fps=FPS, robot_type="panda")
