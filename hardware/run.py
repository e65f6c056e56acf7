"""Run the robot lab: replay, learner and actor, on the twin or a real arm.

    python -m hardware.run --robot twin --minutes 5 --out lab_runs/twin
    python -m hardware.run --robot so100 --port /dev/ttyACM0 --calibration calibration/so100.json --minutes 10

By default this starts the replay server and the learner as processes of their own (their logs
go to ``<out>/replay.log`` and ``<out>/learner.log``), then acts in this process. Give
``--replay HOST:PORT`` to use a replay server (and its learner) running elsewhere, e.g. on a
machine with a GPU. While it runs, type p (pause), c (continue), r (reset the episode) or
q (stop, torque off) and Enter; or send SIGUSR1 (pause/continue), SIGUSR2 (reset), SIGTERM or
Ctrl-C (stop). Every finalised episode is in ``<out>/episodes`` (the course's RLDS format;
``hardware.lerobot_export`` turns it into a LeRobotDataset). A report goes to ``<out>/report.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

from hardware import actor
from hardware.guard import Operator
from hardware.replay import Replay
from hardware.robots import BOXES, ROBOTS, make
from hardware.safety import Box, Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start(module: str, args: list[str], log: pathlib.Path, nice: int = 0) -> subprocess.Popen:
    """``python -m module args`` as a child process, its output appended to ``log``; ``nice`` > 0
    lowers its priority (the learner's: on a shared CPU the control loop must win)."""
    repo = str(pathlib.Path(__file__).resolve().parents[1])            # so the child finds hardware/ from anywhere
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log.open("a"), stderr=subprocess.STDOUT,
                            env=env, preexec_fn=(lambda: os.nice(nice)) if nice else None)


def wait_for(replay: Replay, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while replay.size() is None:
        if time.monotonic() > end:
            raise RuntimeError(f"no replay server answered at {replay.address} within {seconds:.0f} s "
                               f"({replay.last_error})")
        time.sleep(0.5)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robot", choices=ROBOTS, default="twin")
    parser.add_argument("--port", help="serial port of a servo arm, e.g. /dev/ttyACM0")
    parser.add_argument("--calibration", help="calibration file of a servo arm (python -m hardware.calibrate)")
    parser.add_argument("--address", help="IP address of an xArm")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--max-steps", type=int, default=60, help="control steps per episode")
    parser.add_argument("--out", default="lab_runs/run")
    parser.add_argument("--replay", default=None, help="HOST:PORT of a running replay server (default: start one)")
    parser.add_argument("--box", type=float, nargs=6, metavar=("X0", "Y0", "Z0", "X1", "Y1", "Z1"),
                        help="workspace box in the robot's base frame, metres (default: the robot's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    box = Box(tuple(args.box[:3]), tuple(args.box[3:])) if args.box else BOXES[args.robot]
    children = []
    try:
        if args.replay is None:
            port = free_port()
            args.replay = f"localhost:{port}"
            children.append(start("hardware.replay", ["--port", str(port), "--root", str(out / "episodes")],
                                  out / "replay.log"))
            children.append(start("hardware.learner", ["--replay", args.replay, "--out", str(out / "learner")],
                                  out / "learner.log", nice=10))
        replay = Replay(args.replay)
        wait_for(replay)
        print(f"[run] replay at {args.replay}; acting on {args.robot} for {args.minutes} min "
              "(p pause, c continue, r reset, q stop)", flush=True)
        robot = make(args.robot, port=args.port, calibration=args.calibration, address=args.address, seed=args.seed)
        operator = Operator.from_keyboard().signals() if sys.stdin.isatty() else Operator().signals()
        report = actor.run(robot, Config(workspace=box), out / "episodes", replay, out / "learner",
                           minutes=args.minutes, max_steps=args.max_steps, seed=args.seed, operator=operator)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    done = report["episodes"]
    report["successes"] = sum(e["success"] for e in done)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"[run] {len(done)} episodes, {report['successes']} reached; control rate {report['rate']['hz']:.0f} Hz, "
          f"{report['rate']['misses']} of {report['rate']['periods']} periods missed; "
          f"{report['interventions']} interventions; report in {out / 'report.json'}")
    return report


if __name__ == "__main__":
    main()
