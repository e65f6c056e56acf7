"""ManiSkill environments for the course: one call, CPU or GPU, flat torch observations.

    env = wmlib.envs.make("PushCube-v1", obs_mode="state", seed=0)
    obs, info = env.reset()             # obs: (N, D) float32 torch tensor
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Backends. With CUDA present the simulator steps on the GPU (``sim_backend="gpu"``,
thousands of environments at once) and renders there; otherwise both run on the
CPU, one environment per process. The CPU renderer is Mesa's *lavapipe* Vulkan
driver; ``make`` points the Vulkan loader at it and checks, before any scene is
built, that a usable Vulkan device exists (``VulkanUnavailableError`` otherwise).

Observation layout (N = number of parallel environments):

- ``obs_mode="state"``: a float32 tensor ``(N, D)``, ManiSkill's full state:
  ``agent/qpos``, ``agent/qvel`` then the task's extras (for PushCube:
  ``extra/tcp_pose``, ``extra/goal_pos``, ``extra/obj_pose``), in that order.
- ``obs_mode="rgb"``: a dict ``{"state": (N, D) float32, "rgb": (N, H, W, 3*K) uint8}``
  where ``state`` holds only what a robot knows without a perfect object tracker
  (joint positions and velocities, gripper pose, goal) and ``rgb`` stacks the
  K cameras' images along the last axis.

``env.state_layout`` names every slice of the state vector, e.g.
``env.state_layout["extra/obj_pose"] == slice(28, 35)``.
"""
from __future__ import annotations

import functools
import glob
import os
import pathlib
import warnings

import gymnasium as gym
import torch

OBS_MODES = ("state", "rgb")
ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
VULKAN_FIX = (
    "Fix: from the course folder run `make setup`, which installs Mesa's CPU Vulkan driver "
    "(lavapipe, Mesa >= 23) where no GPU driver exists; on Debian 12 the step alone is "
    "`sudo bash wmlib/setup_system.sh`. With an NVIDIA GPU, install the NVIDIA driver "
    "including its Vulkan part (Debian/Ubuntu: libnvidia-gl-<version>). "
    "See README.md, 'Troubleshooting: Vulkan'."
)


class VulkanUnavailableError(RuntimeError):
    """No Vulkan device that SAPIEN (ManiSkill's simulator and renderer) can use."""


class GpuPhysicsUnavailableError(RuntimeError):
    """The GPU simulator was asked for, but SAPIEN's PhysX GPU library is missing."""


def physx_gpu_library() -> pathlib.Path:
    """Where SAPIEN keeps the PhysX GPU library, which it downloads on first GPU use."""
    import sapien

    return pathlib.Path.home() / ".sapien" / "physx" / sapien.physx.version() / "libPhysXGpu_64.so"


@functools.cache
def gpu_physics_problem() -> str | None:
    """None when the GPU simulator can start here, else what stops it (tries SAPIEN's download once)."""
    import sapien

    if physx_gpu_library().exists():
        return None
    try:
        sapien.physx.enable_gpu()  # downloads the library when it is missing
    except Exception as err:  # no network, no CUDA driver, ...
        return (f"SAPIEN's PhysX GPU library is not at {physx_gpu_library()} and fetching it failed "
                f"({type(err).__name__}). SAPIEN downloads it on the first GPU run: run once with network "
                "access, or copy that folder from a machine that has it.")
    return None


def pick_backends(sim_backend: str | None = None, render_backend: str | None = None) -> tuple[str, str]:
    """("gpu", "gpu") when CUDA is present, else ("cpu", "cpu"); explicit choices win.

    Left to choose, a machine with CUDA whose GPU simulator cannot start (see
    ``gpu_physics_problem``) simulates on the CPU, with a warning, and still renders on the GPU.
    """
    cuda = torch.cuda.is_available()
    if sim_backend is None:
        problem = gpu_physics_problem() if cuda else None
        if problem:
            warnings.warn(f"simulating on the CPU: {problem}", stacklevel=3)
        sim_backend = "gpu" if cuda and not problem else "cpu"
    elif sim_backend == "gpu" and gpu_physics_problem():
        raise GpuPhysicsUnavailableError(gpu_physics_problem() + " Or pass sim_backend='cpu'.")
    return sim_backend, render_backend or ("gpu" if cuda else "cpu")


def lavapipe_icd() -> str | None:
    """Path of Mesa's CPU Vulkan driver manifest (lvp_icd*.json), if installed."""
    for d in ICD_DIRS:
        found = sorted(glob.glob(os.path.join(d, "lvp_icd*.json")))
        if found:
            return found[0]
    return None


def use_cpu_vulkan() -> None:
    """Point the Vulkan loader at lavapipe unless the user already chose a driver."""
    if os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES"):
        return
    icd = lavapipe_icd()
    if icd:
        os.environ["VK_ICD_FILENAMES"] = icd


@functools.cache
def check_vulkan() -> str:
    """Return SAPIEN's device summary, or raise VulkanUnavailableError saying what is missing."""
    import sapien

    chosen = os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES")
    if chosen and not all(os.path.exists(p) for p in chosen.split(os.pathsep)):
        raise VulkanUnavailableError(
            f"VK_ICD_FILENAMES/VK_DRIVER_FILES points at {chosen!r}, which does not exist, "
            f"so no Vulkan driver can load. Unset it or point it at an installed driver manifest. "
            + VULKAN_FIX
        )
    try:
        summary = sapien.render.get_device_summary()
    except RuntimeError as err:
        found = [p for d in ICD_DIRS for p in glob.glob(os.path.join(d, "*.json"))]
        raise VulkanUnavailableError(
            f"No Vulkan device found (SAPIEN: {err}). Installed Vulkan driver manifests: "
            f"{found or 'none'}. " + VULKAN_FIX
        ) from None
    if "Supported: 1" not in summary:
        raise VulkanUnavailableError(
            "A Vulkan driver was found but no device supports what SAPIEN needs; the usual cause "
            "is Mesa older than 23 (Debian 12's own Mesa 22). Devices:\n" + summary + "\n" + VULKAN_FIX
        )
    return summary


