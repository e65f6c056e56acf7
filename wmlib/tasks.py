"""What each task wants, written on the flat state vector: costs for planners, and start perturbations.

A state vector's parts are found through its layout (name -> slice, as ``env.state_layout``
or ``wmlib.data.state_layout`` give it), never through hard-coded indices, so the same cost
reads a simulator state, a dataset state, or a learned model's predicted state.

Costs follow the contract of ``wmlib.planning``: ``cost(states (..., D), actions) -> (...)``,
one number per state, for any leading shape such as ``(E, N, H)``.
"""
from __future__ import annotations

import torch

CUBE_HALF = 0.02  # metres, PushCube-v1 and PickCube-v1
GOAL_RADIUS = 0.1  # PushCube-v1: success when the cube's centre is this close to the goal (x, y)
# Weights for a planner on a learned model, where they differ from the costs' defaults. On
# PushCube the default reach weight, 0.5, suits a planner on the simulator itself (chapter 2); on
# a learned model it needs more: the model predicts the gripper's own motion well and the cube's
# poorly away from contact, and a cost that leans on the cube term invites the planner to chase
# pushes the model only imagines (chapter 5). PullCube's default already works.
LEARNED_MODEL_WEIGHTS = {"PushCube-v1": {"reach_weight": 3.0}}


def part(states: torch.Tensor, layout: dict, name: str) -> torch.Tensor:
    """The named slice of a batch of states: (..., D) -> (..., width)."""
    if name not in layout:
        raise KeyError(f"the state layout has no {name!r}; it has {sorted(layout)}")
    return states[..., layout[name]]


