"""Scripted controllers for PushCube and PickCube with ``pd_ee_delta_pos`` actions.

Each controller reads the true state (``state`` is one env's state vector, ``layout``
names its slices) and returns an action ``[dx, dy, dz, gripper]`` in [-1, 1]: a move
of the gripper's target by up to 0.1 m per axis, and the gripper command
(+1 open, -1 closed). They are small state machines, one phase after another,
that re-read the state at every step: closed-loop control, not a replayed plan.

``mistake`` turns a good controller into a plausible bad one (``MISTAKES`` per task):
- ``"off_line"`` (PushCube): pushes along a line 45-70 degrees off the goal direction;
- ``"offset"`` (PickCube): aims 3.5 cm beside the cube and grasps thin air;
- ``"early_release"`` (PickCube): opens the gripper halfway to the goal.
"""
from __future__ import annotations

import numpy as np

MAX_MOVE = 0.1  # metres per unit of action in pd_ee_delta_pos
CUBE_HALF = 0.02
OPEN, CLOSED = 1.0, -1.0


def move_towards(tcp: np.ndarray, target: np.ndarray, gain: float = 1.5) -> np.ndarray:
    """Normalised position command that moves the tool centre point (TCP) towards target."""
    return np.clip(gain * (target - tcp) / MAX_MOVE, -1.0, 1.0)


def read(state, layout: dict, name: str) -> np.ndarray:
    if hasattr(state, "detach"):  # a torch tensor, maybe on a GPU
        state = state.detach().cpu()
    return np.asarray(state, dtype=np.float64)[layout[name]]


class Controller:
    """A phase machine. Subclasses define ``act(tcp, cube, goal) -> action``."""

    def __init__(self, layout: dict, mistake: str | None = None, rng: np.random.Generator | None = None):
        self.layout = layout
        self.mistake = mistake
        rng = rng or np.random.default_rng()
        angle = rng.uniform(0, 2 * np.pi)
        self.offset = np.r_[0.035 * np.cos(angle), 0.035 * np.sin(angle), 0.0] if mistake == "offset" else np.zeros(3)
        self.heading_error = rng.choice([-1, 1]) * np.radians(rng.uniform(45, 70)) if mistake == "off_line" else 0.0
        self.restart()

    def restart(self) -> None:
        """Start again from the first phase (after a disturbance, say)."""
        self.phase = 0
        self.timer = 0

    def __call__(self, state) -> np.ndarray:
        tcp = read(state, self.layout, "extra/tcp_pose")[:3]
        cube = read(state, self.layout, "extra/obj_pose")[:3]
        goal = read(state, self.layout, "extra/goal_pos")[:3]
        return self.act(tcp, cube + self.offset, goal).astype(np.float32)

    def next_phase_if(self, done: bool) -> None:
        if done:
            self.phase += 1
            self.timer = 0
        else:
            self.timer += 1


class PushCubeController(Controller):
    """Go behind the cube (seen from the goal), lower, then push through to the goal."""

    def act(self, tcp, cube, goal):
        direction = goal[:2] - cube[:2]
        direction /= np.linalg.norm(direction) + 1e-9
        c, s = np.cos(self.heading_error), np.sin(self.heading_error)
        direction = np.array([[c, -s], [s, c]]) @ direction
        behind = np.r_[cube[:2] - direction * (CUBE_HALF + 0.035), 0.0]
        if self.phase == 0:  # above the pre-push point
            target = behind + [0, 0, 0.06]
            self.next_phase_if(np.linalg.norm(tcp[:2] - target[:2]) < 0.01)
        elif self.phase == 1:  # down to pushing height
            target = behind + [0, 0, CUBE_HALF * 0.8]
            self.next_phase_if(abs(tcp[2] - target[2]) < 0.008)
        else:  # push along the line through the cube to the goal
            target = np.r_[cube[:2] + direction * (np.linalg.norm(goal[:2] - cube[:2]) + 0.02), CUBE_HALF * 0.8]
        return np.r_[move_towards(tcp, target), CLOSED]


class PickCubeController(Controller):
    """Above the cube with the gripper open, down, close, then carry to the goal."""

    def act(self, tcp, cube, goal):
        gripper = OPEN
        if self.phase == 0:  # above the cube
            target = cube + [0, 0, 0.08]
            self.next_phase_if(np.linalg.norm(tcp[:2] - target[:2]) < 0.008)
        elif self.phase == 1:  # down around it
            target = cube.copy()
            self.next_phase_if(abs(tcp[2] - target[2]) < 0.006)
        elif self.phase == 2:  # close and wait for the fingers
            target, gripper = tcp.copy(), CLOSED
            self.next_phase_if(self.timer >= 4)
        else:  # carry to the goal
            target, gripper = goal, CLOSED
            halfway = np.linalg.norm(tcp - goal) < 0.5 * np.linalg.norm(cube - goal) + 0.05
            if self.mistake == "early_release" and self.timer > 3 and halfway:
                gripper = OPEN
            self.timer += 1
        return np.r_[move_towards(tcp, target), gripper]


CONTROLLERS = {"PushCube-v1": PushCubeController, "PickCube-v1": PickCubeController}
MISTAKES = {"PushCube-v1": ("off_line",), "PickCube-v1": ("offset", "early_release")}


def controller_for(env_id: str, layout: dict, mistake: str | None = None, rng: np.random.Generator | None = None):
    """The scripted controller of a task, good (mistake=None) or with one of MISTAKES[env_id]."""
    if env_id not in CONTROLLERS:
        raise ValueError(f"no scripted controller for {env_id!r}; have {sorted(CONTROLLERS)}")
    if mistake is not None and mistake not in MISTAKES[env_id]:
        raise ValueError(f"unknown mistake {mistake!r} for {env_id}; have {MISTAKES[env_id]}")
    return CONTROLLERS[env_id](layout, mistake=mistake, rng=rng)
