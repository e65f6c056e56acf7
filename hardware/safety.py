"""The safety layer: every target a policy proposes passes through here before any motor.

    layer = SafetyLayer(limits, tool_position, Config(workspace=Box(low, high)))
    target, reasons = layer.filter(proposed, reading)   # the target to execute, and why it changed
    stop = layer.check(reading)                         # None, or why the robot must stop now

``filter`` turns any proposal, however wrong (NaN, a jump across the table, a joint past its
stop, a tool point outside the workspace), into a target that is safe to send from where the
robot is:

1. a proposal that is not J finite numbers is replaced by holding still;
2. each joint is clipped into its range from the robot's description (``clamp_target``);
3. each joint moves at most ``max_step`` rad per control period from the last executed target,
   and never faster than its velocity limit (``clamp_target``);
4. the tool point must stay in the workspace box: a step that would leave it is shortened
   to the largest fraction that stays inside, and from outside only steps back towards the box
   are allowed (``workspace_filter``);
5. a gripper that has squeezed for too long is not allowed to close further (its duty limit):
   servos holding an object at full load overheat within minutes.

``check`` reads the sensors: a current, a temperature or an arm joint's load above its limit stops
the robot (the load covers servos without a current sensor, and a joint pushing against something).
Every change carries its reason; the recorder stores the executed target and the reasons.
"""
from __future__ import annotations

import collections
import dataclasses

import numpy as np

from wmlib.robot import JointLimits, Reading


