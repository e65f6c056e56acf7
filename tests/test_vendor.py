"""The real buses and the xArm (hardware.vendor) with no hardware: each SDK's port handler and
packet handler are replaced by stand-ins that keep a control table per servo, record every
instruction and answer as a servo would; the SDKs' own group classes, baud-rate checks and
messages stay real. The addresses below are written from the control tables, independently of
hardware/vendor.py, so a wrong address there fails here."""
import logging

import numpy as np
import pytest

scs = pytest.importorskip("scservo_sdk")
dxl = pytest.importorskip("dynamixel_sdk")
pytest.importorskip("xarm")
import serial  # noqa: E402  (pyserial comes with both SDKs)

from hardware import description  # noqa: E402
from hardware.bus import BusError, FakeClock  # noqa: E402
from hardware.fake import REST, fake_calibration  # noqa: E402
from hardware.servo_arm import ServoArm  # noqa: E402
from hardware.vendor import (DynamixelBus, FeetechBus, XArmError, XArmRobot, dynamixel_signed,  # noqa: E402
                             feetech_signed)

# Feetech SMS/STS memory table (STS3215): register -> (address, bytes)
STS3215 = {"torque": (40, 1),         # 0x28 Torque Enable
           "goal": (42, 2),           # 0x2A Goal Position
           "position": (56, 2),       # 0x38 Present Position
           "velocity": (58, 2),       # 0x3A Present Speed
           "load": (60, 2),           # 0x3C Present Load
           "temperature": (63, 1),    # 0x3F Present Temperature
           "current": (69, 2)}        # 0x45 Present Current
# ROBOTIS e-Manual, XL330-M288 / XL430-W250 control tables, protocol 2.0
XL = {"torque": (64, 1),              # Torque Enable
      "goal": (116, 4),               # Goal Position
      "current": (126, 2),            # Present Current (XL330) / Present Load (XL430)
      "load": (126, 2),
      "velocity": (128, 4),           # Present Velocity
      "position": (132, 4),           # Present Position
      "temperature": (146, 1)}        # Present Temperature
XL430, XL330 = 1060, 1200             # Model Number, address 0
STS3215_MODEL = 777                   # Model Number, address 3


# ---------------------------------------------------------------- stand-ins for the SDKs' handlers
class FakeSerial:
    def __init__(self):
        self.closed, self.input_resets = False, 0

    def close(self):
        self.closed = True

    def reset_input_buffer(self):
        self.input_resets += 1

    def flush(self):
        pass


class SerialStandIn:
    """The SDK's own PortHandler (its baud-rate table included) with the serial device replaced."""

    missing: str | None = None         # set: opening fails as pyserial fails on a missing port

    def openPort(self):  # noqa: N802  (the SDK's names)
        self.opens = getattr(self, "opens", 0) + 1
        return super().openPort()

    def setupPort(self, cflag_baud):  # noqa: N802
        if self.is_open:
            self.closePort()
        if self.missing:
            raise serial.SerialException(self.missing)
        self.ser, self.is_open = FakeSerial(), True
        return True


class FeetechPort(SerialStandIn, scs.PortHandler):
    pass


class DynamixelPort(SerialStandIn, dxl.PortHandler):
    pass


