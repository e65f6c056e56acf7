"""A servo bus, and a fake one that misbehaves on purpose.

Low-cost arms (SO-100/101 with Feetech STS3215 servos, Koch with Dynamixel XL330/XL430) are
chains of smart servos on one serial bus. Every backend talks to its bus through the same few
calls, so the arm code above it (``hardware.servo_arm``) and every test run unchanged against
the real bus (``hardware.vendor``) or ``FakeBus``:

    bus.read("position")        # one number per servo id: raw encoder ticks (0..4095 a turn)
    bus.read("velocity")        # ticks/s;  "current": A;  "load": fraction of rated torque;
    bus.read("temperature")     # degrees C
    bus.write("goal", ticks)    # position targets, raw ticks
    bus.write("torque", [1, 0, ...])
    bus.close()

A read or write that fails (a timeout, a checksum error, a cable pulled out) raises
``BusError``; the arm code decides whether to retry or to stop.

``FakeBus`` simulates the servos well enough to test everything that sits above a bus: each
servo moves towards its goal at a limited speed while its torque is on, draws current in
proportion to how far it is from the goal, warms up with current and cools towards the room;
an ``obstacle`` stops a servo (a gripper closing on a cube) so it stalls, draws current and
heats. ``inject`` schedules the faults a lab meets: a failed read, a current spike, an
overheating servo, an encoder that reads nonsense, a dead driver that must be restarted.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Protocol

import numpy as np

TICKS_PER_TURN = 4096
READS = ("position", "velocity", "current", "load", "temperature")
WRITES = ("goal", "torque")


class BusError(IOError):
    """A failed bus transfer, naming the servos and the register."""


class ServoBus(Protocol):
    ids: tuple[int, ...]

    def read(self, register: str) -> np.ndarray:
        """One value per servo in ``ids`` order (see the module docstring for units)."""

    def write(self, register: str, values) -> None:
        """One value per servo in ``ids`` order."""

    def close(self) -> None:
        """Release the port. Torque stays as it was: the caller turns it off first."""


@dataclasses.dataclass
class Fault:
    kind: str
    joint: int | None = None
    value: float | None = None
    count: int = 1                  # how many bus transfers it lasts (crash: until restart)


class FakeBus:
    """Simulated servos on a bus. ``clock`` drives the physics, so tests can run time fast."""

    def __init__(self, ids=(1, 2, 3, 4, 5, 6), start=None, speed: float = 3000.0, clock=time.monotonic,
                 room: float = 25.0, amps_per_tick: float = 0.004, stall_current: float = 0.8):
        self.ids = tuple(ids)
        n = len(self.ids)
        self.position = np.full(n, TICKS_PER_TURN / 2) if start is None else np.asarray(start, dtype=float).copy()
        self.goal = self.position.copy()
        self.torque_on = np.zeros(n, dtype=bool)
        self.temperature = np.full(n, room)
        self.velocity = np.zeros(n)
        self.obstacle: dict[int, float] = {}        # joint index -> a count it cannot go below
        self.speed, self.room, self.clock = speed, room, clock
        self.amps_per_tick, self.stall_current = amps_per_tick, stall_current
        self.faults: list[Fault] = []
        self.crashed = False
        self.closed = False
        self.restarts = 0
        self.writes: list[tuple[str, np.ndarray]] = []   # every write that reached the servos
        self.last = clock()

    # ---------------------------------------------------------------- faults
    def inject(self, kind: str, joint: int | None = None, value: float | None = None, count: int = 1) -> None:
        """Schedule a fault: "read_error" and "write_error" (the next ``count`` transfers fail),
        "current_spike" and "overheat" (joint reads ``value`` A or degrees C), "encoder" (joint's
        position reads ``value`` ticks), "crash" (the driver dies: every transfer fails until
        ``restart``)."""
        if kind == "crash":
            self.crashed = True
            return
        self.faults.append(Fault(kind, joint, value, count))

    def restart(self) -> None:
        """Reconnect after a crash, as a real driver reopens its port (servos keep their state)."""
        self.crashed, self.closed = False, False
        self.restarts += 1

    def _fault(self, kind: str) -> Fault | None:
        for f in self.faults:
            if f.kind == kind:
                f.count -= 1
                if f.count <= 0:
                    self.faults.remove(f)
                return f
        return None

    def _check(self, register: str) -> None:
        if self.closed:
            raise BusError(f"bus closed: cannot access {register!r} of servos {self.ids}")
        if self.crashed:
            raise BusError(f"no answer from servos {self.ids} ({register!r}): the driver is down")

    # ---------------------------------------------------------------- physics
    def _advance(self) -> None:
        now = self.clock()
        dt, self.last = max(0.0, now - self.last), now
        if dt == 0:
            return
        before = self.position.copy()
        move = np.clip(self.goal - self.position, -self.speed * dt, self.speed * dt)
        self.position = np.where(self.torque_on, self.position + move, self.position)
        for j, wall in self.obstacle.items():            # a jaw closing (counts falling) stops at the cube
            self.position[j] = max(self.position[j], wall)
        self.velocity = (self.position - before) / dt
        heat = 4.0 * self._current() ** 2                 # degrees C per second at 1 A: warms in minutes
        self.temperature += dt * (heat - 0.02 * (self.temperature - self.room))

    def _current(self) -> np.ndarray:
        error = np.abs(self.goal - self.position)
        return np.where(self.torque_on, np.minimum(self.amps_per_tick * error, self.stall_current), 0.0)

    # ---------------------------------------------------------------- the bus
    def read(self, register: str) -> np.ndarray:
        self._check(register)
        if register not in READS:
            raise ValueError(f"no readable register {register!r}; readable: {READS}")
        if self._fault("read_error"):
            raise BusError(f"read of {register!r} from servos {self.ids} timed out")
        self._advance()
        if register == "position":
            out = np.round(self.position).astype(np.int64)
            f = self._fault("encoder")
            if f:
                out[f.joint] = int(f.value)
            return out
        if register == "velocity":
            return self.velocity.copy()
        if register == "current":
            out = self._current()
            f = self._fault("current_spike")
            if f:
                out[f.joint] = f.value
            return out
        if register == "load":
            return np.sign(self.goal - self.position) * self._current() / self.stall_current
        out = self.temperature.copy()
        f = self._fault("overheat")
        if f:
            self.temperature[f.joint] = out[f.joint] = f.value
        return out

    def write(self, register: str, values) -> None:
        self._check(register)
        if register not in WRITES:
            raise ValueError(f"no writable register {register!r}; writable: {WRITES}")
        values = np.asarray(values, dtype=float)
        if values.shape != (len(self.ids),):
            raise ValueError(f"write {register!r}: one value per servo {self.ids}, got shape {values.shape}")
        if self._fault("write_error"):
            raise BusError(f"write of {register!r} to servos {self.ids} got no acknowledgement")
        self._advance()
        if register == "goal":
            self.goal = np.clip(values, 0, TICKS_PER_TURN - 1)
        else:
            self.torque_on = values.astype(bool)
        self.writes.append((register, values.copy()))

    def close(self) -> None:
        self.closed = True


class FakeClock:
    """A clock that moves only when told: ``clock.advance(dt)``; ``clock.sleep`` advances it."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += max(0.0, dt)

    sleep = advance
