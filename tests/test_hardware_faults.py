"""The robot lab's safety layer, against a fake servo bus that injects the faults a lab meets.

Each fault ends clamped or in a safe stop (torque off), with the reason logged."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hardware import calibration as cal
from hardware.bus import BusError, FakeClock
from hardware.fake import REST, fake_calibration, fake_so100
from hardware.guard import Guarded, Operator, OperatorReset, SafetyStop
from hardware.safety import Box, Config, clamp_target, workspace_filter
from hardware.servo_arm import RestartLimit
from hardware.timing import Rate, Watchdog
from wmlib.robot import JointLimits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = Box(low=(-0.3, -0.45, 0.02), high=(0.3, -0.05, 0.35))


def config(**changes) -> Config:
    return Config(workspace=BOX, **changes)


def torque_writes(bus) -> list:
    return [v.tolist() for r, v in bus.writes if r == "torque"]


def test_a_target_jump_is_clamped_to_the_step_limit_and_the_executed_target_is_returned():
    arm, bus, clock = fake_so100()
    with Guarded(arm, config(), clock=clock) as robot:
        robot.reset()
        jump = REST + np.array([1.0, 0, 0, 0, 0, 0])                     # one radian in one step
        _, executed, reasons = robot.step(jump)
    assert executed[0] == pytest.approx(REST[0] + 0.05, abs=1e-3) and np.allclose(executed[1:], REST[1:], atol=1e-3)
    assert any("step limit: shoulder_pan" in r for r in reasons)
    assert robot.interventions and robot.interventions[0]["reasons"] == reasons
    goal = arm.calibration.to_radians(bus.goal)
    assert goal[0] == pytest.approx(REST[0] + 0.05, abs=2e-3), "the bus got the clamped target, not the jump"
    assert torque_writes(bus)[-1] == [0] * 6, "torque off when the block ends"


def test_joint_limits_and_velocity_limits_from_the_description():
    limits = JointLimits(("a", "b"), lower=[-1, -1], upper=[1, 1], max_velocity=[0.4, 10.0])
    target, reasons = clamp_target([5.0, -0.5], [0.9, 0.0], limits, max_step=0.05, control_freq=20)
    assert target == pytest.approx([0.92, -0.05]), "a: limit 1, then 0.4 rad/s / 20 Hz = 0.02; b: 0.05 step"
    assert any("joint limit: a" in r for r in reasons) and any("step limit: b" in r for r in reasons)
    still, none = clamp_target([0.9, 0.0], [0.9, 0.0], limits, max_step=0.05, control_freq=20)
    assert still == pytest.approx([0.9, 0.0]) and none == []


def test_a_workspace_exit_is_shortened_to_the_box_and_from_outside_only_steps_back_pass():
    tool = lambda q: np.array([q[0], 0.0, 0.0])                               # noqa: E731
    box = Box(low=(-1, -1, -1), high=(0.5, 1, 1))
    target, reasons = workspace_filter([0.8], [0.2], tool, box)
    assert 0.49 < target[0] <= 0.5 and "outside the box" in reasons[0]
    held, why = workspace_filter([1.5], [0.9], tool, box)                     # outside, going further out
    assert held[0] == 0.9 and "hold" in why[0]
    back, none = workspace_filter([0.8], [0.9], tool, box)                    # outside, coming back
    assert back[0] == 0.8 and none == []


def test_a_policy_driven_towards_the_table_stops_at_the_workspace_floor():
    arm, bus, clock = fake_so100()
    with Guarded(arm, config(), clock=clock) as robot:
        obs = robot.reset()
        down = REST + np.array([0, 0.8, 0.8, 0, 0, 0])                        # lift and elbow: towards the table
        for _ in range(60):
            obs, executed, reasons = robot.step(down)
            clock.advance(0.05)
        assert arm.tool_position(executed)[2] >= BOX.low[2] - 1e-6
        assert any("workspace" in r for i in robot.interventions for r in i["reasons"])


def test_a_bad_workspace_box_is_refused():
    with pytest.raises(ValueError, match="below the high one"):
        Box(low=(0, 0, 0.3), high=(0.3, 0.3, 0.1))
    with pytest.raises(ValueError, match="units"):
        Box(low=(-300, -300, 0), high=(300, 300, 400))                        # millimetres
    with pytest.raises(ValueError, match="finite"):
        Box(low=(0, 0, np.nan), high=(1, 1, 1))


def test_a_nan_or_misshapen_proposal_holds_still():
    arm, bus, clock = fake_so100()
    with Guarded(arm, config(), clock=clock) as robot:
        robot.reset()
        for bad in (np.full(6, np.nan), np.zeros(5)):
            _, executed, reasons = robot.step(bad)
            assert np.allclose(executed, REST, atol=2e-3) and "bad target" in reasons[0]


def test_a_current_spike_stops_the_robot_with_torque_off():
    arm, bus, clock = fake_so100()
    with pytest.raises(SafetyStop, match="current: elbow_flex"):
        with Guarded(arm, config(max_current=1.5), clock=clock) as robot:
            robot.reset()
            robot.step(REST)
            bus.inject("current_spike", joint=2, value=4.0)
            robot.step(REST)
    assert torque_writes(bus)[-1] == [0] * 6
    assert "current" in robot.stopped and robot.interventions[-1]["reasons"][0].startswith("stop: current")


def squeeze_a_cube(gripper_duty: float, seconds: float = 300.0):
    """Close the jaw on a cube for ``seconds`` at 20 Hz; return (peak gripper temperature, guard, bus)."""
    arm, bus, clock = fake_so100()
    bus.obstacle[5] = float(bus.position[5])                                   # the jaw is on the cube
    squeeze, hottest = REST.copy(), 0.0
    guard = Guarded(arm, config(gripper_window=40, gripper_duty=gripper_duty, max_temperature=60.0), clock=clock)
    try:
        with guard as robot:
            robot.reset()
            for _ in range(int(seconds * 20)):
                squeeze[5] = arm.observe()["state"][5] - 0.3                  # keep closing on it
                robot.step(squeeze)
                hottest = max(hottest, float(bus.temperature[5]))
                clock.advance(0.05)
    except SafetyStop:
        pass
    return hottest, guard, bus


def test_a_gripper_squeezing_a_cube_overheats_and_stops_unless_its_duty_is_limited():
    hot, guard, bus = squeeze_a_cube(gripper_duty=1.0)                        # no duty limit
    assert guard.stopped and guard.stopped.startswith("temperature: gripper"), guard.stopped
    assert torque_writes(bus)[-1] == [0] * 6
    cool, guard, bus = squeeze_a_cube(gripper_duty=Config.gripper_duty)      # the default limit: 20%
    assert guard.stopped is None and cool < 55.0, f"with the duty limit the jaw peaked at {cool:.1f} C"
    reasons = [r for i in guard.interventions for r in i["reasons"]]
    assert any(r.startswith("gripper duty") for r in reasons)


def test_a_failed_read_is_retried_and_a_bus_that_keeps_failing_stops_the_run():
    arm, bus, clock = fake_so100()
    with Guarded(arm, config(), clock=clock) as robot:
        robot.reset()
        bus.inject("read_error", count=2)                                       # two misses, then fine
        robot.step(REST)
    bus2_arm, bus2, clock2 = fake_so100()
    with pytest.raises(BusError):
        with Guarded(bus2_arm, config(), clock=clock2) as robot:
            robot.reset()
            bus2.inject("read_error", count=10)
            robot.step(REST)
    assert torque_writes(bus2)[-1] == [0] * 6


def test_a_crashed_driver_is_restarted_at_most_three_times_a_minute():
    arm, bus, clock = fake_so100()
    arm.reset()
    for _ in range(3):
        bus.inject("crash")
        with pytest.raises(BusError, match="driver is down"):
            arm.state()
        arm.reconnect()
        arm.state()
        clock.advance(5.0)
    bus.inject("crash")
    with pytest.raises(RestartLimit, match="3 times|4 times"):
        arm.reconnect()
    clock.advance(61.0)                                                         # a minute later, allowed again
    arm.reconnect()
    assert bus.restarts == 4


def test_without_a_valid_calibration_the_arm_refuses_to_move(tmp_path):
    desc_cal = fake_calibration(fake_so100()[0].description)
    names = tuple(desc_cal.joints)
    with pytest.raises(cal.CalibrationError, match="no calibration file"):
        cal.load(tmp_path / "none.json", "so100", names)
    path = desc_cal.save(tmp_path / "so100.json")
    assert cal.load(path, "so100", names) == desc_cal
    edited = json.loads(path.read_text())
    edited["joints"]["elbow_flex"]["offset"] += 300
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(cal.CalibrationError, match="checksum"):
        cal.load(tmp_path / "edited.json", "so100", names)
    (tmp_path / "cut.json").write_text(path.read_text()[:100])
    with pytest.raises(cal.CalibrationError, match="not a calibration file"):
        cal.load(tmp_path / "cut.json", "so100", names)
    with pytest.raises(cal.CalibrationError, match="not 'koch'"):
        cal.load(path, "koch", names)


def test_a_wrong_calibration_is_caught_before_torque_on():
    arm, bus, clock = fake_so100()
    bus.position[1] = 3900                                                      # the shoulder reads far outside
    with pytest.raises(cal.CalibrationError, match="shoulder_lift.*does not match its calibration"):
        arm.reset()
    assert not torque_writes(bus) or torque_writes(bus)[-1] == [0] * 6


def test_calibration_on_the_command_line_steps_with_a_person():
    arm, bus, clock = fake_so100(start=np.zeros(6))
    names = arm.limits.names
    second = arm.calibration.to_ticks(np.full(6, 1.0))

    def person(prompt):                                                         # moves the arm as asked
        if prompt.startswith("[1/3]"):
            bus.position[:] = arm.calibration.to_ticks(np.zeros(6))
        elif prompt.startswith("[2/3]"):
            bus.position[:] = second

    made = cal.calibrate(bus, "so100", names, ask=person, sweep_seconds=0.2, clock=clock, sleep=clock.advance)
    assert [j.sign for j in made.joints.values()] == [1] * 6
    assert np.allclose(made.to_radians(second), 1.0, atol=2e-3)

    def wrong_pose(prompt):
        bus.position[:] = arm.calibration.to_ticks(np.zeros(6)) + (300 if prompt.startswith("[2/3]") else 0)

    with pytest.raises(cal.CalibrationError, match="moved 300 counts"):
        cal.calibrate(bus, "so100", names, ask=wrong_pose, sweep_seconds=0.2, clock=clock, sleep=clock.advance)


def test_pause_holds_continue_resumes_and_reset_ends_the_episode():
    arm, bus, clock = fake_so100()
    operator = Operator()
    with Guarded(arm, config(), operator=operator, clock=clock) as robot:
        robot.reset()
        operator.press("pause")
        _, held, reasons = robot.step(REST + 0.04)
        assert np.allclose(held, REST, atol=2e-3) and "paused" in reasons[0]
        operator.press("continue")
        _, moved, _ = robot.step(REST + 0.04)
        assert np.allclose(moved, REST + 0.04, atol=2e-3)
        operator.press("reset")
        with pytest.raises(OperatorReset):
            robot.step(REST)
        operator.press("stop")
        with pytest.raises(SafetyStop, match="operator pressed stop"):
            robot.step(REST)
    assert torque_writes(bus)[-1] == [0] * 6


def test_keyboard_commands_reach_the_operator():
    import io
    import time

    operator = Operator.from_keyboard(io.StringIO("p\nc\nr\nq\n"))
    deadline = time.monotonic() + 2
    seen = []
    while len(seen) < 4 and time.monotonic() < deadline:
        seen += operator.pending()
        time.sleep(0.01)
    assert seen == ["pause", "continue", "reset", "stop"]


def test_ctrl_c_and_exceptions_turn_the_torque_off():
    for error in (KeyboardInterrupt, ZeroDivisionError):
        arm, bus, clock = fake_so100()
        with pytest.raises(error):
            with Guarded(arm, config(), clock=clock) as robot:
                robot.reset()
                assert torque_writes(bus)[-1] == [1] * 6
                raise error()
        assert torque_writes(bus)[-1] == [0] * 6 and bus.closed


def test_a_hung_control_loop_is_turned_off_by_the_watchdog_thread():
    import time

    arm, bus, clock = fake_so100()
    with pytest.raises(SafetyStop, match="watchdog"):
        with Guarded(arm, config(), hold_after=0.2, off_after=0.5, clock=clock) as robot:
            robot.reset()
            robot.step(REST)
            clock.advance(0.6)                           # the policy hangs for 0.6 s
            deadline = time.monotonic() + 2
            while robot.stopped is None and time.monotonic() < deadline:
                time.sleep(0.01)                         # the watchdog's thread acts, not this loop
            assert torque_writes(bus)[-1] == [0] * 6, "torque off while the loop is still stuck"
            robot.step(REST)                             # the loop wakes up: refused


def test_sigterm_turns_the_torque_off_and_exits():
    script = textwrap.dedent(f"""
        import sys, time, json
        sys.path.insert(0, {REPO!r})
        from hardware.fake import fake_so100, REST
        from hardware.guard import Guarded
        from hardware.safety import Box, Config
        arm, bus, clock = fake_so100()
        try:
            with Guarded(arm, Config(workspace=Box((-0.3, -0.45, 0.02), (0.3, -0.05, 0.35))), clock=clock) as robot:
                robot.reset()
                print("ready", flush=True)
                while True:
                    robot.step(REST)
                    clock.advance(0.05)
                    time.sleep(0.01)
        finally:
            print(json.dumps([v.tolist() for r, v in bus.writes if r == "torque"][-1]), flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=20)
    assert json.loads(out.strip().splitlines()[-1]) == [0] * 6, err
    assert child.returncode != 0