class Servos:
    """Servos as the packet handler sees them: a 256-byte control table per id. Records each sync
    instruction as (kind, address, length, ids); ``missing`` servos never answer, ``error`` gives a
    servo's status-packet error byte, ``tx_result`` fails the instruction itself."""

    sdk = None

    def __init__(self, models: dict[int, int]):
        self.models, self.table = dict(models), {sid: bytearray(256) for sid in models}
        self.instructions: list[tuple] = []
        self.missing: set[int] = set()
        self.error: dict[int, int] = {}
        self.tx_result, self.interrupt = self.sdk.COMM_SUCCESS, False

    def put(self, sid, register, raw, table):
        address, length = table[register]
        self.table[sid][address:address + length] = (raw % (1 << 8 * length)).to_bytes(length, "little")

    def get(self, sid, register, table):
        address, length = table[register]
        return int.from_bytes(self.table[sid][address:address + length], "little")

    def ping(self, port, sid):
        if sid in self.missing or sid not in self.models:
            return 0, self.sdk.COMM_RX_TIMEOUT, 0
        return self.models[sid], self.sdk.COMM_SUCCESS, self.error.get(sid, 0)

    def syncReadTx(self, port, start_address, data_length, param, param_length, fast_option=False):  # noqa: N802
        self.instructions.append(("sync_read", start_address, data_length, tuple(param[:param_length])))
        port.is_using = self.tx_result == self.sdk.COMM_SUCCESS
        return self.tx_result

    def readRx(self, port, sid, length):  # noqa: N802
        if self.interrupt:
            raise KeyboardInterrupt
        port.is_using = False
        if sid in self.missing:
            return [], self.sdk.COMM_RX_TIMEOUT, 0
        address = self.instructions[-1][1]
        return list(self.table[sid][address:address + length]), self.sdk.COMM_SUCCESS, self.error.get(sid, 0)

    def syncWriteTxOnly(self, port, start_address, data_length, param, param_length):  # noqa: N802
        if port.is_using:
            return self.sdk.COMM_PORT_BUSY
        ids = tuple(param[0:param_length:1 + data_length])
        self.instructions.append(("sync_write", start_address, data_length, ids))
        for k in range(0, param_length, 1 + data_length):
            self.table[param[k]][start_address:start_address + data_length] = bytes(param[k + 1:k + 1 + data_length])
        return self.sdk.COMM_SUCCESS


class FeetechServos(Servos, type(scs.PacketHandler(0))):    # the SDK's messages: getTxRxResult, getRxPacketError
    sdk = scs


class DynamixelServos(Servos, type(dxl.PacketHandler(2.0))):
    sdk = dxl


def feetech(ids=(1, 2, 3), models=None, port=None, **options):
    servos = FeetechServos(models or {sid: STS3215_MODEL for sid in ids})
    port = port or FeetechPort("/dev/ttyACM0")
    return FeetechBus("/dev/ttyACM0", ids, port_handler=port, packet_handler=servos, **options), servos, port


def dynamixel(models=None, port=None, **options):
    models = models or {1: XL430, 2: XL430, 3: XL330}
    servos = DynamixelServos(models)
    port = port or DynamixelPort("/dev/ttyUSB0")
    bus = DynamixelBus("/dev/ttyUSB0", tuple(models), port_handler=port, packet_handler=servos, **options)
    return bus, servos, port


VENDORS = {"feetech": (feetech, STS3215), "dynamixel": (dynamixel, XL)}


# ---------------------------------------------------------------- sign conventions
def test_feetech_sign_magnitude_and_dynamixel_twos_complement():
    assert feetech_signed(0x8000 | 100, 15) == -100 and feetech_signed(100, 15) == 100
    assert feetech_signed(0x0400 | 250, 10) == -250 and feetech_signed(1000, 10) == 1000
    assert feetech_signed(0x8000, 15) == 0, "a sign bit with no magnitude is zero, not -32768"
    assert dynamixel_signed(0xFFFFFFFF, 4) == -1 and dynamixel_signed(0x7FFFFFFF, 4) == 2 ** 31 - 1
    assert dynamixel_signed(0xFF38, 2) == -200 and dynamixel_signed(200, 2) == 200


# ---------------------------------------------------------------- addresses and units
@pytest.mark.parametrize("vendor", VENDORS)
def test_each_register_is_one_sync_transfer_at_its_control_table_address(vendor):
    make, table = VENDORS[vendor]
    bus, servos, _ = make()
    servos.instructions.clear()
    for register in ("position", "velocity", "current", "load", "temperature"):
        bus.read(register)
    bus.write("goal", [2048] * 3)
    bus.write("torque", [1] * 3)
    expected = [("sync_read", *table[r], bus.ids) for r in ("position", "velocity", "current", "load", "temperature")]
    expected += [("sync_write", *table["goal"], bus.ids), ("sync_write", *table["torque"], bus.ids)]
    assert servos.instructions == expected


