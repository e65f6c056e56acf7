"""A fake SO-100 on a ``FakeBus``, calibrated, for tests, the chapter and dry runs of the CLI.

    arm, bus, clock = fake_so100()            # a ServoArm; bus.inject(...) makes it misbehave
"""
from __future__ import annotations

import numpy as np

from hardware import description
from hardware.bus import TICKS_PER_TURN, FakeBus, FakeClock
from hardware.calibration import RADIANS_PER_TICK, Calibration, JointCalibration
from hardware.servo_arm import ServoArm

REST = np.array([0.0, -1.2, 1.2, 0.6, 0.0, 0.3])     # rad: folded above the table, jaw a little open


def fake_calibration(desc: description.Description, robot: str = "so100") -> Calibration:
    """Zero at mid-turn, positive counts for positive angles, ranges a little wider than the joints'."""
    limits = desc.limits(1.0)
    mid = TICKS_PER_TURN // 2
    def count(angle: float, margin: int) -> int:
        return int(np.clip(mid + angle / RADIANS_PER_TICK + margin, 0, TICKS_PER_TURN - 1))

    return Calibration(robot, {name: JointCalibration(i + 1, mid, 1, count(lo, -20), count(hi, 20))
                               for i, (name, lo, hi) in enumerate(zip(limits.names, limits.lower, limits.upper))},
                       "fake")


def fake_so100(start=REST, clock=None, control_freq: float = 20.0, **arm_options):
    """(ServoArm, FakeBus, clock): the arm stands at ``start`` (rad), its torque off."""
    clock = clock or FakeClock()
    desc = description.so100()
    calibration = fake_calibration(desc)
    bus = FakeBus(ids=range(1, 7), start=calibration.to_ticks(start), clock=clock)
    arm = ServoArm(bus, calibration, desc, control_freq=control_freq, clock=clock, **arm_options)
    return arm, bus, clock
