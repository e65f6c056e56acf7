"""wmlib.tasks and wmlib.control: task costs read the state through its layout, the start can be
perturbed, and the act / observe loop plays closed-loop controllers and open-loop replays."""
import numpy as np
import pytest
import torch

from wmlib import control, envs, scripted, tasks

LAYOUT = {"agent/qpos": slice(0, 9), "agent/qvel": slice(9, 18), "extra/tcp_pose": slice(18, 25),
          "extra/goal_pos": slice(25, 28), "extra/obj_pose": slice(28, 35)}
# the same parts in another order, to catch costs that use fixed indices
SHUFFLED = {"extra/obj_pose": slice(0, 7), "extra/goal_pos": slice(7, 10), "agent/qvel": slice(10, 19),
            "extra/tcp_pose": slice(19, 26), "agent/qpos": slice(26, 35)}


def state(tcp, cube, goal, layout=LAYOUT):
    s = torch.zeros(35)
    s[layout["extra/tcp_pose"]] = torch.tensor([*tcp, 1.0, 0, 0, 0])
    s[layout["extra/obj_pose"]] = torch.tensor([*cube, 1.0, 0, 0, 0])
    s[layout["extra/goal_pos"]] = torch.tensor(goal)
    return s


def test_push_cost_adds_cube_to_goal_and_gripper_to_push_point_whatever_the_goal_direction():
    cost = tasks.push_cube_cost(LAYOUT, reach_weight=0.5, behind=0.04)
    for angle in np.linspace(0, 2 * np.pi, 7):
        direction = np.array([np.cos(angle), np.sin(angle)])
        cube = np.r_[0.1, -0.05]
        tcp = np.r_[cube - 0.04 * direction, tasks.CUBE_HALF]
        # the goal lies on the line through the cube; at the goal the cube-to-goal term is zero
        at_goal = state(tcp, [*cube, 0.02], [*cube, 0.001])
        assert float(cost(at_goal)) == pytest.approx(0.5 * 0.04, abs=1e-6)  # direction undefined: still finite
        away = state(tcp, [*cube, 0.02], [*(cube + 0.2 * direction), 0.001])
        assert float(cost(away)) == pytest.approx(0.2, abs=1e-5)  # gripper exactly at the push point


def test_push_cost_adds_the_weighted_reach_distance_and_ignores_height_of_the_goal():
    cost = tasks.push_cube_cost(LAYOUT, reach_weight=2.0, behind=0.05, height=0.03)
    s = state([0.0, 0.0, 0.03 + 0.1], [0.05, 0.0, 0.02], [0.25, 0.0, 0.5])
    assert float(cost(s)) == pytest.approx(0.2 + 2.0 * 0.1, abs=1e-5)


def test_push_cost_reads_the_layout_and_keeps_any_batch_shape():
    cost, shuffled = tasks.push_cube_cost(LAYOUT), tasks.push_cube_cost(SHUFFLED)
    g = torch.Generator().manual_seed(0)
    batch = torch.rand(2, 5, 3, 35, generator=g)  # (E, N, H, D)
    remap = torch.zeros_like(batch)
    for name in LAYOUT:
        remap[..., SHUFFLED[name]] = batch[..., LAYOUT[name]]
    values = cost(batch, torch.zeros(5, 3, 4))
    assert values.shape == (2, 5, 3)
    assert torch.allclose(values, shuffled(remap, None))
    assert torch.allclose(values[1, 2, 0], cost(batch[1, 2, 0], None))


def test_cost_for_names_the_tasks_it_knows():
    assert callable(tasks.cost_for("PushCube-v1", LAYOUT))
    with pytest.raises(ValueError, match="PushCube-v1"):
        tasks.cost_for("StackCube-v1", LAYOUT)
    with pytest.raises(KeyError, match="extra/obj_pose"):
        tasks.push_cube_cost({"extra/tcp_pose": slice(0, 7)})(torch.zeros(7))


@pytest.fixture(scope="module")
def env():
    return envs.make("PushCube-v1", seed=0)


def test_shift_cube_moves_the_cube_in_the_table_plane_and_leaves_the_goal(env):
    env.reset(seed=4)
    before = env.true_state()[0][0]
    after = tasks.shift_cube(env, (0.03, -0.02))
    layout = env.state_layout
    moved = after[layout["extra/obj_pose"]][:3] - before[layout["extra/obj_pose"]][:3]
    assert torch.allclose(moved, torch.tensor([0.03, -0.02, 0.0]), atol=1e-6)
    assert torch.equal(after[layout["extra/goal_pos"]], before[layout["extra/goal_pos"]])
    obs, *_ = env.step(torch.tensor([0.0, 0, 0, 1]))  # the simulator agrees: the cube is really there
    assert torch.allclose(obs[0, layout["extra/obj_pose"]][:2], after[layout["extra/obj_pose"]][:2], atol=1e-4)
    with pytest.raises(ValueError, match="dx, dy"):
        tasks.shift_cube(env, (0.1, 0.0, 0.0))


