"""The simulated twin behind the robot contract: the same description, safety layer and calls as a real arm."""
import numpy as np
import pytest

from hardware.guard import Guarded
from hardware.safety import Box, Config


@pytest.fixture(scope="module")
def twin():
    from hardware.twin import Twin

    robot = Twin("PickCubeSO100-v1", seed=0, image_size=64)
    yield robot
    robot.close()


def test_the_description_agrees_with_the_simulator_on_where_the_tool_is(twin):
    obs = twin.reset(seed=1)
    agent = twin.env.unwrapped.agent
    for shift in (np.zeros(6), np.array([0.3, -0.2, 0.2, 0.1, 0.5, 0.2]), np.array([-0.4, 0.3, -0.3, -0.2, -1.0, 0.3])):
        target = obs["state"] + shift
        for _ in range(15):
            obs = twin.step(target)
        tip = (agent.robot.pose.inv() * agent.finger1_tip.pose).p[0].numpy()
        assert np.allclose(twin.tool_position(obs["state"]), tip, atol=1e-4), "URDF forward kinematics vs simulator"
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert np.isnan(twin.state().temperature).all() and np.isfinite(twin.state().velocity).all()


def test_the_twin_behind_the_safety_layer_moves_at_most_the_step_limit(twin):
    box = Box(low=(-0.35, -0.45, 0.0), high=(0.35, 0.0, 0.4))
    with Guarded(twin, Config(workspace=box), off_after=30.0, hold_after=20.0) as robot:
        obs = robot.reset(seed=2)
        start = obs["state"].copy()
        _, executed, reasons = robot.step(start + np.array([1.0, 0, 0, 0, 0, 0]))
        assert executed[0] == pytest.approx(start[0] + 0.05, abs=1e-6) and "step limit" in reasons[0]
        for _ in range(10):
            obs, executed, _ = robot.step(executed)
        assert abs(obs["state"][0] - executed[0]) < 0.02, "the simulated servo follows the clamped target"
    assert set(twin.outcome()) == {"reward", "success"}
    assert twin.env is None, "leaving the block released the simulator, as it releases a real arm's port"