def test_feetech_reads_in_bus_units_with_negative_speeds_and_loads():
    bus, servos, port = feetech()
    for sid, (position, speed, load, current, temperature) in {1: (2048, 300, 120, 40, 31),
                                                              2: (1000, 0x8000 | 300, 0x0400 | 250, 100, 45),
                                                              3: (4095, 0, 0, 0, 25)}.items():
        for register, raw in zip(("position", "velocity", "load", "current", "temperature"),
                                 (position, speed, load, current, temperature)):
            servos.put(sid, register, raw, STS3215)
    position = bus.read("position")
    assert position.dtype == np.int64 and position.tolist() == [2048, 1000, 4095]
    assert bus.read("velocity").tolist() == [300, -300, 0]                      # steps/s
    assert bus.read("load") == pytest.approx([0.12, -0.25, 0.0])                  # 0.1 % -> fraction
    assert bus.read("current") == pytest.approx([0.26, 0.65, 0.0])                # 6.5 mA a count -> A
    assert bus.read("temperature").tolist() == [31, 45, 25]
    assert port.ser.input_resets >= 5, "stale bytes are dropped before each read"


def test_dynamixel_reads_current_or_load_by_each_servos_model():
    bus, servos, _ = dynamixel()                                                 # XL430, XL430, XL330
    assert bus.models == {1: XL430, 2: XL430, 3: XL330}
    for sid in bus.ids:
        servos.put(sid, "position", 3000, XL)
        servos.put(sid, "velocity", -10, XL)
        servos.put(sid, "current", -300, XL)
        servos.put(sid, "temperature", 38, XL)
    assert bus.read("position").tolist() == [3000] * 3
    assert bus.read("velocity") == pytest.approx([-10 * 0.229 * 4096 / 60] * 3)  # 0.229 rev/min -> counts/s
    current, load = bus.read("current"), bus.read("load")
    assert np.isnan(current[:2]).all() and current[2] == pytest.approx(-0.3), "XL430: no sensor; XL330: 1 mA"
    assert load == pytest.approx([-0.3, -0.3, -0.3 / 1.47]), "XL430: 0.1 %; XL330: current / stall current"
    assert bus.read("temperature").tolist() == [38] * 3


# ---------------------------------------------------------------- failures
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_failed_sync_read_and_a_missing_servo_raise_bus_errors_naming_them(vendor):
    make, _ = VENDORS[vendor]
    bus, servos, _ = make()
    servos.tx_result = servos.sdk.COMM_TX_FAIL
    with pytest.raises(BusError, match=r"'velocity'.*servos \(1, 2, 3\).*Failed transmit instruction packet"):
        bus.read("velocity")
    servos.tx_result = servos.sdk.COMM_SUCCESS
    servos.missing.add(2)
    with pytest.raises(BusError, match=r"servo 2 did not answer the sync read of 'position'.*no status packet.*"
                                       r"servos \(3,\) after it were not read"):
        bus.read("position")
    servos.missing.clear()
    assert bus.read("position").shape == (3,), "the bus works again once the servo answers"


@pytest.mark.parametrize("vendor, error, message", [("feetech", 32, "Overload error"),
                                                    ("dynamixel", 0x80, "Hardware error occurred")])
def test_a_servo_error_byte_raises_with_the_sdks_message(vendor, error, message):
    make, _ = VENDORS[vendor]
    bus, servos, _ = make()
    servos.error[3] = error
    with pytest.raises(BusError, match=f"servo 3 answered the sync read of 'temperature'.*{message}"):
        bus.read("temperature")


@pytest.mark.parametrize("vendor", VENDORS)
def test_goals_are_clipped_to_a_turn_and_torque_is_written_as_zero_or_one(vendor):
    make, table = VENDORS[vendor]
    bus, servos, _ = make()
    bus.write("goal", [-50, 5000.0, 2047.6])
    assert [servos.get(sid, "goal", table) for sid in bus.ids] == [0, 4095, 2048]
    bus.write("torque", [1, 0, 2])
    assert [servos.get(sid, "torque", table) for sid in bus.ids] == [1, 0, 1], "never 128 (Feetech: re-centre)"
    with pytest.raises(ValueError, match="finite"):
        bus.write("goal", [2048, np.nan, 2048])
    with pytest.raises(ValueError, match="one value per servo"):
        bus.write("torque", [0, 0])


