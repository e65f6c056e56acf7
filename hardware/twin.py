"""The simulated twin: ManiSkill's SO-100 arm as a ``wmlib.robot.Robot``.

    twin = Twin("PickCubeSO100-v1", seed=0)
    obs = twin.reset(seed=3)                  # {"state": joints (6,), "image": (H, W, 3) uint8}
    obs = twin.step(target)                   # joint-position targets (6,), radians

The twin is driven exactly as the real arm is: absolute joint-position targets, through the
same safety layer, at the same control rate (ManiSkill's ``pd_joint_pos`` controller, 20 Hz).
Its description is the same URDF, so the workspace check computes the same tool point (the
twin's forward kinematics agree with the simulator's own to the tenth of a millimetre; tested).
What the twin has and the real arm has not: a task reward and a success flag (``outcome``),
and no current or temperature sensors (they read NaN, and the safety layer's monitors skip
them).
"""
from __future__ import annotations

import time

import numpy as np

from hardware import description
from wmlib.robot import JointLimits, Reading

TASKS = ("PickCubeSO100-v1", "SO100GraspCube-v1")


class Twin:
    """ManiSkill's SO-100 task ``env_id`` behind the robot contract; one environment, CPU or GPU."""

    def __init__(self, env_id: str = "PickCubeSO100-v1", seed: int = 0, image_size: int = 64,
                 max_velocity=2.0, camera: bool = True):
        from wmlib import envs

        if env_id not in TASKS:
            raise ValueError(f"the twin runs the SO-100 tasks {TASKS}, not {env_id!r}")
        self.env = envs.make(env_id, obs_mode="rgb" if camera else "state", control_mode="pd_joint_pos",
                             seed=seed, image_size=image_size)
        self.description = description.so100()
        self.name = f"twin:{env_id}"
        self.limits: JointLimits = self.description.limits(max_velocity)
        self.control_freq = float(self.env.unwrapped.control_freq)
        self.camera = camera
        self.info: dict = {}
        self.reward = 0.0
        self._obs = None

    def _observation(self, raw) -> dict:
        self._obs = raw
        state = raw["state"] if isinstance(raw, dict) else raw
        out = {"state": state[0, self.env.state_layout["agent/qpos"]].cpu().numpy().astype(np.float64)}
        if self.camera:
            out["image"] = raw["rgb"][0, ..., :3].cpu().numpy()
        self.last = out
        return out

    def observe(self) -> dict:
        """The last observation: simulated time moves only in ``step``."""
        return {k: v.copy() for k, v in self.last.items()}

    def reset(self, seed: int | None = None) -> dict:
        raw, self.info = self.env.reset(seed=seed)
        self.reward = 0.0
        return self._observation(raw)

    def step(self, target) -> dict:
        import torch

        target = np.asarray(target, dtype=np.float32)
        if target.shape != (len(self.limits.names),):
            raise ValueError(f"{self.name}: a target has {len(self.limits.names)} joint angles, got {target.shape}")
        raw, reward, _, _, self.info = self.env.step(torch.as_tensor(target)[None])
        self.reward = float(reward[0])
        return self._observation(raw)

    def outcome(self) -> dict:
        """The task's reward for the last step and whether the task is solved now (simulation only)."""
        return {"reward": self.reward, "success": bool(self.info.get("success", [False])[0])}

    def state(self) -> Reading:
        raw = self._obs["state"] if isinstance(self._obs, dict) else self._obs
        layout = self.env.state_layout
        return Reading.unknown(raw[0, layout["agent/qpos"]].cpu().numpy(), time.monotonic(),
                               velocity=raw[0, layout["agent/qvel"]].cpu().numpy().astype(np.float64))

    def tool_position(self, position) -> np.ndarray:
        return self.description.tool_position(position)

    def torque(self, on: bool) -> None:
        """The simulated motors need no enabling; kept for the contract."""

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None
