"""The guarded robot: the only way a controller reaches a motor.

    with Guarded(robot, config, operator=Operator.from_keyboard()) as arm:
        obs = arm.reset(seed)
        while True:
            obs, executed, reasons = arm.step(policy(obs))     # executed: what the motors got

Each ``step`` (1) takes the person's commands (pause, continue, reset, stop), (2) asks the
watchdog whether the loop has been silent too long, (3) reads the sensors and stops on a
current or temperature over its limit, (4) passes the proposal through the safety layer (a
paused robot holds), (5) sends the filtered target, and logs every intervention with its reason.

Every way out turns the torque off: the end of the ``with`` block, an exception, Ctrl-C
(KeyboardInterrupt), SIGTERM (turned into SystemExit), and a loop that hangs (the watchdog's
own thread turns the torque off). ``SafetyStop`` and ``OperatorReset`` say why a run ended.
"""
from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time

import numpy as np

from hardware.safety import Config, SafetyLayer
from hardware.timing import Watchdog
from wmlib.robot import Robot

log = logging.getLogger("hardware")
COMMANDS = {"p": "pause", "c": "continue", "r": "reset", "q": "stop", "e": "stop", " ": "stop"}


class SafetyStop(RuntimeError):
    """The robot was stopped (torque off) for ``reason``; a person must look before the next run."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"safety stop: {reason}")


class OperatorReset(RuntimeError):
    """The person asked to end this episode and reset the scene."""


class Operator:
    """Commands from a person: ``press("pause" | "continue" | "reset" | "stop")``, thread-safe.
    ``from_keyboard()`` reads p, c, r and q (or e) from a line-buffered terminal; ``signals()``
    maps SIGUSR1 to pause/continue and SIGUSR2 to reset (a second terminal: ``kill -USR1 <pid>``)."""

    def __init__(self):
        self.commands: queue.Queue = queue.Queue()
        self.paused = False

    def press(self, command: str) -> None:
        if command not in set(COMMANDS.values()):
            raise ValueError(f"unknown operator command {command!r}; known: {sorted(set(COMMANDS.values()))}")
        self.commands.put(command)

    @classmethod
    def from_keyboard(cls, stream=None) -> "Operator":
        operator = cls()
        stream = stream or sys.stdin

        def listen():
            for line in stream:
                for key in line.strip().lower()[:1] or " ":
                    if key in COMMANDS:
                        operator.press(COMMANDS[key])

        threading.Thread(target=listen, name="operator-keys", daemon=True).start()
        return operator

    def signals(self) -> "Operator":
        signal.signal(signal.SIGUSR1, lambda *_: self.press("continue" if self.paused else "pause"))
        signal.signal(signal.SIGUSR2, lambda *_: self.press("reset"))
        return self

    def pending(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.commands.get_nowait())
            except queue.Empty:
                return out


def _sigterm(signum, frame):
    raise SystemExit(f"signal {signum}")


class Guarded:
    """A robot behind its safety layer, watchdog and operator. Use as a context manager."""

    def __init__(self, robot: Robot, config: Config, operator: Operator | None = None,
                 hold_after: float = 0.25, off_after: float = 1.0, clock=time.monotonic, rules: dict | None = None):
        """rules: replacements, by name, for the safety layer's ``clamp`` (``clamp_target``) and
        ``keep_in`` (``workspace_filter``) and the watchdog's ``decide`` (``watchdog_state``)."""
        rules = rules or {}
        self.robot, self.operator = robot, operator or Operator()
        self.layer = SafetyLayer(robot.limits, robot.tool_position, config, robot.control_freq,
                                 clamp=rules.get("clamp"), keep_in=rules.get("keep_in"))
        self.watchdog = Watchdog(hold_after, off_after, clock=clock, decide=rules.get("decide"))
        self.lock = threading.RLock()
        self.interventions: list[dict] = []
        self.steps = 0
        self.stopped: str | None = None
        self._previous_sigterm = None

    # ---------------------------------------------------------------- ways in and out
    def __enter__(self) -> "Guarded":
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, _sigterm)
        self.watchdog.feed()
        self.watchdog.start(on_off=lambda: self.emergency_off("watchdog: no command for "
                                                              f"{self.watchdog.off_after:.2f} s"),
                            on_hold=lambda: log.warning("watchdog: no command for %.2f s: holding",
                                                        self.watchdog.hold_after))
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        self.watchdog.stop()
        if kind is None:
            self._off("normal end")
        else:
            self.emergency_off(f"{kind.__name__}: {error}")
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
        return False                                   # never swallow the exception

    def _off(self, why: str) -> None:
        acquired = self.lock.acquire(timeout=0.5)      # a hung bus call must not keep the torque on
        try:
            self.robot.close()
        finally:
            if acquired:
                self.lock.release()
        log.info("torque off (%s)", why)

    def emergency_off(self, reason: str) -> None:
        """Torque off now, from any thread; the next ``step`` raises ``SafetyStop``."""
        if self.stopped is None:
            self.stopped = reason
            log.error("safety stop: %s", reason)
            self.interventions.append({"step": self.steps, "time": time.monotonic(), "reasons": [f"stop: {reason}"]})
        self._off(reason)

    def idle(self, seconds: float = 30.0) -> None:
        """The robot will stand still for up to ``seconds`` (between episodes: writing, resetting);
        the watchdog allows that silence once. A loop that stays silent longer is still stopped."""
        self.watchdog.grace(seconds)

    # ---------------------------------------------------------------- the loop
    def observe(self) -> dict:
        """Read the observation; nothing is sent, so the safety layer has nothing to pass."""
        if self.stopped:
            raise SafetyStop(self.stopped)
        with self.lock:
            return self.robot.observe()

    def reset(self, seed: int | None = None) -> dict:
        if self.stopped:
            raise SafetyStop(self.stopped)
        self.watchdog.feed()
        with self.lock:
            obs = self.robot.reset(seed)
            self.layer.start(self.robot.state())
        self.watchdog.feed()
        self.operator.paused = False
        return obs

    def step(self, proposed):
        """proposed (J,) -> (observation, executed target (J,), reasons)."""
        for command in self.operator.pending():
            if command == "stop":
                self.emergency_off("the operator pressed stop")
            elif command == "reset":
                raise OperatorReset("the operator asked for a reset")
            else:
                self.operator.paused = command == "pause"
                log.warning("operator: %s", command)
        if self.stopped is None and self.watchdog.poll() == "off":
            self.emergency_off("watchdog: the control loop went silent")
        if self.stopped:
            raise SafetyStop(self.stopped)
        with self.lock:
            reading = self.robot.state()
            alarm = self.layer.check(reading)
            if alarm:
                self.emergency_off(alarm)
                raise SafetyStop(alarm)
            reasons = []
            if self.operator.paused:
                proposed, reasons = self.layer.reference, ["paused by the operator: hold"]
            target, more = self.layer.filter(proposed, reading)
            reasons += more
            obs = self.robot.step(target)
        self.watchdog.feed()
        self.steps += 1
        if reasons:
            self.interventions.append({"step": self.steps, "time": reading.time, "reasons": reasons})
            log.warning("step %d: %s", self.steps, "; ".join(reasons))
        return obs, np.asarray(target), reasons
