"""wmlib.sim_model: the simulator as a (near-)perfect world model.

A rollout must leave the env exactly where it was (a twin env that never planned stays in
lock-step with it, bit for bit), predict what stepping the env gives (to 1e-5 in free space,
to a centimetre or so through contacts, since PhysX keeps a contact memory that no saved
state holds), count its simulator steps, and refuse a state that is not the simulator's own.
One planner decision with it must help."""
import pytest
import torch

from wmlib import envs, planning, scripted, tasks
from wmlib.sim_model import SimulatorModel, current_state, restore, snapshot

ENV_ID = "PushCube-v1"


def near_the_cube(seed):
    """A PushCube env whose gripper has come down behind the cube (contacts are close), and its controller."""
    env = envs.make(ENV_ID, seed=seed)
    env.reset()
    controller = scripted.controller_for(ENV_ID, env.state_layout)
    for _ in range(10):
        env.step(controller(current_state(env)))
    return env, controller


@pytest.fixture(scope="module")
def pair():
    """Two envs with the same history: `env` plans, `twin` never does."""
    (env, controller), (twin, _) = near_the_cube(0), near_the_cube(0)
    assert torch.equal(current_state(env), current_state(twin))
    return env, twin, controller


def candidates(n, h, seed):
    return torch.rand(n, h, 4, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def physics(env):
    saved = snapshot(env)
    flat = [v for group in saved.physics.values() for v in group.values()]
    return torch.cat(flat, dim=1), saved


def test_rollout_leaves_the_env_exactly_where_it_was(pair):
    env, twin, controller = pair
    sim = SimulatorModel(env)
    before, saved = physics(env)
    predicted = sim.rollout(current_state(env), candidates(3, 5, seed=1))
    after, again = physics(env)
    assert predicted.shape == (1, 3, 5, current_state(env).shape[0])
    assert torch.equal(before, after)  # every body's pose, velocity and joint state, bit for bit
    for name in saved.drive_targets:
        assert torch.equal(saved.drive_targets[name], again.drive_targets[name])
    assert torch.equal(saved.elapsed_steps, again.elapsed_steps)
    for name, fields in saved.controllers.items():
        for field, value in fields.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, again.controllers[name][field]), (name, field)
    # and the future is unchanged: the env and its twin, which never planned, stay in lock-step
    for _ in range(8):
        action = controller(current_state(twin))
        obs, _, _, _, info = env.step(action)
        twin_obs, _, _, _, twin_info = twin.step(action)
        assert torch.equal(obs, twin_obs)
        assert bool(info["success"][0]) == bool(twin_info["success"][0])


def test_rollout_predicts_what_stepping_the_env_gives_in_free_space():
    env = envs.make(ENV_ID, seed=2)
    env.reset()
    for _ in range(3):  # move a little first, so velocities and controller targets are not at rest
        env.step(torch.tensor([0.3, -0.2, 0.1, 1.0]))
    sim = SimulatorModel(env)
    plans = candidates(4, 5, seed=2) * torch.tensor([0.5, 0.5, 0.3, 0.0]) + torch.tensor([0, 0, 0.3, 1.0])  # open, up
    predicted = sim.rollout(current_state(env), plans)
    assert not torch.allclose(predicted[0, 0], predicted[0, 3])  # different actions, different futures
    twin = sim.copy  # the env's own future, for each candidate: restore a copy and step it for real
    saved = snapshot(env)
    for i in (3, 0, 1):  # any candidate, in any order
        restore(twin, saved)
        real = torch.stack([twin.step(a)[0][0] for a in plans[i]])
        assert torch.allclose(predicted[0, i], real, atol=1e-5, rtol=0), i
    real = torch.stack([env.step(a)[0][0] for a in plans[2]])
    assert torch.allclose(predicted[0, 2], real, atol=1e-5, rtol=0)


def test_rollout_predicts_pushing_the_cube_to_within_a_centimetre_or_two():
    env, controller = near_the_cube(3)
    sim = SimulatorModel(env)
    layout = env.state_layout
    for _ in range(3):
        state = current_state(env)
        plan = torch.as_tensor(controller(state)).expand(5, 4)[None]  # keep pushing the way it is going
        predicted = sim.rollout(state, plan)[0, 0]
        real = torch.stack([env.step(a)[0][0] for a in plan[0]])
        for name in ("extra/tcp_pose", "extra/obj_pose"):
            gap = (predicted[:, layout[name]][:, :3] - real[:, layout[name]][:, :3]).abs().max()
            assert gap < 0.02, (name, float(gap))  # 5 mm on this machine: contacts amplify tiny differences