@dataclasses.dataclass(frozen=True)
class Box:
    """An axis-aligned box in the base frame, metres: low (3,), high (3,)."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def __post_init__(self):
        low, high = np.asarray(self.low, dtype=float), np.asarray(self.high, dtype=float)
        if low.shape != (3,) or high.shape != (3,) or not np.isfinite(low).all() or not np.isfinite(high).all():
            raise ValueError(f"a workspace box needs 3 finite numbers for each corner, got {self.low}, {self.high}")
        if not (low < high).all():
            raise ValueError(f"workspace box: every low corner coordinate must be below the high one: "
                             f"low={list(low)}, high={list(high)}")
        if (high - low).max() > 2.0:
            raise ValueError(f"workspace box larger than 2 m on a side ({list(high - low)}): "
                             "check the units (metres) and the frame (the robot's base)")

    def contains(self, point) -> bool:
        p = np.asarray(point)
        return bool((p >= np.asarray(self.low)).all() and (p <= np.asarray(self.high)).all())

    def distance(self, point) -> float:
        """How far a point is outside the box (0 inside), metres."""
        p = np.asarray(point)
        return float(np.linalg.norm(np.maximum(np.asarray(self.low) - p, 0) + np.maximum(p - np.asarray(self.high), 0)))


@dataclasses.dataclass(frozen=True)
class Config:
    """Limits of one lab set-up. Per-joint values may be one number or one per joint."""

    workspace: Box
    max_step: float | tuple = 0.05            # rad per control period (the twin's controller allows 0.05)
    max_current: float | tuple = 1.5          # A; above it: stop (a stall, a collision)
    max_temperature: float | tuple = 60.0     # degrees C; above it: stop
    max_load: float = 0.95                    # |load| (fraction of rated torque) of an arm joint; above: stop
    gripper_hold_load: float = 0.6            # |load| above this counts as squeezing
    gripper_duty: float = 0.2                 # at most this fraction of the last window squeezing
    gripper_window: int = 200                 # control periods (10 s at 20 Hz)
    gripper_closing: int = -1                 # the sign of a target change that closes the jaw


def clamp_target(proposed, reference, limits: JointLimits, max_step, control_freq: float):
    """Clip a proposed target (J,) into the joint ranges, then limit its change from ``reference``
    (the last executed target, (J,)) to ``max_step`` rad and to ``max_velocity / control_freq``.

    Returns (target (J,), reasons: list of str naming each joint that was changed and why).
    """
    proposed, reference = np.asarray(proposed, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    reasons = []
    inside = np.clip(proposed, limits.lower, limits.upper)
    for i in np.flatnonzero(inside != proposed):
        reasons.append(f"joint limit: {limits.names[i]} {proposed[i]:+.3f} -> {inside[i]:+.3f} rad")
    step = np.minimum(np.broadcast_to(max_step, inside.shape), limits.max_velocity / control_freq)
    target = reference + np.clip(inside - reference, -step, step)
    for i in np.flatnonzero(np.abs(target - inside) > 1e-12):
        reasons.append(f"step limit: {limits.names[i]} moves {inside[i] - reference[i]:+.3f} rad, "
                       f"at most {step[i]:.3f} per step")
    return target, reasons


def workspace_filter(target, reference, tool_position, box: Box, iterations: int = 12):
    """Keep the tool point in ``box`` along the straight joint-space step reference -> target.

    Inside the box: the largest fraction of the step whose end stays inside (bisection).
    Outside (after a bad start or a push): a step is allowed only if it brings the tool closer
    to the box; else hold ``reference``. Returns (target (J,), reasons).
    """
    target, reference = np.asarray(target, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    end = tool_position(target)
    if box.contains(end):
        return target, []
    start = tool_position(reference)
    if not box.contains(start):
        if box.distance(end) < box.distance(start):
            return target, []
        return reference.copy(), [f"workspace: tool at {np.round(start, 3).tolist()} is outside the box and the "
                                  "step would not bring it back: hold"]
    inside, outside = 0.0, 1.0                 # fractions of the step known to end inside / outside
    for _ in range(iterations):
        mid = (inside + outside) / 2
        if box.contains(tool_position(reference + mid * (target - reference))):
            inside = mid
        else:
            outside = mid
    return reference + inside * (target - reference), [
        f"workspace: the step would put the tool at {np.round(end, 3).tolist()}, outside the box; "
        f"shortened to {inside:.0%}"]


class SafetyLayer:
    """One layer between every policy and every robot. Keeps the last executed target."""

    def __init__(self, limits: JointLimits, tool_position, config: Config, control_freq: float,
                 clamp=None, keep_in=None):
        self.limits, self.tool_position, self.config, self.control_freq = limits, tool_position, config, control_freq
        self.clamp = clamp or clamp_target              # the two rules (chapter-7 exercises)
        self.keep_in = keep_in or workspace_filter
        self.reference: np.ndarray | None = None
        self.squeezing = collections.deque(maxlen=config.gripper_window)

    def start(self, reading: Reading) -> None:
        """Begin from where the robot is: the first reference is the measured position.
        A start outside the joint ranges or the workspace is allowed, but only back inside."""
        self.reference = np.asarray(reading.position, dtype=np.float64).copy()
        self.squeezing.clear()

    def filter(self, proposed, reading: Reading):
        """proposed (J,) -> (target (J,) to execute, reasons). The target becomes the reference."""
        if self.reference is None:
            self.start(reading)
        j = len(self.limits.names)
        proposed = np.asarray(proposed, dtype=np.float64)
        if proposed.shape != (j,) or not np.isfinite(proposed).all():
            return self.reference.copy(), [f"bad target (shape {proposed.shape}, finite: "
                                           f"{bool(proposed.size) and bool(np.isfinite(proposed).all())}): hold"]
        target, reasons = self.clamp(proposed, self.reference, self.limits, self.config.max_step, self.control_freq)
        target, more = self.keep_in(target, self.reference, self.tool_position, self.config.workspace)
        reasons += more
        target, more = self.gripper_duty(target, reading)
        reasons += more
        self.reference = target
        return target.copy(), reasons

    def gripper_duty(self, target, reading: Reading):
        """Refuse to close the gripper further while it has squeezed for more than its duty."""
        g = self.limits.gripper
        if g is None:
            return target, []
        load = abs(float(reading.load[g])) if np.isfinite(reading.load[g]) else 0.0
        self.squeezing.append(load > self.config.gripper_hold_load)
        window = self.squeezing.maxlen
        duty = sum(self.squeezing) / window
        closing = np.sign(target[g] - reading.position[g]) == self.config.gripper_closing
        if duty > self.config.gripper_duty and closing:
            target = target.copy()
            target[g] = reading.position[g]
            return target, [f"gripper duty: squeezing {duty:.0%} of the last {window} steps "
                            f"(limit {self.config.gripper_duty:.0%}): not closing further"]
        return target, []

    def check(self, reading: Reading) -> str | None:
        """Why the robot must stop now (a current, temperature or arm joint's load over its limit), or None."""
        for what, values, limit, unit in (("current", np.abs(reading.current), self.config.max_current, "A"),
                                          ("temperature", reading.temperature, self.config.max_temperature, "C")):
            limit = np.broadcast_to(limit, values.shape)
            over = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) > limit)
            if over.size:
                i = int(over[0])
                return f"{what}: {self.limits.names[i]} at {values[i]:.2f} {unit}, limit {limit[i]:.2f} {unit}"
        load = np.nan_to_num(np.abs(reading.load), nan=0.0)        # servos without a current sensor still
        if self.limits.gripper is not None:                         # report load; the gripper may squeeze
            load[self.limits.gripper] = 0.0                         # (its duty limit watches it)
        if (load > self.config.max_load).any():
            i = int(np.argmax(load))
            return (f"load: {self.limits.names[i]} at {load[i]:.0%} of its rated torque, "
                    f"limit {self.config.max_load:.0%}")
        return None
