"""wmlib.tasks.pull_cube_cost: the gripper is led over the cube to its far side, then pulls it to the goal."""
import pytest
import torch

from wmlib import tasks

LAYOUT = {"agent/qpos": slice(0, 9), "agent/qvel": slice(9, 18), "extra/tcp_pose": slice(18, 25),
          "extra/goal_pos": slice(25, 28), "extra/obj_pose": slice(28, 35)}
SHUFFLED = {"extra/obj_pose": slice(0, 7), "extra/goal_pos": slice(7, 10), "agent/qvel": slice(10, 19),
            "extra/tcp_pose": slice(19, 26), "agent/qpos": slice(26, 35)}
CUBE, GOAL = [0.05, 0.02, 0.02], [-0.15, 0.02, 0.001]   # PullCube-v1: the goal 0.2 m nearer the robot (-x)


def state(tcp, cube=CUBE, goal=GOAL, layout=LAYOUT):
    s = torch.zeros(35)
    s[layout["extra/tcp_pose"]] = torch.tensor([*tcp, 1.0, 0, 0, 0])
    s[layout["extra/obj_pose"]] = torch.tensor([*cube, 1.0, 0, 0, 0])
    s[layout["extra/goal_pos"]] = torch.tensor(goal)
    return s


@pytest.mark.parametrize("layout", [LAYOUT, SHUFFLED])
def test_on_the_far_side_the_gripper_aims_at_the_pull_point_at_push_height(layout):
    cost = tasks.pull_cube_cost(layout, reach_weight=0.5, behind=0.04)
    at_pull_point = state([0.09, 0.02, tasks.CUBE_HALF], layout=layout)
    assert float(cost(at_pull_point)) == pytest.approx(0.2, abs=1e-5)  # only the cube-to-goal distance is left
    above = state([0.09, 0.02, tasks.CUBE_HALF + 0.05], layout=layout)
    assert float(cost(above)) == pytest.approx(0.2 + 0.5 * 0.05, abs=1e-5)


def test_on_the_goal_side_the_gripper_aims_over_the_cube_not_through_it():
    cost = tasks.pull_cube_cost(LAYOUT, reach_weight=1.0, behind=0.04, clearance=0.08)
    # on the goal side at table height: the target is the pull point raised to the clearance height
    low = state([0.0, 0.02, tasks.CUBE_HALF])
    assert float(cost(low)) == pytest.approx(0.2 + ((0.09 - 0.0) ** 2 + (0.08 - 0.02) ** 2) ** 0.5, abs=1e-5)
    # moving up towards the clearance height lowers the cost; so does moving over the cube at that height
    high = state([0.0, 0.02, 0.08])
    over = state([0.06, 0.02, 0.08])
    assert float(cost(over)) < float(cost(high)) < float(cost(low))


def test_the_cost_keeps_any_leading_shape_and_is_registered_for_pullcube():
    cost = tasks.cost_for("PullCube-v1", LAYOUT)
    states = state([0.0, 0.0, 0.1]).expand(3, 4, 5, 35)
    assert cost(states, None).shape == (3, 4, 5)


def test_the_pull_cost_is_the_push_cost_with_a_clearance_and_push_without_one_ignores_height_rules():
    states = torch.stack([state([x, y, z]) for x in (-0.1, 0.0, 0.09) for y in (0.0, 0.05) for z in (0.02, 0.1)])
    pull = tasks.pull_cube_cost(LAYOUT, reach_weight=0.7, behind=0.05, clearance=0.09)
    assert torch.allclose(pull(states), tasks.push_cube_cost(LAYOUT, 0.7, 0.05, clearance=0.09)(states))
    push = tasks.push_cube_cost(LAYOUT, reach_weight=0.7, behind=0.05)        # no clearance: always the push point
    tcp, cube, goal = tasks.positions(states, LAYOUT)
    expected = (cube[:, :2] - goal[:, :2]).norm(dim=-1) + 0.7 * (tcp - tasks.push_point(cube, goal, 0.05)).norm(dim=-1)
    assert torch.allclose(push(states), expected)
