"""The simulator as a perfect world model: save the world, try actions in it, put it back.

``SimulatorModel(env)`` offers the same ``rollout(state, actions)`` as a learned model
(see ``wmlib.planning``), so one planner runs on both and the comparison is fair. Its
answers are as good as predictions get, because it runs the very physics the robot acts
in; what it costs is time: every candidate step is a real physics step.

    sim = SimulatorModel(env)                    # env: a wmlib.envs.CourseEnv
    predicted = sim.rollout(state, actions)      # (N, H, A) -> (1, N, H, D); env untouched

``snapshot(env)`` / ``restore(env, saved)`` are the two halves of that trick, usable on
their own. A snapshot holds every number a step depends on that the simulator lets us
read: the physics state of every moving body, the robot's joint drive targets, the
controllers' internal targets, and the episode's step counter. (Link poses such as the
gripper's are recomputed from the joints, identical to float rounding.) It does not hold the
contact solver's memory of the previous steps, which PhysX keeps to itself: after a
restore, the same actions give the same motion to about 1e-4 m, not bit for bit, and a
collision can amplify that to a centimetre.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# The planner settings that chapter 2 measures the ceiling with (random shooting on PushCube-v1,
# pd_ee_delta_pos): N candidates of H steps per decision, a decision every `replan_every` steps.
ORACLE = {"horizon": 4, "num_samples": 12, "replan_every": 2}

# The controllers' internal state that survives from one step to the next (ManiSkill's PD
# controllers): where the last action started from and what it aimed at.
CONTROLLER_FIELDS = ("_step", "_step_size", "_start_qpos", "_target_qpos", "_target_pose")


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if hasattr(value, "raw_pose"):  # a ManiSkill Pose
        return type(value).create(value.raw_pose.clone())
    return value


def _controllers(agent) -> dict:
    controller = agent.controller
    return dict(controller.controllers) if hasattr(controller, "controllers") else {"": controller}


@dataclass
class Snapshot:
    """Every number of an env's state that the simulator lets us read back, for ``restore``."""
    physics: dict
    drive_targets: dict
    controllers: dict
    elapsed_steps: torch.Tensor
    last_obs: object


def snapshot(env) -> Snapshot:
    """Save the complete simulator state of a ManiSkill env (a CourseEnv or any wrapper of one)."""
    base = env.unwrapped
    physics = base.scene.get_sim_state()  # actors and articulations: pose, velocities, joints
    drive = {name: art.get_drive_targets().clone()
             for name, art in base.scene.state_dict_registry.articulations.items()}
    controllers = {name: {f: _copy(getattr(c, f)) for f in CONTROLLER_FIELDS if hasattr(c, f)}
                   for name, c in _controllers(base.agent).items()}
    return Snapshot(physics, drive, controllers, base._elapsed_steps.clone(), _copy(base._last_obs))


def restore(env, saved: Snapshot) -> None:
    """Put the env back into the state ``saved`` (from ``snapshot``), bit for bit in every saved number.

    Its next steps repeat the saved future up to the contact solver's memory (module docstring).
    """
    base = env.unwrapped
    registry = base.scene.state_dict_registry
    if base.gpu_sim_enabled:
        base.scene.set_sim_state(saved.physics)
        for name, targets in saved.drive_targets.items():
            art = registry.articulations[name]
            art.set_joint_drive_targets(targets, art.active_joints)
        base.scene._gpu_apply_all()
        base.scene.px.gpu_update_articulation_kinematics()
        base.scene._gpu_fetch_all()
    else:
        for name, state in saved.physics.get("actors", {}).items():
            registry.actors[name].set_state(state)
        for name, state in saved.physics.get("articulations", {}).items():
            art = registry.articulations[name]
            # Setting the root pose of a fixed-base robot rounds its quaternion (about 1e-8), which
            # then changes every later step a little; set it only if the root really moved.
            if not torch.equal(art.get_state()[:, :13], state[:, :13]):
                art.set_state(state)
            else:
                dof = art.max_dof
                art.set_qpos(state[:, 13:13 + dof])
                art.set_qvel(state[:, 13 + dof:13 + 2 * dof])
            art.set_joint_drive_targets(saved.drive_targets[name], art.active_joints)
    for name, c in _controllers(base.agent).items():
        for field, value in saved.controllers[name].items():
            setattr(c, field, _copy(value))
    base._elapsed_steps = saved.elapsed_steps.clone()
    base._last_obs = _copy(saved.last_obs)


