"""The real servo buses and the xArm, through their makers' own SDKs.

    bus = FeetechBus("/dev/ttyACM0", ids=range(1, 7))       # SO-100 / SO-101: STS3215 servos
    bus = DynamixelBus("/dev/ttyUSB0", ids=range(1, 7))     # Koch: XL430-W250 and XL330 servos
    arm = ServoArm(bus, calibration, description)            # hardware.servo_arm, unchanged
    xarm = XArmRobot("192.168.1.185")                        # a UFACTORY xArm 5/6/7

``FeetechBus`` and ``DynamixelBus`` implement ``hardware.bus.ServoBus`` with the names and units
of ``FakeBus``: position and goal in counts (0..4095 a turn), velocity in counts/s, current in
A, load as a signed fraction of full torque, temperature in degrees C. Each read is one sync
read for every id (one instruction packet, then each servo's status packet in turn); each
write one sync write. The addresses come from the servos' control tables, cited where they
are defined. A failed transfer raises ``BusError`` naming the register, the servos and the
SDK's own message; ``open`` says what a person should check. Sync writes are not
acknowledged by the servos: a servo that stopped answering shows up at the next read.

Before a bus opens, each servo must have been given its id and the bus's baud rate once, one
servo on the bus at a time (new servos all answer as id 1; STS3215 ship at 1000000 baud,
XL330/XL430 at 57600), and a Dynamixel must be in a position mode (Operating Mode 3, its factory
setting; LeRobot's 4, extended, and 5, current-based, work while every joint stays within one
turn). ``open`` pings every id and refuses a servo model it does not know.

The SDKs are imported when a bus or an arm is made, so this module imports without them
(``pip install -e '.[hardware]'`` installs them).
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from hardware.bus import READS, TICKS_PER_TURN, WRITES, BusError
from wmlib.robot import JointLimits, Reading

log = logging.getLogger("hardware")

PORT_HELP = ("Check the adapter's USB cable, the port name (ls /dev/ttyACM* /dev/ttyUSB*; "
             "/dev/serial/by-id/ names stay the same across replugging), that no other program holds the port, "
             "and that you may open it (Linux: sudo usermod -aG dialout $USER, then log in again).")
SERVO_HELP = ("Check the servos' own power supply (USB does not power them), the cables between servos, and that "
              "each servo was given its id and this baud rate beforehand (new servos all answer as id 1).")


# ---------------------------------------------------------------- the servos' sign conventions
def feetech_signed(raw: int, sign_bit: int) -> int:
    """Feetech sign-magnitude: ``sign_bit`` set means negative; the bits below it are the size.
    (STS3215: bit 15 for position and speed, bit 10 for load.)"""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw >> sign_bit & 1 else magnitude


def dynamixel_signed(raw: int, length: int) -> int:
    """Dynamixel two's complement over ``length`` bytes."""
    bits = 8 * length
    return raw - (1 << bits) if raw >> (bits - 1) & 1 else raw


@dataclasses.dataclass(frozen=True)
class Register:
    """Where one quantity lives in a servo's control table (multi-byte values are little-endian)."""

    address: int
    length: int                     # bytes
    scale: float = 1.0              # bus units (see hardware.bus) per raw count
    sign_bit: int | None = None     # the bit that marks a negative value; None: the register is never negative


@dataclasses.dataclass(frozen=True)
class DynamixelModel:
    name: str
    stall_current: float | None     # A at 5 V (e-Manual specifications); None: no current sensor


# Model Number (address 0) of each servo this bus knows, from the e-Manual control tables.
DYNAMIXEL_MODELS = {
    1190: DynamixelModel("XL330-M077", 1.47),       # Koch leader arm
    1200: DynamixelModel("XL330-M288", 1.47),       # Koch follower: elbow, wrist and gripper
    1060: DynamixelModel("XL430-W250", None),       # Koch follower: shoulder pan and lift
}


