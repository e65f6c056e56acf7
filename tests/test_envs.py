"""wmlib.envs: ManiSkill builds and steps on the CPU, seeded runs repeat, bad set-ups fail clearly."""
import json
import os

import pytest
import torch

import wmlib
from wmlib import envs
from conftest import run_python

TASKS = ["PushCube-v1", "PickCube-v1"]


def rollout(env_id, obs_mode, seed, steps=8):
    env = envs.make(env_id, obs_mode=obs_mode, seed=seed)
    obs, _ = env.reset()
    trajectory = [obs]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trajectory.append(obs)
    env.close()
    return env, trajectory


def as_tensors(obs):
    return [obs] if isinstance(obs, torch.Tensor) else [obs["state"], obs["rgb"]]


@pytest.mark.parametrize("env_id", TASKS)
def test_state_mode_steps_with_the_documented_layout(env_id):
    env, trajectory = rollout(env_id, "state", seed=0)
    obs = trajectory[-1]
    assert obs.dtype == torch.float32 and obs.ndim == 2 and obs.shape[0] == 1
    assert torch.isfinite(obs).all()
    assert env.action_space.shape == (4,)  # one env: pd_ee_delta_pos = dx, dy, dz, gripper
    layout = env.state_layout
    assert list(layout)[:2] == ["agent/qpos", "agent/qvel"]
    assert "extra/obj_pose" in layout and layout["extra/obj_pose"].stop - layout["extra/obj_pose"].start == 7
    assert max(s.stop for s in layout.values()) == obs.shape[1]
    # the layout really addresses the cube: its pose is the actor's pose in the simulator
    task = env.unwrapped
    cube = (task.obj if hasattr(task, "obj") else task.cube).pose.raw_pose  # (1, 7)
    assert torch.allclose(obs[:, layout["extra/obj_pose"]], cube, atol=1e-5)
    # state is not frozen: the robot moved
    assert not torch.equal(trajectory[0][:, layout["agent/qpos"]], obs[:, layout["agent/qpos"]])
    assert env.max_episode_steps == 50, "ManiSkill's time limit for these tasks, read through the wrappers"


@pytest.mark.parametrize("env_id", TASKS)
def test_rgb_mode_gives_images_and_proprio(env_id):
    env, trajectory = rollout(env_id, "rgb", seed=0, steps=3)
    obs = trajectory[-1]
    assert set(obs) == {"state", "rgb"}
    assert obs["rgb"].dtype == torch.uint8 and obs["rgb"].shape == (1, 128, 128, 3)
    assert obs["rgb"].float().std() > 5, "the rendered image is blank"
    assert (obs["state"].dtype == torch.float32
            and obs["state"].shape[1] == max(s.stop for s in env.state_layout.values()))
    assert "extra/obj_pose" not in env.state_layout  # pixels mode does not leak the cube's true pose


@pytest.mark.parametrize("obs_mode", ["state", "rgb"])
def test_same_seed_same_run_other_seed_other_run(obs_mode):
    _, a = rollout("PickCube-v1", obs_mode, seed=7, steps=5)
    _, b = rollout("PickCube-v1", obs_mode, seed=7, steps=5)
    _, c = rollout("PickCube-v1", obs_mode, seed=8, steps=5)
    for x, y in zip(a, b):
        for u, v in zip(as_tensors(x), as_tensors(y)):
            assert torch.equal(u, v)
    assert not all(torch.equal(u, v) for u, v in zip(as_tensors(a[0]), as_tensors(c[0])))


def test_image_size_is_configurable():
    env = envs.make("PushCube-v1", obs_mode="rgb", image_size=64)
    obs, _ = env.reset()
    assert obs["rgb"].shape == (1, 64, 64, 3)
    env.close()


def test_device_is_cuda_exactly_when_cuda_is_present():
    assert wmlib.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_backends_follow_cuda_and_explicit_choice_wins(monkeypatch):
    monkeypatch.setattr(envs, "gpu_physics_problem", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert envs.pick_backends() == ("gpu", "gpu")
    assert envs.pick_backends("cpu") == ("cpu", "gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert envs.pick_backends() == ("cpu", "cpu")


def test_gpu_without_its_physics_library_falls_back_or_says_why(monkeypatch):
    # seen on an offline GPU machine: SAPIEN fetches its PhysX GPU library on first use
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(envs, "gpu_physics_problem", lambda: "SAPIEN's PhysX GPU library is not at /x")
    with pytest.warns(UserWarning, match="simulating on the CPU: SAPIEN's PhysX GPU library"):
        assert envs.pick_backends() == ("cpu", "gpu")
    with pytest.raises(envs.GpuPhysicsUnavailableError, match="sim_backend='cpu'"):
        envs.pick_backends("gpu")


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="obs_mode"):
        envs.make("PushCube-v1", obs_mode="pointcloud")
    with pytest.raises(ValueError, match="num_envs=4 needs the GPU simulator"):
        envs.make("PushCube-v1", num_envs=4, sim_backend="cpu")


MAKE_ENV = (
    "import wmlib.envs as E\n"
    "try:\n"
    "    E.make('PushCube-v1', sim_backend='cpu', render_backend='cpu')\n"
    "except E.VulkanUnavailableError as err:\n"
    "    print('VULKAN-ERROR', err)\n"
    "else:\n"
    "    print('BUILT')\n"
)


def without_vulkan_choice():
    env = dict(os.environ)
    env.pop("VK_DRIVER_FILES", None)
    return env


def test_missing_driver_file_is_reported_with_the_fix():
    env = without_vulkan_choice() | {"VK_ICD_FILENAMES": "/nonexistent/lvp_icd.json"}
    result = run_python(MAKE_ENV, env=env)
    assert "VULKAN-ERROR" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "/nonexistent/lvp_icd.json" in result.stdout and "make setup" in result.stdout


def test_driver_that_cannot_load_is_reported_with_the_fix(tmp_path):
    # a driver manifest whose library is missing: the loader finds no device at all
    manifest = tmp_path / "broken_icd.json"
    manifest.write_text(json.dumps({"file_format_version": "1.0.0",
                                    "ICD": {"library_path": str(tmp_path / "libnothing.so"), "api_version": "1.3.0"}}))
    result = run_python(MAKE_ENV, env=without_vulkan_choice() | {"VK_ICD_FILENAMES": str(manifest)})
    assert "VULKAN-ERROR" in result.stdout, result.stdout + result.stderr[-2000:]
    assert "No Vulkan device found" in result.stdout and "make setup" in result.stdout


@pytest.mark.skipif(envs.lavapipe_icd() is None, reason="no CPU Vulkan driver (lavapipe) installed here")
def test_installed_cpu_driver_is_found_without_any_variable():
    result = run_python(MAKE_ENV, env=without_vulkan_choice() | {"VK_ICD_FILENAMES": ""})
    assert "BUILT" in result.stdout, result.stdout + result.stderr[-2000:]
