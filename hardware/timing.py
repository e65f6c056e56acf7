"""Time in the control loop: a fixed rate that counts its misses, and a watchdog.

``Rate(hz)``: call ``wait()`` once per period. It sleeps until the next tick of a fixed grid
(t0, t0 + 1/hz, ...). A period whose work ran past its deadline is a *miss*: it is counted,
and the grid skips ahead to the next tick in the future instead of trying to catch up with a
burst of short periods (a burst of commands is exactly what a servo should not get).

``Watchdog(hold_after, off_after)``: the control loop calls ``feed()`` with each fresh command.
``poll(now)`` says what the robot must do: "run", "hold" (no fresh command for ``hold_after``
seconds: keep the last safe position) or "off" (none for ``off_after``: torque off). A thread
(``start``) polls it, so a control loop that hangs (a stuck policy, a dead learner, a blocked
disk) still ends with the torque off.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time


def next_deadline(now: float, deadline: float, period: float) -> tuple[float, bool, float]:
    """The fixed-rate rule, at the end of one period's work.

    now: the time; deadline: when this period ends; period: 1 / rate (all seconds).
    Returns (the next period's deadline, missed, how long to sleep now). On time: sleep until
    ``deadline``, the next ends one period later. Late (now > deadline): a miss; the grid skips
    the ticks already past, sleeps to the first tick in the future, and the next period ends one
    period after that tick: no burst of short periods to catch up.
    """
    if now <= deadline:
        return deadline + period, False, deadline - now
    tick = deadline + (math.floor((now - deadline) / period) + 1) * period     # first grid tick after now
    return tick + period, True, tick - now


@dataclasses.dataclass
class Rate:
    """A fixed-rate loop: ``wait()`` at the end of each period."""

    hz: float
    clock: callable = time.monotonic
    sleep: callable = time.sleep
    periods: int = 0
    misses: int = 0
    worst_overrun: float = 0.0      # s past the deadline, the largest seen
    next_deadline: callable = None  # the rule below (a chapter-7 exercise); None: this module's

    def __post_init__(self):
        if not self.hz > 0:
            raise ValueError(f"a control rate must be positive, got {self.hz} Hz")
        self.period = 1.0 / self.hz
        self.deadline = self.clock() + self.period
        self.next_deadline = self.next_deadline or next_deadline

    def wait(self) -> bool:
        """Sleep to the end of this period; return False (and count a miss) if it was already over."""
        now = self.clock()
        self.periods += 1
        deadline, missed, pause = self.next_deadline(now, self.deadline, self.period)
        if missed:
            self.misses += 1
            self.worst_overrun = max(self.worst_overrun, now - self.deadline)
        self.sleep(pause)
        self.deadline = deadline
        return not missed

    def restart(self) -> None:
        """Start a fresh grid from now (after a pause that was no control period, e.g. a reset)."""
        self.deadline = self.clock() + self.period

    def report(self) -> dict:
        return {"hz": self.hz, "periods": self.periods, "misses": self.misses,
                "miss_rate": self.misses / self.periods if self.periods else 0.0,
                "worst_overrun_ms": 1000 * self.worst_overrun}


def watchdog_state(silent: float, hold_after: float, off_after: float, tripped: bool) -> str:
    """What the robot must do after ``silent`` seconds without a fresh command:
    "off" once tripped or from ``off_after`` on; else "hold" from ``hold_after`` on; else "run"."""
    if tripped or silent >= off_after:
        return "off"
    return "hold" if silent >= hold_after else "run"


class Watchdog:
    """Hold after ``hold_after`` s without a fresh command, torque off after ``off_after`` s."""

    def __init__(self, hold_after: float, off_after: float, clock=time.monotonic, decide=None):
        if not 0 < hold_after < off_after:
            raise ValueError(f"the watchdog needs 0 < hold_after < off_after, got {hold_after}, {off_after}")
        self.hold_after, self.off_after, self.clock = hold_after, off_after, clock
        self.decide = decide or watchdog_state          # the rule (a chapter-7 exercise)
        self.last = clock()
        self.extra = 0.0                # seconds of silence allowed on top, until the next feed
        self.tripped = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def feed(self) -> None:
        """A fresh command arrived. After ``off``, feeding does not revive the robot."""
        self.last, self.extra = self.clock(), 0.0

    def grace(self, seconds: float) -> None:
        """Allow ``seconds`` more of silence from now (known slow work while the robot stands still,
        such as writing an episode between two episodes); the next ``feed`` ends it."""
        self.last, self.extra = self.clock(), seconds

    def poll(self, now: float | None = None) -> str:
        """"run", "hold" or "off". Once "off", always "off" (a person must restart the run)."""
        silent = (self.clock() if now is None else now) - self.last - self.extra
        state = self.decide(silent, self.hold_after, self.off_after, self.tripped)
        self.tripped = state == "off"
        return state

    def start(self, on_off, on_hold=None, every: float = 0.01) -> None:
        """Poll in a daemon thread: call ``on_hold()`` when the loop goes silent, ``on_off()`` once
        when it stays silent; both run in the watchdog's thread, not the control loop's."""
        def watch():
            held = False
            while not self._stop.wait(every):
                state = self.poll()
                if state == "off":
                    on_off()
                    return
                if state == "hold" and not held and on_hold is not None:
                    on_hold()
                held = state == "hold"

        self._thread = threading.Thread(target=watch, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