def test_the_rate_counts_misses_and_does_not_burst_to_catch_up():
    clock = FakeClock()
    rate = Rate(20, clock=clock, sleep=clock.advance)
    start = clock()
    for work in (0.01, 0.01, 0.2, 0.01):                  # the third period overruns by 0.15 s
        clock.advance(work)
        rate.wait()
    assert rate.misses == 1 and rate.periods == 4
    assert rate.worst_overrun == pytest.approx(0.2 - 0.05, abs=1e-9)
    ticks = (clock() - start) / 0.05
    assert ticks == pytest.approx(round(ticks)), "every period ends on the grid"
    assert rate.report()["miss_rate"] == pytest.approx(0.25)


def test_the_watchdog_holds_then_turns_off_and_stays_off():
    clock = FakeClock()
    dog = Watchdog(0.1, 0.5, clock=clock)
    assert dog.poll() == "run"
    clock.advance(0.2)
    assert dog.poll() == "hold"
    dog.feed()
    assert dog.poll() == "run"
    clock.advance(0.6)
    assert dog.poll() == "off"
    dog.feed()
    assert dog.poll() == "off", "once off, a late command does not revive the robot"
    with pytest.raises(ValueError):
        Watchdog(1.0, 0.5)


def test_the_fixed_rate_rule_on_time_late_and_very_late():
    from hardware.timing import next_deadline

    assert next_deadline(0.02, 0.05, 0.05) == pytest.approx((0.10, False, 0.03))
    deadline, missed, pause = next_deadline(0.07, 0.05, 0.05)            # 20 ms late: skip to the tick at 0.10
    assert missed and deadline == pytest.approx(0.15) and pause == pytest.approx(0.03)
    deadline, missed, pause = next_deadline(0.26, 0.05, 0.05)            # four ticks late: no burst
    assert missed and deadline == pytest.approx(0.35) and pause == pytest.approx(0.04)


