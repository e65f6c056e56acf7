"""Scripted controllers behave as their names say; episodes follow the RLDS convention; the build is idempotent."""
import json

import numpy as np
import pytest

from wmlib import data, envs, scripted
from wmlib.collect import SOURCES, run_episode
from wmlib import build_dataset as build

TASKS = ["PushCube-v1", "PickCube-v1"]


def success_rate(env_id, mistake, seeds):
    env = envs.make(env_id, obs_mode="state")
    wins = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        controller = scripted.controller_for(env_id, env.state_layout, mistake, np.random.default_rng(seed))
        for _ in range(50):
            obs, _, terminated, truncated, info = env.step(controller(obs[0]))
            if terminated.any() or truncated.any():
                break
        wins += bool(info["success"].any())
    env.close()
    return wins / len(seeds)


@pytest.mark.parametrize("env_id", TASKS)
def test_scripted_controller_succeeds_on_unseen_seeds(env_id):
    assert success_rate(env_id, None, range(1000, 1012)) >= 11 / 12


@pytest.mark.parametrize("env_id,mistake", [(e, m) for e in TASKS for m in scripted.MISTAKES[e]])
def test_each_mistake_mostly_fails(env_id, mistake):
    assert success_rate(env_id, mistake, range(2000, 2010)) <= 0.4


def test_unknown_task_or_mistake_is_named():
    with pytest.raises(ValueError, match="no scripted controller"):
        scripted.controller_for("StackCube-v1", {})
    with pytest.raises(ValueError, match="unknown mistake 'offset' for PushCube-v1"):
        scripted.controller_for("PushCube-v1", {}, mistake="offset")


@pytest.fixture(scope="module")
def rgb_env():
    env = envs.make("PushCube-v1", obs_mode="rgb")
    yield env
    env.close()


@pytest.mark.parametrize("source", SOURCES)
def test_episode_follows_the_rlds_convention(rgb_env, source):
    ep = run_episode(rgb_env, "PushCube-v1", source, seed=31)
    steps, meta = ep["steps"], ep["episode_metadata"]
    n = len(steps["reward"])
    for field in ("action", "discount", "is_first", "is_last", "is_terminal", "language_instruction"):
        assert len(steps[field]) == n
    for field in ("state", "image", "proprio"):
        assert len(steps["observation"][field]) == n
    assert steps["is_first"][0] and steps["is_first"].sum() == 1
    assert steps["is_last"][-1] and steps["is_last"].sum() == 1
    assert np.all(steps["action"][-1] == 0) and steps["reward"][-1] == 0
    assert np.all(np.abs(steps["action"][:-1]) <= 1)
    assert steps["is_terminal"][-1] == meta["success"]  # these tasks end on success, else run out of time
    assert n - 1 == 50 or meta["success"]
    assert meta["source"] == source and meta["seed"] == 31 and meta["control_freq"] == 20
    # the recorded state is the simulator's: replaying the actions from the same seed reproduces it
    env = envs.make("PushCube-v1", obs_mode="state")
    obs, _ = env.reset(seed=31)
    np.testing.assert_allclose(obs[0].numpy(), steps["observation"]["state"][0], atol=1e-5)
    for t in range(3):
        obs, *_ = env.step(steps["action"][t])
    np.testing.assert_allclose(obs[0].numpy(), steps["observation"]["state"][3], atol=1e-4)
    env.close()


def test_recovery_episode_is_knocked_off_then_corrects(rgb_env):
    ep = run_episode(rgb_env, "PushCube-v1", "recovery", seed=5)
    actions = ep["steps"]["action"][:-1]
    repeated = [t for t in range(1, len(actions)) if np.array_equal(actions[t], actions[t - 1])
                and actions[t][3] == 1.0 and np.isclose(np.linalg.norm(actions[t][:3]), 1.0)]
    assert len(repeated) >= 2, "no disturbance (a constant shove with the gripper open) found"
    after = actions[repeated[-1] + 1:]
    assert len(after) > 0 and np.all(after[:, 3] == -1.0), "the controller did not take over again"


def test_build_writes_a_valid_dataset_once_and_rebuilds_when_the_plan_changes(tmp_path, capsys):
    plan = {"scripted_success": 1, "recovery": 1}
    (folder,) = build.build(tmp_path, tasks=["PushCube-v1"], episodes=plan, workers=1)
    episodes = data.load(folder)  # validates
    assert [ep.metadata["source"] for ep in episodes] == ["scripted_success", "recovery"]
    assert json.loads((folder / "metadata.json").read_text())["plan"]["episodes"] == plan
    stamp = (folder / "dataset_info.json").stat().st_mtime_ns
    build.build(tmp_path, tasks=["PushCube-v1"], episodes=plan, workers=1)
    assert "up to date" in capsys.readouterr().out
    assert (folder / "dataset_info.json").stat().st_mtime_ns == stamp
    build.build(tmp_path, tasks=["PushCube-v1"], episodes={"scripted_success": 2}, workers=1)
    assert "rebuilding" in capsys.readouterr().out
    assert [ep.metadata["source"] for ep in data.load(folder)] == ["scripted_success"] * 2


def test_bad_episode_plan_is_refused():
    with pytest.raises(SystemExit):
        build.main(["--episodes", "randm=3"])