def test_restore_in_place_brings_back_every_number_the_simulator_shows():
    env, controller = near_the_cube(5)
    before, saved = physics(env)
    start = current_state(env)
    for _ in range(30):
        env.step(env.action_space.sample())
    assert not torch.allclose(current_state(env), start)
    restore(env, saved)
    after, again = physics(env)
    assert torch.equal(before, after)
    # the gripper's pose is recomputed from the joints, which rounds it slightly differently
    assert torch.allclose(current_state(env), start, atol=1e-6, rtol=0)
    assert int(env.unwrapped.elapsed_steps[0]) == 10
    for name in saved.drive_targets:
        assert torch.equal(saved.drive_targets[name], again.drive_targets[name])


def test_rollout_counts_steps_and_accepts_a_state_on_another_device_or_dtype(pair):
    env, _, _ = pair
    sim = SimulatorModel(env)
    sim.rollout(current_state(env).double(), candidates(2, 3, seed=0))
    sim.rollout(current_state(env), candidates(1, 4, seed=0))
    assert sim.steps == 2 * 3 + 1 * 4


def test_rollout_refuses_a_state_that_is_not_the_simulators_and_bad_actions(pair):
    env, _, _ = pair
    sim = SimulatorModel(env)
    state = current_state(env)
    moved = state.clone()
    moved[env.state_layout["extra/obj_pose"].start] += 0.01
    with pytest.raises(ValueError, match="current state"):
        sim.rollout(moved, candidates(2, 3, seed=0))
    with pytest.raises(ValueError, match=r"\(N, H, A\) with A=4"):
        sim.rollout(state, torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(N, H, A\)"):
        sim.rollout(state, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="state has shape"):
        sim.rollout(state[:-1], candidates(2, 3, seed=0))


def test_one_planning_decision_on_the_simulator_lowers_the_cost_it_was_asked_to_lower():
    env, _ = near_the_cube(7)
    sim = SimulatorModel(env)
    cost = tasks.push_cube_cost(env.state_layout)
    state = current_state(env)
    idle = torch.zeros(1, 4, 4)
    idle_cost = float(planning.total_cost(sim, cost, state, idle))
    plan = planning.random_shooting(sim, cost, state, horizon=4, num_samples=16, low=-torch.ones(4), high=torch.ones(4),
                                    generator=torch.Generator().manual_seed(0))
    plan_cost = float(planning.total_cost(sim, cost, state, plan[None]))
    assert plan_cost < idle_cost - 0.01


def test_an_env_with_several_copies_is_refused():
    class Fake:
        class unwrapped:
            num_envs = 4
    with pytest.raises(ValueError, match="num_envs=4"):
        SimulatorModel(Fake())


def test_plan_step_in_the_env_itself_scores_as_the_private_copy_and_puts_the_env_back():
    from wmlib.sim_model import plan_step

    env = envs.make("PushCube-v1", obs_mode="state", seed=0)
    sim = SimulatorModel(env)
    env.reset(seed=4)
    env.step(torch.tensor([0.2, 0.0, -0.3, 1.0]))
    before = snapshot(env)
    state = current_state(env)
    cost = tasks.push_cube_cost(env.state_layout)
    plans = torch.rand(6, 3, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    best, totals = plan_step(env, plans, cost)
    after = snapshot(env)
    for group in before.physics:
        for name in before.physics[group]:
            assert torch.equal(before.physics[group][name], after.physics[group][name]), name
    assert torch.equal(best, plans[int(totals.argmin())])
    copy_totals = cost(sim.rollout(state, plans), plans).sum(-1)[0]
    assert torch.allclose(totals, copy_totals, atol=1e-3), (totals, copy_totals)
    env.close()
    sim.copy.close()


def test_open_vs_closed_replays_blindly_and_the_controller_adapts():
    from wmlib.control import open_vs_closed

    env = envs.make("PushCube-v1", obs_mode="state", seed=0)
    try:
        assert open_vs_closed(env, 0, (0.0, 0.0)) == (True, True)
        assert open_vs_closed(env, 3, (0.0, 0.08)) == (False, True)
    finally:
        env.close()