# ---------------------------------------------------------------- what both buses share
class _SdkBus:
    """A ``ServoBus`` through a ROBOTIS-style SDK (the Feetech SDK is a port of the Dynamixel one):
    ``PortHandler``, a packet handler, ``GroupSyncRead`` and ``GroupSyncWrite``."""

    vendor = ""
    REGISTERS: dict[str, Register] = {}
    MODELS: dict[int, str] = {}

    def __init__(self, port: str, ids, baudrate: int, port_handler=None, packet_handler=None):
        """``port_handler`` and ``packet_handler`` replace the SDK's (tests pass stand-ins)."""
        self.sdk = self._import_sdk()
        self.port, self.ids, self.baudrate = str(port), tuple(int(i) for i in ids), int(baudrate)
        if not self.ids or len(set(self.ids)) != len(self.ids) or not all(0 <= i <= 252 for i in self.ids):
            raise ValueError(f"servo ids must be distinct, in 0..252, at least one: got {self.ids}")
        self.port_handler = port_handler if port_handler is not None else self.sdk.PortHandler(self.port)
        self.packets = packet_handler if packet_handler is not None else self._packet_handler()
        self.models: dict[int, int] = {}            # servo id -> the model number its ping reported
        self.closed = True
        self.open()

    # ---------------------------------------------------------------- the port
    def open(self) -> None:
        """Open the port at ``baudrate`` and ping every servo; ``BusError`` says what to check."""
        where = f"{self.vendor} bus on {self.port}"
        try:
            opened = self.port_handler.openPort()
            self.closed = not opened
            supported = opened and self.port_handler.setBaudRate(self.baudrate)
        except OSError as err:                      # pyserial's SerialException: no such port, permission denied
            self._close_quietly()
            raise BusError(f"{where}: cannot open the port ({err}). {PORT_HELP}") from err
        if not opened:
            raise BusError(f"{where}: the SDK could not open the port. {PORT_HELP}")
        if not supported:
            self._close_quietly()
            raise BusError(f"{where}: the {self.vendor} SDK does not support {self.baudrate} baud. Use the rate the "
                           "servos were set to (1000000 for SO-100/101 and Koch arms set up for LeRobot).")
        try:
            self.models = self._ping()
        except BusError:
            self._close_quietly()
            raise

    def _ping(self) -> dict[int, int]:
        models, problems = {}, []
        for sid in self.ids:
            model, result, error = self.packets.ping(self.port_handler, sid)
            if result != self.sdk.COMM_SUCCESS:
                problems.append(f"servo {sid} does not answer ({self.packets.getTxRxResult(result)})")
            elif error:
                problems.append(f"servo {sid} reports error {error:#04x} ({self.packets.getRxPacketError(error)})")
            elif model not in self.MODELS:
                problems.append(f"servo {sid} is model number {model}, which this bus does not know "
                                f"(it knows {self.MODELS})")
            else:
                models[sid] = model
        if problems:
            raise BusError(f"{self.vendor} bus on {self.port} at {self.baudrate} baud: {'; '.join(problems)}. "
                           f"{SERVO_HELP}")
        return models

    def restart(self) -> None:
        """Close and reopen the port, as after a driver crash; the servos keep their state."""
        self._close_quietly()
        self.port_handler.is_using = False
        self.open()

    def _close_quietly(self) -> None:
        try:
            self.close()
        except OSError as err:
            log.warning("%s bus on %s: closing: %s", self.vendor, self.port, err)
        self.closed = True

    def close(self) -> None:
        """Release the port (torque stays as it was). Safe to call twice."""
        if not self.closed:
            self.closed = True
            self.port_handler.closePort()

    def _check_open(self, register: str) -> None:
        if self.closed:
            raise BusError(f"{self.vendor} bus on {self.port} is closed: cannot access {register!r} of servos "
                           f"{self.ids}")

    # ---------------------------------------------------------------- the ServoBus calls
    def read(self, register: str) -> np.ndarray:
        """One value per servo in ``ids`` order, in the units of ``hardware.bus``."""
        if register not in READS:
            raise ValueError(f"no readable register {register!r}; readable: {READS}")
        reg = self.REGISTERS[register]
        values = [raw if reg.sign_bit is None else self._signed(raw, reg) for raw in self._sync_read(register)]
        if register == "position":
            return np.array(values, dtype=np.int64)
        return np.array(values, dtype=np.float64) * reg.scale

    def write(self, register: str, values) -> None:
        """``goal``: counts, rounded and clipped to 0..4095; ``torque``: nonzero on, zero off."""
        if register not in WRITES:
            raise ValueError(f"no writable register {register!r}; writable: {WRITES}")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(self.ids),):
            raise ValueError(f"write {register!r}: one value per servo {self.ids}, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError(f"write {register!r}: every value must be finite, got {values}")
        if register == "goal":
            counts = np.clip(np.round(values), 0, TICKS_PER_TURN - 1)
        else:
            counts = values != 0                    # exactly 0 or 1: other values mean other things to a servo
        self._sync_write(register, counts.astype(np.int64))

    # ---------------------------------------------------------------- transfers
    def _sync_read(self, register: str) -> list[int]:
        """Raw counts, one per id: the group's one sync-read instruction, then each servo's status
        packet read by id (the SDK's own loop would drop the servo's error byte and its id)."""
        self._check_open(register)
        reg, ok = self.REGISTERS[register], self.sdk.COMM_SUCCESS
        what = f"{register!r} (address {reg.address}, {reg.length} bytes) from servos {self.ids} on {self.port}"
        group = self.sdk.GroupSyncRead(self.port_handler, self.packets, reg.address, reg.length)
        for sid in self.ids:
            group.addParam(sid)
        raw = []
        try:
            self._discard_input()
            result = group.txPacket()
            if result != ok:
                raise BusError(f"{self.vendor} sync read of {what} failed: {self.packets.getTxRxResult(result)}")
            for n, sid in enumerate(self.ids):
                data, result, error = self.packets.readRx(self.port_handler, sid, reg.length)
                if result != ok:
                    rest = f"; servos {self.ids[n + 1:]} after it were not read" if n + 1 < len(self.ids) else ""
                    raise BusError(f"servo {sid} did not answer the sync read of {what}: "
                                   f"{self.packets.getTxRxResult(result)}{rest}. Check its cable and power.")
                if error:
                    raise BusError(f"servo {sid} answered the sync read of {what} with error {error:#04x}: "
                                   f"{self.packets.getRxPacketError(error)}")
                raw.append(int.from_bytes(bytes(data[:reg.length]), "little"))
        except BaseException:
            self.port_handler.is_using = False      # an interrupted transfer (Ctrl-C) must not leave the port busy
            raise
        return raw

    def _sync_write(self, register: str, counts: np.ndarray) -> None:
        self._check_open(register)
        reg = self.REGISTERS[register]
        group = self.sdk.GroupSyncWrite(self.port_handler, self.packets, reg.address, reg.length)
        for sid, count in zip(self.ids, counts):
            group.addParam(sid, list(int(count).to_bytes(reg.length, "little")))
        try:
            result = group.txPacket()
        except BaseException:
            self.port_handler.is_using = False
            raise
        if result != self.sdk.COMM_SUCCESS:
            raise BusError(f"{self.vendor} sync write of {register!r} (address {reg.address}, {reg.length} bytes) to "
                           f"servos {self.ids} on {self.port} failed: {self.packets.getTxRxResult(result)}")

    def _discard_input(self) -> None:
        """Drop bytes still waiting from an earlier, failed read (a late status packet would otherwise be
        taken for this read's answer). The Feetech SDK's ``clearPort`` flushes only the output."""
        serial_port = getattr(self.port_handler, "ser", None)
        if serial_port is not None:
            serial_port.reset_input_buffer()

    # ---------------------------------------------------------------- per vendor
    def _import_sdk(self):
        raise NotImplementedError

    def _packet_handler(self):
        raise NotImplementedError

    def _signed(self, raw: int, reg: Register) -> int:
        raise NotImplementedError


class FeetechBus(_SdkBus):
    """Feetech STS3215 servos (SO-100, SO-101) through ``scservo_sdk`` (feetech-servo-sdk 1.0.0)."""

    vendor = "Feetech"
    # Feetech SMS/STS series memory table (FT-SMS-STS e-manual, doc.feetech.cn), SRAM control and
    # feedback areas; little-endian (address 2, "END", reads 0); negatives in sign-magnitude.
    REGISTERS = {
        "torque": Register(40, 1),                  # 0x28 Torque Enable: 0 off, 1 on (128 sets position to 2048)
        "goal": Register(42, 2, sign_bit=15),       # 0x2A Goal Position, steps (4096 a turn)
        "position": Register(56, 2, sign_bit=15),   # 0x38 Present Position, steps
        "velocity": Register(58, 2, sign_bit=15),   # 0x3A Present Speed, steps/s
        "load": Register(60, 2, 0.001, 10),         # 0x3C Present Load, 0.1 % of full drive; direction bit 10
        "temperature": Register(63, 1),             # 0x3F Present Temperature, degrees C
        "current": Register(69, 2, 0.0065, 15),     # 0x45 Present Current, 6.5 mA
    }
    MODELS = {777: "STS3215"}                       # Model Number, address 3 (every STS3215 variant reads 777)

    def __init__(self, port: str, ids, baudrate: int = 1_000_000, port_handler=None, packet_handler=None):
        super().__init__(port, ids, baudrate, port_handler, packet_handler)

    def _import_sdk(self):
        import scservo_sdk

        return scservo_sdk

    def _packet_handler(self):
        return self.sdk.PacketHandler(0)            # 0: the STS series' little-endian byte order

    def _signed(self, raw: int, reg: Register) -> int:
        return feetech_signed(raw, reg.sign_bit)


class DynamixelBus(_SdkBus):
    """ROBOTIS XL330 and XL430 servos (Koch arms) through ``dynamixel_sdk`` 4.1.0, protocol 2.0.

    Address 126 holds Present Current on an XL330 (1 mA) but Present Load on an XL430 (0.1 %), so
    the bus keeps each servo's model from its ping: an XL430's current reads NaN (it has no current
    sensor), and an XL330's load is its current over its stall current (1.47 A at 5 V)."""

    vendor = "Dynamixel"
    # ROBOTIS e-Manual control tables of the XL330-M288, XL330-M077 and XL430-W250 (RAM area);
    # little-endian, negatives in two's complement (sign_bit: the top bit).
    REGISTERS = {
        "torque": Register(64, 1),                              # Torque Enable: 0 off, 1 on
        "goal": Register(116, 4, sign_bit=31),                  # Goal Position, 1 pulse (4096 a turn)
        "current": Register(126, 2, 0.001, 15),                 # Present Current, 1 mA (XL330 only)
        "load": Register(126, 2, 0.001, 15),                    # Present Load, 0.1 % (XL430 only)
        "velocity": Register(128, 4, 0.229 * TICKS_PER_TURN / 60, 31),  # Present Velocity, 0.229 rev/min
        "position": Register(132, 4, sign_bit=31),              # Present Position, 1 pulse
        "temperature": Register(146, 1),                        # Present Temperature, 1 degree C
    }
    MODELS = {number: model.name for number, model in DYNAMIXEL_MODELS.items()}

    def __init__(self, port: str, ids, baudrate: int = 1_000_000, port_handler=None, packet_handler=None):
        super().__init__(port, ids, baudrate, port_handler, packet_handler)

    def read(self, register: str) -> np.ndarray:
        values = super().read(register)
        if register in ("current", "load"):
            for n, sid in enumerate(self.ids):
                stall = DYNAMIXEL_MODELS[self.models[sid]].stall_current
                if register == "current" and stall is None:
                    values[n] = np.nan              # an XL430's address 126 is its load, not a current
                elif register == "load" and stall is not None:
                    values[n] /= stall              # an XL330's address 126 is its current, in A
        return values

    def _import_sdk(self):
        import dynamixel_sdk

        return dynamixel_sdk

    def _packet_handler(self):
        return self.sdk.PacketHandler(2.0)

    def _signed(self, raw: int, reg: Register) -> int:
        return dynamixel_signed(raw, reg.length)


# ---------------------------------------------------------------- the xArm
class XArmError(RuntimeError):
    """An xArm SDK call failed; ``code`` is the SDK's return code (None: no connection)."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


def xarm_joint_limits(arm, max_velocity: float) -> JointLimits:
    """Joint limits (rad) from the SDK's own table (``XCONF.Robot.JOINT_LIMITS``) for this arm's
    number of joints and type, as the SDK picks them (arms with serial numbers 1305..8499 have narrower
    ranges). ``max_velocity`` (rad/s) is what the safety layer allows each joint."""
    from xarm.core.config.x_config import XCONF

    axis, kind = int(arm.axis), arm.device_type
    try:
        if arm.sn and 1305 <= int(arm.sn[2:6]) < 8500:
            kind = int(f"{axis}1305")
    except (TypeError, ValueError):
        pass
    table = XCONF.Robot.JOINT_LIMITS.get(axis, {}).get(kind)
    if not table:
        raise XArmError(f"the xArm SDK has no joint-limit table for an arm with {axis} joints of type {kind}: pass "
                        "limits=JointLimits(...) with the ranges from the arm's user manual")
    lower, upper = np.array(table, dtype=np.float64).T
    return JointLimits(tuple(f"joint{i + 1}" for i in range(axis)), lower, upper, np.full(axis, float(max_velocity)))


def _connect_xarm(address: str):
    from xarm.wrapper import XArmAPI

    help_ = (f"check that the control box is on and its emergency stop released, the Ethernet cable, and that this "
             f"computer is on the arm's network (ping {address})")
    try:
        arm = XArmAPI(address, is_radian=True)
    except Exception as err:                        # the SDK raises a bare Exception when the connection fails
        raise XArmError(f"cannot connect to the xArm at {address} ({err}): {help_}") from err
    if not arm.connected:
        raise XArmError(f"the xArm at {address} is not connected: {help_}")
    return arm


class XArmRobot:
    """A UFACTORY xArm (5, 6 or 7 joints) as a ``wmlib.robot.Robot``, through ``xarm.wrapper.XArmAPI``.

    Targets are joint angles (rad) sent with ``set_servo_angle_j`` in servo mode (``set_mode(1)``),
    which executes each target at once, without planning: send small steps often (``control_freq``
    100 Hz; the safety layer bounds each step). Forward kinematics are the controller's own
    (``get_forward_kinematics``, the tool point as set up on the arm, mm -> m). ``state`` reads
    positions (rad), velocities (rad/s) and joint torques (N m) with ``get_joint_states`` (firmware
    1.9.0 or later), and currents (A) and temperatures (degrees C) from the SDK's report, NaN before
    the first report. Load is torque over ``rated_torque`` (N m per joint) when given, NaN otherwise.
    Any call whose code is not 0 raises ``XArmError`` naming the code."""

    def __init__(self, address: str, control_freq: float = 100.0, max_velocity: float = 1.0,
                 limits: JointLimits | None = None, rated_torque=None, api=None, clock=time.monotonic):
        """``api``: an ``XArmAPI`` already connected (tests pass a stand-in); otherwise one connects to ``address``."""
        self.address = address
        self.arm = api if api is not None else _connect_xarm(address)
        self.joints = int(self.arm.axis)
        self.name = f"xarm{self.joints}"
        self.limits = limits if limits is not None else xarm_joint_limits(self.arm, max_velocity)
        if len(self.limits.names) != self.joints:
            raise ValueError(f"{self.name}: limits for {len(self.limits.names)} joints, the arm has {self.joints}")
        self.control_freq, self.clock = control_freq, clock
        self.rated_torque = None if rated_torque is None else np.asarray(rated_torque, dtype=np.float64)
        if self.rated_torque is not None and self.rated_torque.shape != (self.joints,):
            raise ValueError(f"{self.name}: rated_torque needs one value (N m) per joint, got {self.rated_torque}")
        self.closed = False

    def _check(self, call: str, code: int) -> None:
        if code == 0:
            return
        from xarm.x3.code import APIState

        names = [name for name, value in vars(APIState).items() if name.isupper() and value == code]
        detail = self._controller_error() if code == APIState.HAS_ERROR else ""
        raise XArmError(f"{self.name} at {self.address}: {call} returned code {code} "
                        f"({names[0] if names else 'not in the SDK APIState table'}){detail}. The SDK's "
                        "xarm_api_code.md explains each code.", code)

    def _controller_error(self) -> str:
        """The controller's error code and its title from the SDK's table, or '' when there is none."""
        try:
            from xarm.core.config.x_code import ControllerError

            code, (error, _warning) = self.arm.get_err_warn_code()
            if code != 0 or not error:
                return ""
            return (f": controller error {error} ({ControllerError(error).title['en']}); once a person has checked "
                    "the arm, clear it with clean_error()")
        except Exception as err:                    # a diagnosis must not hide the error it explains
            return f" (its controller error could not be read: {err})"

    def _report(self, name: str) -> np.ndarray:
        """A per-joint value from the SDK's report; the SDK holds zeros until the first report arrives."""
        values = getattr(self.arm, name, None)
        values = np.asarray([] if values is None else values, dtype=np.float64)[:self.joints]
        if values.shape != (self.joints,) or not values.any():
            return np.full(self.joints, np.nan)
        return values

    # ---------------------------------------------------------------- the Robot contract
    def reset(self, seed: int | None = None) -> dict:
        """Motors on in servo mode where the arm stands; moving to a start pose is the controller's job.
        An arm with a controller error raises: a person clears it after looking."""
        detail = self._controller_error()
        if detail:
            raise XArmError(f"{self.name} at {self.address} has an error{detail}")
        self.torque(True)
        return self.observe()

    def observe(self) -> dict:
        return {"state": self.state().position}

    def step(self, target) -> dict:
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (self.joints,):
            raise ValueError(f"{self.name}: a target has {self.joints} joint angles, got {target.shape}")
        self._check("set_servo_angle_j", self.arm.set_servo_angle_j([float(a) for a in target], is_radian=True))
        return self.observe()

    def state(self) -> Reading:
        code, states = self.arm.get_joint_states(is_radian=True)
        self._check("get_joint_states", code)
        position, velocity, torque = (np.asarray(s, dtype=np.float64)[:self.joints] for s in states[:3])
        load = torque / self.rated_torque if self.rated_torque is not None else np.full(self.joints, np.nan)
        return Reading(position, velocity, self._report("currents"), self._report("temperatures"), load, self.clock())

    def tool_position(self, position) -> np.ndarray:
        code, pose = self.arm.get_forward_kinematics([float(a) for a in position], input_is_radian=True,
                                                     return_is_radian=True)
        self._check("get_forward_kinematics", code)
        return np.asarray(pose[:3], dtype=np.float64) / 1000.0        # mm -> m

    def torque(self, on: bool) -> None:
        """On: motion enabled, servo mode, ready state. Off: motion disabled (the joints hold by their brakes)."""
        self._check("motion_enable", self.arm.motion_enable(enable=bool(on)))
        if on:
            self._check("set_mode(1)", self.arm.set_mode(1))
            self._check("set_state(0)", self.arm.set_state(state=0))

    def close(self) -> None:
        """Motion off, then disconnect. Never raises; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            self.torque(False)
        except Exception as err:
            log.critical("%s: could not turn the motors off (%s): press the emergency stop", self.name, err)
        try:
            self.arm.disconnect()
        except Exception as err:
            log.warning("%s: disconnecting: %s", self.name, err)
