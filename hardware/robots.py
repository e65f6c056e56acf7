"""Build the lab's robots by name: the twin, a fake arm, and the real arms with their calibration.

    robot = make("so100", port="/dev/ttyACM0", calibration="calibration/so100.json")

``ROBOTS`` lists what ``python -m hardware.run --robot`` and ``python -m hardware.calibrate``
accept. Each real arm refuses to start without a calibration file that matches it.
"""
from __future__ import annotations

import time

from hardware.safety import Box

ROBOTS = ("twin", "fake", "so100", "koch", "xarm")
# workspace boxes in each robot's base frame, metres: above the table, in front of the arm
BOXES = {"so100": Box((-0.30, -0.45, 0.02), (0.30, -0.05, 0.35)),
         "koch": Box((-0.25, -0.40, 0.02), (0.25, -0.05, 0.30)),
         "xarm": Box((0.15, -0.40, 0.05), (0.60, 0.40, 0.50))}
BOXES["twin"] = BOXES["fake"] = BOXES["so100"]


def bus_and_description(robot: str, port: str):
    from hardware import description, vendor

    if robot == "so100":
        return vendor.FeetechBus(port, ids=range(1, 7)), description.so100()
    if robot == "koch":
        return vendor.DynamixelBus(port, ids=range(1, 7)), description.koch()
    raise ValueError(f"{robot!r} is not a servo-bus arm; those are so100 and koch")


def make(robot: str, *, port: str | None = None, calibration: str | None = None, address: str | None = None,
         env_id: str = "PickCubeSO100-v1", seed: int = 0, camera: bool = False):
    """A ``wmlib.robot.Robot`` by name (see ``ROBOTS``)."""
    if robot == "twin":
        from hardware.twin import Twin

        return Twin(env_id, seed=seed, camera=camera)
    if robot == "fake":
        from hardware.fake import fake_so100

        return fake_so100(clock=time.monotonic)[0]
    if robot in ("so100", "koch"):
        from hardware import calibration as cal
        from hardware.servo_arm import ServoArm

        if not port or not calibration:
            raise ValueError(f"--robot {robot} needs --port (e.g. /dev/ttyACM0) and --calibration (a file written by "
                             f"`python -m hardware.calibrate --robot {robot}`)")
        bus, desc = bus_and_description(robot, port)
        try:
            return ServoArm(bus, cal.load(calibration, robot, desc.joints), desc)
        except BaseException:
            bus.close()
            raise
    if robot == "xarm":
        from hardware.vendor import XArmRobot

        if not address:
            raise ValueError("--robot xarm needs --address (the arm's IP address)")
        return XArmRobot(address)
    raise ValueError(f"unknown robot {robot!r}; known: {ROBOTS}")