@pytest.mark.parametrize("vendor", VENDORS)
def test_restart_reopens_the_port_and_a_closed_bus_refuses_transfers(vendor):
    make, _ = VENDORS[vendor]
    bus, servos, port = make()
    first = port.ser
    bus.restart()
    assert first.closed and port.is_open and port.ser is not first and port.opens == 2
    assert bus.read("position").shape == (3,)
    bus.close()
    bus.close()                                                                  # twice is fine
    assert port.ser.closed
    with pytest.raises(BusError, match="closed"):
        bus.read("position")


def test_an_interrupted_read_does_not_leave_the_port_busy_for_the_torque_off():
    bus, servos, _ = feetech()
    servos.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        bus.read("position")                                                     # Ctrl-C in the middle of a read
    servos.interrupt = False
    bus.write("torque", [0, 0, 0])                                               # the SDK would answer "port busy"
    assert [servos.get(sid, "torque", STS3215) for sid in bus.ids] == [0, 0, 0]


def test_open_failures_say_what_to_check():
    missing = FeetechPort("/dev/ttyACM0")
    missing.missing = "[Errno 2] could not open port /dev/ttyACM0: No such file or directory"
    with pytest.raises(BusError, match=r"/dev/ttyACM0.*No such file.*dialout"):
        feetech(port=missing)
    with pytest.raises(BusError, match="does not support 3000000 baud"):
        feetech(baudrate=3_000_000)                                              # not in the Feetech SDK's table
    port = FeetechPort("/dev/ttyACM0")
    servos = FeetechServos({1: STS3215_MODEL, 2: STS3215_MODEL})                 # servo 3 was never given its id
    with pytest.raises(BusError, match=r"servo 3 does not answer.*power.*id"):
        FeetechBus("/dev/ttyACM0", (1, 2, 3), port_handler=port, packet_handler=servos)
    assert not port.is_open, "a failed open releases the port"
    with pytest.raises(BusError, match="servo 2 is model number 1020"):
        dynamixel(models={1: XL430, 2: 1020})                                    # an XM430: another table


# ---------------------------------------------------------------- the whole stack
def test_a_servo_arm_resets_and_steps_over_a_feetech_bus():
    desc = description.so100()
    calibration = fake_calibration(desc)
    ids = tuple(c.id for c in calibration.joints.values())
    bus, servos, port = feetech(ids=ids)
    for sid, count in zip(ids, calibration.to_ticks(REST)):
        servos.put(sid, "position", int(count), STS3215)
    clock = FakeClock()
    arm = ServoArm(bus, calibration, desc, clock=clock)
    obs = arm.reset()
    assert np.allclose(obs["state"], REST, atol=2e-3)
    assert [servos.get(sid, "torque", STS3215) for sid in ids] == [1] * 6
    assert [servos.get(sid, "goal", STS3215) for sid in ids] == calibration.to_ticks(REST).tolist(), "no jump"
    target = REST + np.array([0.05, 0, 0, 0, 0, -0.05])
    arm.step(target)
    assert [servos.get(sid, "goal", STS3215) for sid in ids] == calibration.to_ticks(target).tolist()
    reading = arm.state()
    assert np.isfinite(reading.velocity).all() and reading.temperature.shape == (6,)
    arm.reconnect()                                                              # what it does after a driver crash
    assert port.opens == 2
    arm.close()
    assert [servos.get(sid, "torque", STS3215) for sid in ids] == [0] * 6 and bus.closed