def flatten_obs(raw, obs_mode: str):
    """ManiSkill's raw observation -> the course layout (see the module docstring)."""
    if obs_mode == "state":
        return raw  # ManiSkill already returns the flat (N, D) state
    from mani_skill.utils import common

    state = common.flatten_state_dict({"agent": raw["agent"], "extra": raw["extra"]}, use_torch=True)
    rgb = torch.cat([cam["rgb"] for cam in raw["sensor_data"].values()], dim=-1)  # (N, H, W, 3K)
    return {"state": state, "rgb": rgb}


def slices_of(tree: dict, prefix: str = "", start: int = 0) -> tuple[dict[str, slice], int]:
    """Name -> slice for every leaf of a nested observation dict, in flattening order."""
    layout = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            sub, start = slices_of(value, f"{prefix}{key}/", start)
            layout.update(sub)
        else:
            width = 1 if value.ndim == 1 else int(value[0].numel())  # value: (N, ...) per env
            layout[prefix + key] = slice(start, start + width)
            start += width
    return layout, start


class CourseEnv(gym.Wrapper):
    """A ManiSkill env whose observations follow the course layout; seeded on first reset."""

    def __init__(self, env: gym.Env, obs_mode: str, seed: int):
        super().__init__(env)
        self.obs_mode = obs_mode
        self.first_seed = seed
        self.state_layout: dict[str, slice] = {}
        self.action_space.seed(seed)
        self._seeded = False

    @property
    def control_freq(self) -> int:
        return self.env.unwrapped.control_freq

    @property
    def max_episode_steps(self) -> int | None:
        """The time limit: after this many steps an episode is cut short (truncated); None if there is none."""
        inner = self.env
        while inner is not None:
            limit = getattr(inner, "_max_episode_steps", None)
            if limit is not None:
                return int(limit)
            inner = getattr(inner, "env", None)
        return None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and not self._seeded:
            seed = self.first_seed
        self._seeded = True
        raw, info = self.env.reset(seed=seed, options=options)
        if not self.state_layout:
            self.state_layout = self._layout(raw, info)
        return flatten_obs(raw, self.obs_mode), info

    def step(self, action):
        raw, reward, terminated, truncated, info = self.env.step(action)
        return flatten_obs(raw, self.obs_mode), reward, terminated, truncated, info

    def _layout(self, raw, info) -> dict[str, slice]:
        if self.obs_mode == "state":
            return slices_of(self._true_state_dict())[0]
        return slices_of({"agent": raw["agent"], "extra": raw["extra"]})[0]

    def _true_state_dict(self) -> dict:
        # ManiSkill adds the object's pose to its observation only in state modes,
        # so ask for the state as a state-mode env would see it.
        from mani_skill.envs.utils.observations import parse_obs_mode_to_struct

        task = self.env.unwrapped
        saved = task._obs_mode, task.obs_mode_struct
        task._obs_mode, task.obs_mode_struct = "state", parse_obs_mode_to_struct("state")
        try:
            return task._get_obs_state_dict(task.get_info())
        finally:
            task._obs_mode, task.obs_mode_struct = saved

    def true_state(self) -> tuple[torch.Tensor, dict[str, slice]]:
        """The simulator's full state vector (N, D) and its layout, in any obs_mode.

        In ``obs_mode="state"`` this equals the observation; in ``"rgb"`` it is what the
        camera-based robot does not get to see (for labels, costs and data collection).
        """
        from mani_skill.utils import common

        tree = self._true_state_dict()
        return common.flatten_state_dict(tree, use_torch=True), slices_of(tree)[0]

    def camera_params(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per camera: ``intrinsic_cv`` (N, 3, 3) and ``extrinsic_cv`` (N, 3, 4), OpenCV convention."""
        return self.env.unwrapped.get_sensor_params()


def make(
    env_id: str,
    obs_mode: str = "state",
    control_mode: str = "pd_ee_delta_pos",
    num_envs: int = 1,
    seed: int = 0,
    *,
    sim_backend: str | None = None,
    render_backend: str | None = None,
    image_size: int = 128,
    **kwargs,
) -> CourseEnv:
    """Build a ManiSkill env on the best backend here, after checking for a Vulkan driver.

    seed: the first ``reset()`` (without its own seed) uses it, and the action space is
    seeded with it, so two envs made with the same arguments give identical runs.
    kwargs go to ``gymnasium.make`` (e.g. ``robot_uids``, ``reward_mode``).
    """
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {OBS_MODES}, not {obs_mode!r}")
    sim_backend, render_backend = pick_backends(sim_backend, render_backend)
    if sim_backend == "cpu" and num_envs > 1:
        raise ValueError(
            f"num_envs={num_envs} needs the GPU simulator (CUDA); the CPU simulator steps one "
            "environment per process. Use num_envs=1 here, or one process per environment."
        )
    if render_backend == "cpu":
        use_cpu_vulkan()
    check_vulkan()

    import mani_skill.envs  # noqa: F401  (registers the ManiSkill tasks with gymnasium)

    if obs_mode == "rgb":
        kwargs.setdefault("sensor_configs", dict(width=image_size, height=image_size))
    env = gym.make(
        env_id,
        obs_mode=obs_mode,
        control_mode=control_mode,
        num_envs=num_envs,
        sim_backend=sim_backend,
        render_backend=render_backend,
        **kwargs,
    )
    return CourseEnv(env, obs_mode, seed)