def current_state(env) -> torch.Tensor:
    """The env's true state vector (D,) in the course layout, whatever its obs_mode."""
    state, _ = env.true_state()
    return state[0]


def make_copy(env):
    """A second env of the same task and settings, in state mode, for trying actions out of sight."""
    from wmlib import envs

    base = env.unwrapped
    kwargs = {k: v for k, v in base.spec.kwargs.items() if k not in ("obs_mode", "num_envs", "sensor_configs")}
    copy = envs.make(base.spec.id, obs_mode="state", **kwargs)
    copy.reset(seed=getattr(env, "first_seed", 0))  # build the same scene
    return copy


class SimulatorModel:
    """The simulator behind the world-model interface: ``rollout(state, actions) -> (1, N, H, D)``.

    Candidates are tried in a private copy of the env (same task, same settings): the copy is
    put into the env's exact state (``snapshot``/``restore``) before each candidate, and the
    env itself is only read, never stepped, so it continues exactly as if no one had planned.
    (Trying candidates in the env itself and restoring it afterwards gets every number the
    simulator lets us read back, but not the contact solver's memory of the last steps, so
    the env's future would shift by about 1e-4 m, more through collisions.) The same memory
    makes the copy's predictions differ from the real steps by about that much: exact to
    1e-5 in free space, within a centimetre or so through contacts; near-perfect, not bit-exact.

    It predicts from the simulator's own current state, which holds more than the
    observation (the cube's velocity, for instance); ``state`` must be the env's current
    state (checked to ``atol``), so a planner cannot silently ask about a different world.
    ``steps`` counts the simulator steps spent, for the cost of a decision.
    """

    def __init__(self, env, atol: float = 1e-5):
        if env.unwrapped.num_envs != 1:
            raise ValueError(f"SimulatorModel tries candidates one after another in one env; "
                             f"got an env with num_envs={env.unwrapped.num_envs}")
        self.env = env
        self.copy = make_copy(env)
        self.atol = atol
        self.steps = 0
        self.action_dim = env.unwrapped.single_action_space.shape[0]

    def rollout(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """state (D,), actions (N, H, A) -> predicted states (1, N, H, D), on state's device."""
        if actions.ndim != 3 or actions.shape[2] != self.action_dim:
            raise ValueError(f"actions must have shape (N, H, A) with A={self.action_dim}, got {tuple(actions.shape)}")
        now = current_state(self.env)
        if state.shape != now.shape:
            raise ValueError(f"state has shape {tuple(state.shape)}, the simulator's state is {tuple(now.shape)}")
        gap = float((state.detach().to(now.device, now.dtype) - now).abs().max())
        if gap > self.atol:
            raise ValueError(f"SimulatorModel predicts from the simulator's current state, and the state given "
                             f"differs from it by {gap:.3g} (atol={self.atol}). Pass the env's current state.")
        n, h, _ = actions.shape
        plays = actions.detach().to(self.copy.unwrapped.device, torch.float32)
        out = torch.empty((1, n, h, now.shape[0]), dtype=now.dtype, device=now.device)
        saved = snapshot(self.env)
        for i in range(n):
            restore(self.copy, saved)
            for t in range(h):
                self.copy.unwrapped._step_action(plays[i, t][None])
                out[0, i, t] = current_state(self.copy)
        self.steps += n * h
        return out.to(state.device)


def plan_step(env, candidates: torch.Tensor, cost) -> tuple[torch.Tensor, torch.Tensor]:
    """One planning decision in the env itself (chapter 2's exercise): from its current state, play
    each candidate of (N, H, A), scoring the states it passes through with ``cost(states (1, 1, H, D),
    actions (1, H, A)) -> (1, 1, H)``, and put the env back where it was each time.
    Returns (the cheapest candidate (H, A), every candidate's total cost (N,)).
    ``SimulatorModel`` does the same in a private copy, which leaves even the contact solver's
    memory of the env untouched."""
    saved = snapshot(env)
    totals = []
    for sequence in candidates:
        restore(env, saved)
        states = []
        for action in sequence:
            env.step(action)
            states.append(current_state(env))
        totals.append(cost(torch.stack(states)[None, None], sequence[None]).sum())
    restore(env, saved)
    totals = torch.stack(totals)
    return candidates[int(totals.argmin())], totals

