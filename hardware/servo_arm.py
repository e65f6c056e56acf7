"""A low-cost arm of smart servos (SO-100/101, Koch) as a ``wmlib.robot.Robot``.

The arm converts between joint angles and servo counts with its calibration, takes its joint
limits and forward kinematics from its description, and survives a flaky bus:

- a failed read is retried ``retries`` times within the same control period; a bus that keeps
  failing raises ``BusError`` to the caller, which stops the robot;
- a dead driver (every transfer fails) is reopened by ``reconnect``, at most ``max_restarts``
  times in ``restart_window`` seconds: a driver that keeps dying is a fault to fix, not to hide.

It refuses to enable torque without a calibration that matches the arm in front of it
(``hardware.calibration``), and ``close`` turns the torque off before releasing the bus.
"""
from __future__ import annotations

import collections
import logging
import time

import numpy as np

from hardware import calibration as cal
from hardware.bus import BusError, ServoBus
from hardware.description import Description
from wmlib.robot import JointLimits, Reading

log = logging.getLogger("hardware")


class RestartLimit(RuntimeError):
    """The driver died more often than allowed; the run must stop for a person to look."""


class ServoArm:
    """``Robot`` over a ``ServoBus``: joint-position targets (J,), radians."""

    def __init__(self, bus: ServoBus, calibration: cal.Calibration, description: Description,
                 control_freq: float = 20.0, max_velocity=2.0, reopen=None, retries: int = 2,
                 max_restarts: int = 3, restart_window: float = 60.0, clock=time.monotonic):
        self.bus, self.calibration, self.description = bus, calibration, description
        self.name = description.name
        self.limits: JointLimits = description.limits(max_velocity)
        self.control_freq = control_freq
        self.reopen = reopen or getattr(bus, "restart", None)
        self.retries, self.max_restarts, self.restart_window, self.clock = retries, max_restarts, restart_window, clock
        self.restarts: collections.deque = collections.deque()
        self.torque_is_on = False
        self.closed = False
        cal.check_pose(calibration, self._read("position"))     # the arm must match its calibration

    # ---------------------------------------------------------------- the bus, with retries
    def _read(self, register: str) -> np.ndarray:
        for attempt in range(self.retries + 1):
            try:
                return self.bus.read(register)
            except BusError:
                if attempt == self.retries:
                    raise

    def reconnect(self) -> None:
        """Reopen a dead driver, unless it died ``max_restarts`` times in the last window."""
        now = self.clock()
        while self.restarts and now - self.restarts[0] > self.restart_window:
            self.restarts.popleft()
        if len(self.restarts) >= self.max_restarts:
            raise RestartLimit(f"{self.name}: the servo driver died {len(self.restarts) + 1} times within "
                               f"{self.restart_window:.0f} s; stopping for a person to check cables and power")
        if self.reopen is None:
            raise RestartLimit(f"{self.name}: the servo driver died and this bus cannot be reopened")
        self.restarts.append(now)
        self.reopen()
        cal.check_pose(self.calibration, self._read("position"))

    # ---------------------------------------------------------------- the Robot contract
    def observe(self) -> dict:
        return {"state": self.calibration.to_radians(self._read("position"))}

    def reset(self, seed: int | None = None) -> dict:
        """Torque on where the arm stands (its goal is its present position, so nothing jumps).
        Moving to a start pose is the controller's job, through the safety layer."""
        ticks = self._read("position")
        cal.check_pose(self.calibration, ticks)
        self.bus.write("goal", ticks)
        self.torque(True)
        return {"state": self.calibration.to_radians(ticks)}

    def step(self, target) -> dict:
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (len(self.limits.names),):
            raise ValueError(f"{self.name}: a target has {len(self.limits.names)} joint angles, got {target.shape}")
        self.bus.write("goal", self.calibration.to_ticks(target))
        return self.observe()

    def state(self) -> Reading:
        ticks = self._read("position")
        signs = self.calibration.signs
        velocity = np.asarray(self._read("velocity"), dtype=np.float64) * cal.RADIANS_PER_TICK * signs
        return Reading(self.calibration.to_radians(ticks), velocity,
                       np.asarray(self._read("current"), dtype=np.float64),
                       np.asarray(self._read("temperature"), dtype=np.float64),
                       np.asarray(self._read("load"), dtype=np.float64) * signs, self.clock())

    def tool_position(self, position) -> np.ndarray:
        return self.description.tool_position(position)

    def torque(self, on: bool) -> None:
        self.bus.write("torque", np.full(len(self.bus.ids), 1 if on else 0))
        self.torque_is_on = on

    def close(self) -> None:
        """Torque off (tried three times, even on a failing bus), then release the port. Never raises;
        a torque that cannot be turned off is logged as critical. Safe to call twice."""
        if self.closed:
            return
        for attempt in range(3):
            try:
                self.torque(False)
                break
            except (BusError, OSError) as err:
                if attempt == 2:
                    log.critical("%s: could not turn the torque off (%s): cut the arm's power", self.name, err)
        try:
            self.bus.close()
        except (BusError, OSError) as err:
            log.warning("%s: closing the bus: %s", self.name, err)
        self.closed = True