def test_a_safety_layer_and_a_watchdog_take_their_rules_as_arguments():
    from hardware.timing import watchdog_state

    arm, bus, clock = fake_so100()
    calls = []
    rules = {"clamp": lambda *a: (calls.append("clamp"), clamp_target(*a))[1],
             "keep_in": lambda *a: (calls.append("keep_in"), workspace_filter(*a))[1],
             "decide": lambda *a: (calls.append("decide"), watchdog_state(*a))[1]}
    with Guarded(arm, config(), hold_after=0.1, off_after=0.5, clock=clock, rules=rules) as robot:
        robot.reset()
        robot.step(REST)
    assert {"clamp", "keep_in", "decide"} <= set(calls)
    assert watchdog_state(0.3, 0.1, 0.5, False) == "hold" and watchdog_state(0.0, 0.1, 0.5, True) == "off"


def test_an_atomic_write_leaves_the_old_content_or_the_new_never_half(tmp_path, monkeypatch):
    from hardware import atomic

    path = tmp_path / "checkpoint.bin"
    atomic.write_atomically(path, b"old")
    replace = atomic.os.replace

    def crash(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="No space"):
        atomic.write_atomically(path, b"new" * 1000)
    monkeypatch.setattr(atomic.os, "replace", replace)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.bin"]
    atomic.write_atomically(path, b"new")
    assert path.read_bytes() == b"new"


def test_an_arm_joint_pushing_against_something_stops_on_its_load():
    arm, bus, clock = fake_so100()
    bus.obstacle[1] = float(bus.position[1])                 # the shoulder is blocked (counts cannot fall)
    with pytest.raises(SafetyStop, match="load: shoulder_lift"):
        with Guarded(arm, config(max_current=99.0), clock=clock) as robot:
            robot.reset()
            for _ in range(40):
                robot.step(robot.layer.reference - np.array([0, 0.05, 0, 0, 0, 0]))
                clock.advance(0.05)
    assert torque_writes(bus)[-1] == [0] * 6
