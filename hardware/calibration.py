"""Calibration: how raw servo ticks become joint angles, measured once, kept in a file.

A servo reports an encoder count (0..4095 a turn). Which count is the joint's zero, and which
way is positive, depends on how the arm was assembled, so it is measured, on the command line,
never inside a notebook (a person must be at the arm, ready to hold it):

    python -m hardware.calibrate --robot so100 --port /dev/ttyACM0 --out calibration/so100.json

1. torque off; the person puts the arm in its *zero pose* (every joint at 0 in the robot's
   description) and presses Enter: each joint's ``offset`` is the count read there;
2. the person turns each joint to its *second pose* (``SECOND_POSE``: +1 rad, about 57
   degrees, from zero in the description's positive direction) and presses Enter: the ``sign``
   of each count change gives the direction, and its size (652 counts) checks the pose;
3. the person moves every joint slowly through its whole range: the smallest and largest counts
   seen are the joint's measured range ``low``..``high``.

The file holds a checksum of its content. ``load`` refuses a missing file, a file for another
robot or another set of joints, an edited or truncated file, and ``check_pose`` refuses an arm
whose present counts lie outside the calibrated ranges (it was reassembled, or this is another
arm). A backend will not enable torque without a calibration that passed both.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import pathlib
import time

import numpy as np

from hardware.atomic import write_atomically
from hardware.bus import TICKS_PER_TURN

QUARTER = TICKS_PER_TURN // 4
RADIANS_PER_TICK = 2 * np.pi / TICKS_PER_TURN
SECOND_POSE = 1.0                     # rad from zero on every joint, within every joint's range


class CalibrationError(ValueError):
    """A calibration that is missing, invalid, or does not match the arm; names the file and joint."""


@dataclasses.dataclass(frozen=True)
class JointCalibration:
    id: int                 # servo id on the bus
    offset: int             # counts at the joint's zero
    sign: int               # +1 or -1: the direction of positive angles in counts
    low: int                # smallest count measured by moving the joint through its range
    high: int               # largest


@dataclasses.dataclass(frozen=True)
class Calibration:
    robot: str
    joints: dict[str, JointCalibration]       # in the robot's joint order
    created: str = ""

    @functools.cached_property
    def signs(self) -> np.ndarray:
        """(J,) +1 or -1 per joint: the direction of positive angles in counts."""
        return np.array([c.sign for c in self.joints.values()])

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        """(J,) the count at each joint's zero."""
        return np.array([c.offset for c in self.joints.values()])

    def to_radians(self, ticks) -> np.ndarray:
        """Counts (J,) -> joint angles (J,), radians."""
        return self.signs * (np.asarray(ticks, dtype=np.float64) - self.offsets) * RADIANS_PER_TICK

    def to_ticks(self, radians) -> np.ndarray:
        """Joint angles (J,) -> counts (J,), rounded, and kept within the measured ranges."""
        j = self.joints.values()
        ticks = self.offsets + self.signs * np.asarray(radians, dtype=np.float64) / RADIANS_PER_TICK
        return np.clip(np.round(ticks), [c.low for c in j], [c.high for c in j]).astype(np.int64)

    def body(self) -> dict:
        return {"robot": self.robot, "created": self.created,
                "joints": {n: dataclasses.asdict(c) for n, c in self.joints.items()}}

    def save(self, path) -> pathlib.Path:
        """Write atomically (a crash leaves the old file or the new one, never half of one)."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = self.body()
        return write_atomically(path, json.dumps({**body, "checksum": checksum(body)}, indent=2).encode())


def checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load(path, robot: str, joint_names: tuple[str, ...]) -> Calibration:
    """Read and validate a calibration file for ``robot`` with these joints, in this order."""
    path = pathlib.Path(path)
    again = f"run `python -m hardware.calibrate --robot {robot} --out {path}` with the arm in front of you"
    if not path.exists():
        raise CalibrationError(f"{path}: no calibration file. The arm will not move uncalibrated: {again}")
    try:
        raw = json.loads(path.read_text())
        body = {k: raw[k] for k in ("robot", "created", "joints")}
        stored = raw["checksum"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CalibrationError(f"{path}: not a calibration file ({type(err).__name__}: {err}): {again}") from None
    if stored != checksum(body):
        raise CalibrationError(f"{path}: the checksum does not match the content (edited by hand, or truncated): "
                               f"{again}")
    if body["robot"] != robot:
        raise CalibrationError(f"{path}: calibrated for robot {body['robot']!r}, not {robot!r}")
    if tuple(body["joints"]) != tuple(joint_names):
        raise CalibrationError(f"{path}: joints {list(body['joints'])}, expected {list(joint_names)} in this order")
    joints = {}
    for name, c in body["joints"].items():
        try:
            joints[name] = j = JointCalibration(**{k: int(c[k]) for k in ("id", "offset", "sign", "low", "high")})
        except (KeyError, TypeError, ValueError) as err:
            raise CalibrationError(f"{path}: joint {name!r} is incomplete ({err})") from None
        problem = joint_problem(j)
        if problem:
            raise CalibrationError(f"{path}: joint {name!r}: {problem}: {again}")
    ids = [j.id for j in joints.values()]
    if len(set(ids)) != len(ids):
        raise CalibrationError(f"{path}: two joints share a servo id: {ids}")
    return Calibration(body["robot"], joints, body["created"])


def joint_problem(j: JointCalibration) -> str | None:
    if j.sign not in (-1, 1):
        return f"sign must be +1 or -1, got {j.sign}"
    if not 0 <= j.low < j.high < TICKS_PER_TURN:
        return f"range {j.low}..{j.high} is not inside 0..{TICKS_PER_TURN - 1} with low < high"
    if j.high - j.low < QUARTER // 4:
        return f"range {j.low}..{j.high} spans under 22 degrees: was the joint moved through its range?"
    if not j.low <= j.offset <= j.high:
        return f"zero at count {j.offset} lies outside the measured range {j.low}..{j.high}"
    return None


def check_pose(calibration: Calibration, ticks, margin: int = 40) -> None:
    """Refuse an arm whose present counts (J,) lie outside the calibrated ranges (+- margin)."""
    for (name, c), t in zip(calibration.joints.items(), np.asarray(ticks)):
        if not c.low - margin <= t <= c.high + margin:
            raise CalibrationError(
                f"joint {name!r} (servo {c.id}) reads count {int(t)}, outside its calibrated range {c.low}..{c.high}: "
                "this arm does not match its calibration (reassembled, or another arm). Recalibrate before moving it.")


def calibrate(bus, robot: str, joint_names: tuple[str, ...], ask=input, sweep_seconds: float = 20.0,
              second_pose: float = SECOND_POSE, clock=time.monotonic, sleep=time.sleep) -> Calibration:
    """The three steps of the module docstring, with ``ask(prompt)`` waiting for the person."""
    bus.write("torque", np.zeros(len(bus.ids)))
    ask(f"[1/3] Torque is off. Put the {robot} in its zero pose (every joint at 0), then press Enter.")
    zero = bus.read("position").astype(np.int64)
    ask(f"[2/3] Turn each joint {np.degrees(second_pose):.0f} degrees in its positive direction (the second "
        "pose), then press Enter.")
    second = bus.read("position").astype(np.int64)
    change, expected = second - zero, second_pose / RADIANS_PER_TICK
    for name, d in zip(joint_names, change):
        if not 0.7 * expected <= abs(d) <= 1.3 * expected:
            raise CalibrationError(f"joint {name!r} moved {int(d)} counts between the poses; "
                                   f"{np.degrees(second_pose):.0f} degrees is {expected:.0f}. "
                                   "Check the poses and start again.")
    ask(f"[3/3] Press Enter, then move every joint slowly through its whole range for {sweep_seconds:.0f} s.")
    low, high = np.minimum(zero, second), np.maximum(zero, second)
    end = clock() + sweep_seconds
    while clock() < end:
        now = bus.read("position")
        low, high = np.minimum(low, now), np.maximum(high, now)
        sleep(0.02)
    joints = {name: JointCalibration(int(i), int(z), int(np.sign(d)), int(lo), int(hi))
              for name, i, z, d, lo, hi in zip(joint_names, bus.ids, zero, change, low, high)}
    for name, j in joints.items():
        problem = joint_problem(j)
        if problem:
            raise CalibrationError(f"joint {name!r}: {problem}")
    return Calibration(robot, joints, time.strftime("%Y-%m-%dT%H:%M:%S"))