def test_shift_goal_moves_the_goal_and_leaves_the_cube_and_the_frame_shows_it(env):
    env.reset(seed=4)
    before = env.true_state()[0][0]
    after = tasks.shift_goal(env, (-0.05, 0.04))
    layout = env.state_layout
    moved = after[layout["extra/goal_pos"]] - before[layout["extra/goal_pos"]]
    assert torch.allclose(moved, torch.tensor([-0.05, 0.04, 0.0]), atol=1e-6)
    assert torch.equal(after[layout["extra/obj_pose"]], before[layout["extra/obj_pose"]])
    with pytest.raises(ValueError, match="dx, dy"):
        tasks.shift_goal(env, (0.1,))
    from wmlib import collect

    camera = envs.make("PushCube-v1", obs_mode="rgb", image_size=64, seed=0)
    try:
        plain = collect.run_episode(camera, "PushCube-v1", "random", seed=5)
        shifted = collect.run_episode(camera, "PushCube-v1", "random", seed=5,
                                      start=lambda e: tasks.shift_goal(e, (0.0, 0.1)))
    finally:
        camera.close()
    first = lambda ep: ep["steps"]["observation"]["image"][0].astype(int)  # noqa: E731
    goal = lambda ep: ep["steps"]["observation"]["state"][0][layout["extra/goal_pos"]]  # noqa: E731
    assert abs(goal(shifted)[1] - goal(plain)[1] - 0.1) < 1e-5, "the recorded state has the moved goal"
    assert abs(first(shifted) - first(plain)).mean() > 1.0, "the first frame is taken after the move"


def test_closed_loop_controller_succeeds_and_its_replay_repeats_it(env):
    layout = env.state_layout
    first = control.run_episode(env, scripted.controller_for("PushCube-v1", layout), seed=11)
    assert first.success and 0 < first.steps < 50
    assert first.states.shape == (first.steps + 1, 35) and first.actions.shape == (first.steps, 4)
    again = control.run_episode(env, control.replay(first.actions), seed=11)
    assert again.success and again.steps == first.steps
    assert torch.equal(again.states[0], first.states[0])  # the same start
    # the same actions give the same motion, to a few millimetres: the contact solver's memory of
    # the previous episode is not part of the reset
    for name in ("extra/tcp_pose", "extra/obj_pose"):
        assert torch.allclose(again.states[:, layout[name]][:, :3], first.states[:, layout[name]][:, :3], atol=5e-3)


def test_a_replay_from_a_moved_start_goes_where_the_old_cube_was(env):
    layout = env.state_layout
    first = control.run_episode(env, scripted.controller_for("PushCube-v1", layout), seed=12)
    moved = control.run_episode(env, control.replay(first.actions), seed=12,
                                start=lambda e: tasks.shift_cube(e, (0.0, 0.08)))
    assert not moved.success and moved.steps == first.steps  # ran out of actions
    tcp = layout["extra/tcp_pose"]
    assert torch.allclose(moved.states[:, tcp][:, :3], first.states[:, tcp][:, :3], atol=0.01)
    closed = control.run_episode(env, scripted.controller_for("PushCube-v1", layout), seed=12,
                                 start=lambda e: tasks.shift_cube(e, (0.0, 0.08)))
    assert closed.success


def test_run_episode_stops_at_max_steps_and_when_the_policy_has_nothing_more(env):
    idle = control.run_episode(env, lambda s: np.zeros(4, np.float32), seed=0, max_steps=5)
    assert idle.steps == 5 and not idle.success
    empty = control.run_episode(env, control.replay(np.zeros((0, 4))), seed=0)
    assert empty.steps == 0 and empty.actions.shape == (0, 4) and empty.states.shape == (1, 35)
    timed_out = control.run_episode(env, lambda s: np.zeros(4, np.float32), seed=0)
    assert timed_out.steps == 50 and not timed_out.success  # the env's own time limit


def test_the_learned_model_cost_uses_its_own_weights_and_explicit_weights_win():
    states = torch.randn(6, 35)
    assert tasks.LEARNED_MODEL_WEIGHTS["PushCube-v1"]["reach_weight"] != 0.5
    learned = tasks.cost_for("PushCube-v1", LAYOUT, learned_model=True)
    expected = tasks.push_cube_cost(LAYOUT, **tasks.LEARNED_MODEL_WEIGHTS["PushCube-v1"])
    assert torch.allclose(learned(states), expected(states))
    assert torch.allclose(tasks.cost_for("PushCube-v1", LAYOUT, learned_model=True, reach_weight=0.5)(states),
                          tasks.push_cube_cost(LAYOUT)(states))
    assert torch.allclose(tasks.cost_for("PullCube-v1", LAYOUT, learned_model=True)(states),
                          tasks.pull_cube_cost(LAYOUT)(states))     # no special weights: the cost's own
