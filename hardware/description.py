"""A robot's description (URDF): its joint limits, and where its tool is for given joint angles.

The safety layer takes its joint limits from here, not from hand-typed numbers, and checks
the workspace box on the tool point that ``forward_kinematics`` computes: walk the chain of
joints from the base to the tool, composing at each joint its fixed origin (a translation and
roll-pitch-yaw rotation from the URDF) with its rotation about its axis by the joint angle.

    arm = Description.from_urdf(SO100_URDF, joints=SO100_JOINTS, tool="Fixed_Jaw_tip")
    arm.limits(max_velocity=2.0)          # JointLimits from the URDF's <limit> tags
    arm.tool_position(q)                  # (3,) metres in the base frame
"""
from __future__ import annotations

import dataclasses
import pathlib
import xml.etree.ElementTree as ET

import numpy as np

from wmlib.robot import JointLimits


def _assets() -> pathlib.Path:
    import mani_skill

    return pathlib.Path(mani_skill.PACKAGE_ASSET_DIR) / "robots"


def rotation(rpy) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, then y, then z) -> 3x3 rotation matrix."""
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, np.cos(r), -np.sin(r)], [0, np.sin(r), np.cos(r)]])
    ry = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def about_axis(axis: np.ndarray, angle) -> np.ndarray:
    """Rotation by ``angle`` (...,) about the unit ``axis`` (Rodrigues' formula): (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)[..., None, None]
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def transform(rot: np.ndarray, xyz) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = rot, xyz
    return t


@dataclasses.dataclass(frozen=True)
class Joint:
    name: str
    kind: str                       # "revolute", "continuous", "prismatic" or "fixed"
    parent: str
    child: str
    origin: np.ndarray              # 4x4, child frame in the parent frame at angle 0
    axis: np.ndarray                # (3,)
    lower: float
    upper: float


@dataclasses.dataclass(frozen=True)
class Description:
    """The chain from the base to ``tool`` and the ``joints`` (J,) the robot is commanded in."""

    name: str
    joints: tuple[str, ...]
    chain: tuple[Joint, ...]        # base to tool, fixed joints included
    by_name: dict
    gripper: str | None = None

    @classmethod
    def from_urdf(cls, path, joints: tuple[str, ...], tool: str, gripper: str | None = None,
                  name: str | None = None) -> "Description":
        """Parse a URDF; ``joints`` are the commanded joints in order, ``tool`` the link whose
        origin is the tool point. A joint or link the file lacks is an error naming the file."""
        path = pathlib.Path(path)
        root = ET.parse(path).getroot()
        parsed = {}
        for j in root.findall("joint"):
            origin, axis, limit = j.find("origin"), j.find("axis"), j.find("limit")
            xyz = [float(v) for v in (origin.get("xyz", "0 0 0") if origin is not None else "0 0 0").split()]
            rpy = [float(v) for v in (origin.get("rpy", "0 0 0") if origin is not None else "0 0 0").split()]
            ax = np.array([float(v) for v in (axis.get("xyz", "1 0 0") if axis is not None else "1 0 0").split()])
            parsed[j.get("name")] = Joint(
                j.get("name"), j.get("type"), j.find("parent").get("link"), j.find("child").get("link"),
                transform(rotation(rpy), xyz), ax / (np.linalg.norm(ax) or 1.0),
                float(limit.get("lower", -np.pi)) if limit is not None else -np.pi,
                float(limit.get("upper", np.pi)) if limit is not None else np.pi)
        missing = [n for n in joints if n not in parsed]
        if missing:
            raise ValueError(f"{path.name}: no joint named {missing}; it has {sorted(parsed)}")
        into = {j.child: j for j in parsed.values()}
        chain, link = [], tool
        while link in into:
            chain.append(into[link])
            link = into[link].parent
        if not chain:
            raise ValueError(f"{path.name}: no link named {tool!r} is the child of a joint")
        chain.reverse()
        on_chain = {j.name for j in chain}
        off = [n for n in joints if n not in on_chain and n != gripper]
        if off:
            raise ValueError(f"{path.name}: joints {off} do not move the tool {tool!r}")
        return cls(name or path.stem, tuple(joints), tuple(chain), parsed, gripper)

    def limits(self, max_velocity) -> JointLimits:
        """The URDF's position limits for the commanded joints, with a speed limit (rad/s,
        one number or one per joint) that the safety layer enforces."""
        lower = np.array([self.by_name[n].lower for n in self.joints])
        upper = np.array([self.by_name[n].upper for n in self.joints])
        speed = np.broadcast_to(np.asarray(max_velocity, dtype=np.float64), lower.shape).copy()
        grip = self.joints.index(self.gripper) if self.gripper in self.joints else None
        return JointLimits(self.joints, lower, upper, speed, grip)

    def tool_position(self, q) -> np.ndarray:
        """Joint angles (..., J) in ``joints`` order -> tool points (..., 3) in the base frame, metres."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape[-1:] != (len(self.joints),):
            raise ValueError(f"{self.name}: expected {len(self.joints)} joint angles {self.joints}, got {q.shape}")
        angle = {name: q[..., i] for i, name in enumerate(self.joints)}
        zero = np.zeros(q.shape[:-1])
        pose = np.broadcast_to(np.eye(4), (*q.shape[:-1], 4, 4))
        for j in self.chain:
            pose = pose @ j.origin
            theta = angle.get(j.name, zero)
            if j.kind in ("revolute", "continuous"):
                moved = np.broadcast_to(np.eye(4), pose.shape).copy()
                moved[..., :3, :3] = about_axis(j.axis, theta)
                pose = pose @ moved
            elif j.kind == "prismatic":
                moved = np.broadcast_to(np.eye(4), pose.shape).copy()
                moved[..., :3, 3] = j.axis * theta[..., None]
                pose = pose @ moved
        return pose[..., :3, 3]


SO100_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
KOCH_JOINTS = ("joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6")


def so100() -> Description:
    """The SO-100 arm as ManiSkill ships it (five arm joints and the gripper jaw)."""
    return Description.from_urdf(_assets() / "so100" / "so100.urdf", SO100_JOINTS, tool="Fixed_Jaw_tip",
                                 gripper="gripper", name="so100")


def koch() -> Description:
    """The Koch v1.1 follower arm as ManiSkill ships it."""
    return Description.from_urdf(_assets() / "koch" / "follower_arm_v1.1.urdf", KOCH_JOINTS, tool="gripper_tcp",
                                 gripper="joint_6", name="koch")