def positions(states: torch.Tensor, layout: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gripper (TCP), cube and goal positions, each (..., 3)."""
    return (part(states, layout, "extra/tcp_pose")[..., :3],
            part(states, layout, "extra/obj_pose")[..., :3],
            part(states, layout, "extra/goal_pos")[..., :3])


def push_point(cube: torch.Tensor, goal: torch.Tensor, behind: float = 0.04, height: float = CUBE_HALF) -> torch.Tensor:
    """Where the gripper should be to push the cube towards the goal: ``behind`` metres behind
    the cube's centre on the line from the goal through the cube, at ``height`` above the table.

    cube, goal: (..., 3) -> (..., 3).
    """
    direction = goal[..., :2] - cube[..., :2]
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    xy = cube[..., :2] - behind * direction
    return torch.cat([xy, torch.full_like(xy[..., :1], height)], dim=-1)


def reach_target(tcp: torch.Tensor, cube: torch.Tensor, goal: torch.Tensor, behind: float = 0.04,
                 height: float = CUBE_HALF, clearance: float | None = None) -> torch.Tensor:
    """Where the gripper should head to push the cube towards the goal: (..., 3) each -> (..., 3).

    The push point (``push_point``). With a ``clearance`` (metres above the table), the gripper
    aims at the push point raised to that height until it is behind the cube, and only then at
    the push point itself: it goes over the cube, never through it, and does not land in front of it.
    """
    point = push_point(cube, goal, behind, height)
    if clearance is None:
        return point
    direction = goal[..., :2] - cube[..., :2]
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    beyond = ((cube[..., :2] - tcp[..., :2]) * direction).sum(dim=-1)  # how far behind the cube's centre
    height = torch.where(beyond > behind - 0.01, point[..., 2], torch.full_like(point[..., 2], clearance))
    return torch.cat([point[..., :2], height[..., None]], dim=-1)


def push_cube_cost(layout: dict, reach_weight: float = 0.5, behind: float = 0.04, height: float = CUBE_HALF,
                   clearance: float | None = None):
    """PushCube-v1 cost per state: cube-to-goal distance in the table plane, plus
    ``reach_weight`` times the gripper's distance to where it should be (``reach_target``:
    the push point behind the cube; with a ``clearance``, first the point above it).

    The first term is the task; the second tells a short-horizon planner how to get a
    grip on it: without it, every plan that does not touch the cube looks equally bad.
    Returns cost(states (..., D), actions) -> (...).
    """
    def cost(states: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        return push_cost(states, layout, reach_weight, behind, height, clearance)

    return cost


def push_cost(states: torch.Tensor, layout: dict, reach_weight: float = 0.5, behind: float = 0.04,
              height: float = CUBE_HALF, clearance: float | None = None) -> torch.Tensor:
    """PushCube-v1 cost of each state, (..., D) -> (...): the formula behind ``push_cube_cost``
    (chapter 2's exercise). The cube's distance to the goal in the table plane, plus
    ``reach_weight`` times the gripper's distance to ``reach_target``."""
    tcp, cube, goal = positions(states, layout)
    to_goal = (cube[..., :2] - goal[..., :2]).norm(dim=-1)
    to_target = (tcp - reach_target(tcp, cube, goal, behind, height, clearance)).norm(dim=-1)
    return to_goal + reach_weight * to_target


def pull_cube_cost(layout: dict, reach_weight: float = 0.5, behind: float = 0.04, clearance: float = 0.08):
    """PullCube-v1 cost per state: the push cost with the goal between the robot and the cube.

    The gripper starts on the wrong side: it must get to the cube's far side (``behind`` metres
    beyond its centre, seen from the goal) without knocking the cube away from the goal, so it
    travels at ``clearance`` metres above the table until it is there (``reach_target``).
    Returns cost(states (..., D), actions) -> (...).
    """
    return push_cube_cost(layout, reach_weight, behind, clearance=clearance)


def cube_to_goal(states: torch.Tensor, layout: dict) -> torch.Tensor:
    """Distance (m) from the cube's centre to the goal in the table plane: (..., D) -> (...)."""
    _, cube, goal = positions(states, layout)
    return (cube[..., :2] - goal[..., :2]).norm(dim=-1)


COSTS = {"PushCube-v1": push_cube_cost, "PullCube-v1": pull_cube_cost}


def cost_for(env_id: str, layout: dict, learned_model: bool = False, **weights):
    """The planning cost of a task (see ``COSTS``), reading states laid out as ``layout``.

    ``learned_model=True``: with the weights for planning on a learned model
    (``LEARNED_MODEL_WEIGHTS``); ``weights`` given here override both.
    """
    if env_id not in COSTS:
        raise ValueError(f"no planning cost for {env_id!r}; have {sorted(COSTS)}")
    if learned_model:
        weights = {**LEARNED_MODEL_WEIGHTS.get(env_id, {}), **weights}
    return COSTS[env_id](layout, **weights)


def shift_actor(env, actor, offset) -> torch.Tensor:
    """Move a ManiSkill actor of a just-reset env by ``offset`` = (dx, dy) metres in the table plane;
    returns the env's new true state (D,)."""
    from mani_skill.utils.structs import Pose

    offset = torch.as_tensor(offset, dtype=torch.float32).flatten()
    if offset.shape != (2,):
        raise ValueError(f"offset must be (dx, dy) in metres, got shape {tuple(offset.shape)}")
    pose = actor.pose
    p = pose.p.clone()
    p[:, :2] += offset.to(p.device)
    actor.set_pose(Pose.create_from_pq(p=p, q=pose.q.clone()))
    base = env.unwrapped
    if base.gpu_sim_enabled:
        base.scene._gpu_apply_all()
        base.scene._gpu_fetch_all()
    state, _ = env.true_state()
    return state[0]


def shift_cube(env, offset) -> torch.Tensor:
    """Move the cube of a just-reset PushCube/PickCube env by ``offset`` = (dx, dy) metres in the table plane.

    The goal stays where it was. Returns the env's new true state (D,).
    """
    return shift_actor(env, env.unwrapped.obj, offset)


def shift_goal(env, offset) -> torch.Tensor:
    """Move the goal marker of a just-reset PushCube env by ``offset`` = (dx, dy) metres in the table plane.

    PushCube places its goal at a fixed offset from the cube's start, so a model can read the cube's
    start from the (large) goal marker; moving the goal breaks that shortcut. The cube stays where
    it was. Returns the env's new true state (D,).
    """
    base = env.unwrapped
    if not hasattr(base, "goal_region"):
        raise ValueError(f"{type(base).__name__} has no goal marker to move (goal_region)")
    return shift_actor(env, base.goal_region, offset)


def random_offset(radius: float, seed: int) -> tuple[float, float]:
    """A shift (dx, dy) of length ``radius`` metres in a direction drawn from ``seed`` (for ``shift_cube``)."""
    import numpy as np

    angle = np.random.default_rng([seed, 2]).uniform(0.0, 2.0 * np.pi)
    return (float(radius * np.cos(angle)), float(radius * np.sin(angle)))
