"""Calibrate a servo arm on the command line (a person at the arm, never in a notebook).

    python -m hardware.calibrate --robot so100 --port /dev/ttyACM0 --out calibration/so100.json
"""
from __future__ import annotations

import argparse

from hardware import calibration
from hardware.robots import bus_and_description


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", choices=("so100", "koch"), required=True)
    parser.add_argument("--port", required=True, help="the bus's serial port, e.g. /dev/ttyACM0")
    parser.add_argument("--out", required=True, help="the calibration file to write")
    parser.add_argument("--sweep-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    bus, desc = bus_and_description(args.robot, args.port)
    try:
        made = calibration.calibrate(bus, args.robot, desc.joints, sweep_seconds=args.sweep_seconds)
    finally:
        bus.close()
    path = made.save(args.out)
    print(f"[calibrate] wrote {path}")
    for name, j in made.joints.items():
        print(f"  {name:14s} servo {j.id}: zero at count {j.offset}, sign {j.sign:+d}, range {j.low}..{j.high}")


if __name__ == "__main__":
    main()