# ---------------------------------------------------------------- the xArm
class FakeXArm:
    """Stands in for xarm.wrapper.XArmAPI, connected to an xArm 6: records calls; ``codes`` makes a call fail."""

    axis, device_type, sn, connected = 6, 6, None, True

    def __init__(self):
        self.calls: list[tuple] = []
        self.codes: dict[str, int] = {}
        self.angles = [0.1, -0.2, -0.4, 0.0, 0.5, -0.1, 0.0]
        self.temperatures, self.currents = [0] * 7, [0.0] * 7           # the SDK's values before its first report
        self.error = 0

    def _call(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        return self.codes.get(name, 0)

    def motion_enable(self, enable=True, servo_id=None):
        return self._call("motion_enable", enable=enable)

    def set_mode(self, mode=0, detection_param=0):
        return self._call("set_mode", mode)

    def set_state(self, state=0):
        return self._call("set_state", state=state)

    def set_servo_angle_j(self, angles, speed=None, mvacc=None, mvtime=None, is_radian=None, **kwargs):
        code = self._call("set_servo_angle_j", list(angles), is_radian=is_radian)
        if code == 0:
            self.angles[:6] = angles
        return code

    def get_joint_states(self, is_radian=None, num=3):
        code = self._call("get_joint_states", is_radian=is_radian)
        return code, [list(self.angles), [0.25] * 7, [3.0] * 7]

    def get_forward_kinematics(self, angles, input_is_radian=None, return_is_radian=None):
        code = self._call("get_forward_kinematics", list(angles), input_is_radian=input_is_radian)
        return code, [300.0, -20.0, 150.0, 3.14, 0.0, 0.0]

    def get_err_warn_code(self, show=False, lang="en"):
        return 0, [self.error, 0]

    def disconnect(self):
        self._call("disconnect")


def test_the_xarm_is_driven_in_servo_mode_with_radians():
    api = FakeXArm()
    arm = XArmRobot("192.168.1.185", api=api, rated_torque=[30.0] * 6)
    assert arm.limits.names == tuple(f"joint{i}" for i in range(1, 7))
    assert arm.limits.lower[1] == pytest.approx(-2.059488) and arm.limits.upper[2] == pytest.approx(0.191986)
    obs = arm.reset()
    assert [c[0] for c in api.calls[:3]] == ["motion_enable", "set_mode", "set_state"]
    assert api.calls[0][2] == {"enable": True} and api.calls[1][1] == (1,) and api.calls[2][2] == {"state": 0}
    assert obs["state"] == pytest.approx(api.angles[:6])
    target = np.array(api.angles[:6]) + 0.01
    arm.step(target)
    name, args, kwargs = [c for c in api.calls if c[0] == "set_servo_angle_j"][-1]
    assert args[0] == pytest.approx(target.tolist()) and kwargs == {"is_radian": True}
    reading = arm.state()
    assert reading.velocity == pytest.approx([0.25] * 6) and reading.load == pytest.approx([0.1] * 6)
    assert np.isnan(reading.temperature).all() and np.isnan(reading.current).all(), "no report yet: NaN, not 0"
    api.temperatures, api.currents = [31, 32, 33, 34, 35, 36, 0], [0.5] * 7
    assert arm.state().temperature.tolist() == [31, 32, 33, 34, 35, 36]
    assert arm.tool_position(target) == pytest.approx([0.3, -0.02, 0.15])      # the SDK's mm, in metres
    assert [c for c in api.calls if c[0] == "get_forward_kinematics"][-1][2] == {"input_is_radian": True}


def test_the_xarm_raises_naming_the_sdk_code():
    api = FakeXArm()
    arm = XArmRobot("192.168.1.185", api=api)
    api.codes["set_servo_angle_j"] = 9
    with pytest.raises(XArmError, match=r"set_servo_angle_j returned code 9 \(STATE_NOT_READY\)") as caught:
        arm.step(np.zeros(6))
    assert caught.value.code == 9
    api.codes["set_servo_angle_j"], api.error = 1, 22
    with pytest.raises(XArmError, match=r"code 1 \(HAS_ERROR\): controller error 22 \(Self-Collision Error\)"):
        arm.step(np.zeros(6))
    with pytest.raises(XArmError, match="has an error: controller error 22"):
        arm.reset()                                                              # a person must look first
    with pytest.raises(ValueError, match="6 joint angles"):
        arm.step(np.zeros(7))


def test_closing_the_xarm_turns_motion_off_then_disconnects_and_never_raises(caplog):
    api = FakeXArm()
    arm = XArmRobot("192.168.1.185", api=api)
    arm.close()
    arm.close()
    assert [(c[0], c[2]) for c in api.calls] == [("motion_enable", {"enable": False}), ("disconnect", {})]
    failing = FakeXArm()
    failing.codes["motion_enable"] = 3
    with caplog.at_level(logging.CRITICAL, logger="hardware"):
        XArmRobot("192.168.1.185", api=failing).close()
    assert "could not turn the motors off" in caplog.text and failing.calls[-1][0] == "disconnect"
