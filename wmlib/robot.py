"""The robot contract: what a controller, a recorder and the safety layer need from a robot.

The planning chapters connect a planner to *any* model through one contract
(``wmlib.planning.Model``: ``rollout(state, actions)``). The robot lab does the same for the
other end of the loop: the simulated twin (``hardware.twin``) and every real arm
(``hardware.servo_arm`` over a Feetech or Dynamixel bus, ``hardware.vendor.XArmRobot``) implement
``Robot``, so one controller, one recorder and one safety layer serve them all, and a
policy first tried on the twin meets the real arm through the same calls.

Units, the same for every backend:
- joints in radians (the gripper too: the angle of its moving jaw), in the order of
  ``joint_names``; an action is the vector of joint-position *targets* (J,);
- positions in metres in the robot's base frame; times in seconds from ``time.monotonic``;
- ``Reading`` holds what the sensors say; a sensor a backend lacks reads NaN, never 0.

A backend never checks a target for safety itself: ``hardware.safety.SafetyLayer`` stands
between every policy and every ``step``, and ``close`` turns the torque off.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class Reading:
    """One instant of the robot's sensors; every array is (J,), in ``joint_names`` order."""

    position: np.ndarray            # rad
    velocity: np.ndarray            # rad/s
    current: np.ndarray             # A
    temperature: np.ndarray         # degrees Celsius
    load: np.ndarray                # fraction of the rated torque, signed
    time: float                     # s, time.monotonic()

    @classmethod
    def unknown(cls, position: np.ndarray, time: float, velocity: np.ndarray | None = None) -> "Reading":
        """A reading with positions only (a simulator has no thermometer): the rest is NaN."""
        nan = np.full_like(np.asarray(position, dtype=np.float64), np.nan)
        return cls(np.asarray(position, dtype=np.float64), nan.copy() if velocity is None else velocity,
                   nan.copy(), nan.copy(), nan.copy(), time)


@dataclasses.dataclass(frozen=True)
class JointLimits:
    """Per joint (J,): the position range from the robot's description, and the speed the
    safety layer allows (rad/s). ``gripper`` is the index of the gripper joint, or None."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    gripper: int | None = None

    def __post_init__(self):
        j = len(self.names)
        for field in ("lower", "upper", "max_velocity"):
            value = np.asarray(getattr(self, field), dtype=np.float64)
            if value.shape != (j,):
                raise ValueError(f"JointLimits.{field} must have one entry per joint ({j}: {self.names}), "
                                 f"got shape {value.shape}")
            object.__setattr__(self, field, value)
        bad = [n for n, lo, hi in zip(self.names, self.lower, self.upper) if not lo < hi]
        if bad:
            raise ValueError(f"joint limits: lower must be below upper for {bad}")
        if not (self.max_velocity > 0).all():
            raise ValueError("every joint needs a positive velocity limit (rad/s)")


class Robot(Protocol):
    """A robot, simulated or real. Actions are joint-position targets (J,), in radians."""

    name: str
    limits: JointLimits
    control_freq: float             # Hz: one ``step`` per period

    def reset(self, seed: int | None = None) -> dict:
        """Bring the robot (and, in simulation, the scene) to a start; return the observation:
        ``{"state": position (J,), "image": (H, W, 3) uint8 if the robot has a camera}``."""

    def step(self, target: np.ndarray) -> dict:
        """Send one joint-position target (J,) that the safety layer has passed; return the
        observation as it stands then. A simulator has advanced one control period; a real arm
        returns at once and has only begun to move, so a loop that records what a target did
        waits out the period and then calls ``observe``."""

    def observe(self) -> dict:
        """The observation now (as ``reset`` returns it), without sending anything."""

    def state(self) -> Reading:
        """Read the sensors now."""

    def tool_position(self, position: np.ndarray) -> np.ndarray:
        """Forward kinematics: the tool point (3,), metres in the base frame, for joints (J,)."""

    def torque(self, on: bool) -> None:
        """Enable or disable the motors (off: the arm goes limp, or holds by its brakes)."""

    def close(self) -> None:
        """Torque off and release the connection; safe to call twice."""
