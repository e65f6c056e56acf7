"""Planning from pixels in ManiSkill: the camera's frames reach the model as the dataset's did, plans stay in
bounds, and the ranking yardstick compares the model with the simulator."""
import numpy as np
import pytest
import torch

from wmlib import latent_control, latent_experiment as lx, sim_model

FIXTURE = "datasets/fixture/wmr_maniskill/push_cube/1.0.0"


@pytest.fixture(scope="module")
def env():
    from wmlib import envs

    made = envs.make("PushCube-v1", obs_mode="rgb", image_size=128, seed=0)
    yield made
    made.close()


@pytest.fixture(scope="module")
def model():
    pix = lx.pixel_data(path=FIXTURE, length=4)
    return lx.build("task_latent", pix, seed=0, embed_dim=16, hidden=16).eval(), pix


def test_the_camera_frame_and_proprioception_match_the_datasets_layout(env, model):
    _, pix = model
    raw, _ = env.reset(seed=1)
    frame, proprio = latent_control.observe(env, raw)
    assert frame.shape == (1, 64, 64, 3) and frame.dtype == torch.uint8
    assert proprio.shape == (1, pix.seq.proprio.shape[1])
    state, layout = env.true_state()
    assert torch.allclose(proprio[0, :9], state[0, layout["agent/qpos"]].float()), "joints first, as recorded"


def test_a_latent_planner_acts_in_bounds_and_replans_on_its_schedule(env, model):
    m, _ = model
    planner = latent_control.LatentPlanner(m, horizon=3, num_samples=8, iterations=1, replan_every=2)
    run = latent_control.play(env, planner, seed=700_001, max_steps=5)
    assert run.steps == 5 and run.decision_seconds > 0 and not np.isnan(run.decision_seconds)
    assert planner.plan.shape == (3, 4) and float(planner.plan.abs().max()) <= 1.0
    assert planner.since == 1, "5 steps with a plan every 2: the last plan was made at step 5"


def test_ranking_compares_the_models_returns_with_the_simulators(env, model):
    m, _ = model
    env.reset(seed=700_002)
    copy = sim_model.make_copy(env)
    plans = torch.zeros(2, 3, 4)
    plans[1, :, 0] = 1.0                                       # the second moves the gripper 3 x 10 cm along x
    first = latent_control.true_returns(env, copy, plans)
    assert torch.equal(first, latent_control.true_returns(env, copy, plans)), "each candidate from the same start"
    assert first[0] != first[1]
    copy.close()
    rho = latent_control.ranking(m, env, seeds=[700_003], candidates=5, horizon=3)
    assert len(rho) == 1 and -1 <= rho[0] <= 1


def test_a_controller_found_inside_the_model_drives_the_arm(env):
    from wmlib.models import vmc

    pix = lx.pixel_data(path=FIXTURE, length=4)
    model = lx.build("vmc", pix, seed=0, embed_dim=16, hidden=16, deter=16, code=4).eval()
    features = lx.filtered_features(model, pix.seq)
    controller, best = vmc.train_controller(model, model.carry_of(features[:32]), horizon=4, generations=2,
                                            population=8, elites=2)
    run = latent_control.play(env, latent_control.ControllerPolicy(model, controller), seed=700_004, max_steps=3)
    assert run.steps == 3 and len(best) == 2
