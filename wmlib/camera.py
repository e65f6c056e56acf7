"""Pinhole cameras: where a point of the world lands in an image, and how far from the camera it is.

The course dataset stores each camera as OpenCV-convention matrices (episode metadata):

- extrinsics E = [R | t], (3, 4): world -> camera, p_cam = R p_world + t, with the camera
  looking along its +z axis, x to the right of the image and y down;
- intrinsics K, (3, 3): camera -> pixels, [u*w, v*w, w] = K p_cam, with u the column and v
  the row, in pixels of the frame the camera recorded (128 x 128 in the course dataset).

Depth (p_cam's z) is what a single image cannot recover: every point on a ray through the
camera lands on the same pixel.
"""
from __future__ import annotations

import numpy as np


def to_camera(points, extrinsics) -> np.ndarray:
    """(N, 3) world points -> (N, 3) camera coordinates (x right, y down, z forward = depth)."""
    points, extrinsics = np.asarray(points, dtype=np.float64), np.asarray(extrinsics, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {points.shape}")
    if extrinsics.shape != (3, 4):
        raise ValueError(f"extrinsics must be (3, 4) [R | t], got shape {extrinsics.shape}")
    return points @ extrinsics[:, :3].T + extrinsics[:, 3]


def project(points, intrinsics, extrinsics) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) world points -> (N, 2) pixel coordinates (u, v) and (N,) depth along the camera's axis.

    Points behind the camera (depth <= 0) have no image: their pixel coordinates are NaN.
    """
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    if intrinsics.shape != (3, 3):
        raise ValueError(f"intrinsics must be (3, 3), got shape {intrinsics.shape}")
    cam = to_camera(points, extrinsics)
    depth = cam[:, 2]
    homogeneous = cam @ intrinsics.T  # (N, 3): [u*depth, v*depth, depth]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = homogeneous[:, :2] / homogeneous[:, 2:3]
    uv[depth <= 0] = np.nan
    return uv, depth


def camera_centre(extrinsics) -> np.ndarray:
    """(3,) the camera's position in the world: the point that maps to camera coordinates (0, 0, 0)."""
    extrinsics = np.asarray(extrinsics, dtype=np.float64)
    return -extrinsics[:, :3].T @ extrinsics[:, 3]


def occlusion_report(errors, tcp, cube, intrinsics, extrinsics, radius_px: float = 6.0, worst: int = 20) -> dict:
    """Relate per-frame errors (N,) to where the gripper's tool point and the cube (N, 3, world metres)
    appear in the camera image (chapter 3's exercise). A frame is ``covered`` when the two project
    within ``radius_px`` pixels of each other and the tool point is nearer the camera.

    Returns pixel_distance (N,), covered (N,) bool, worst (the indices of the ``worst`` largest errors,
    largest first, ties in frame order), covered_among_worst and covered_overall (shares), and
    error_covered / error_uncovered (mean errors; NaN when there is no such frame)."""
    errors = np.asarray(errors, dtype=float)
    uv_t, depth_t = project(tcp, intrinsics, extrinsics)
    uv_c, depth_c = project(cube, intrinsics, extrinsics)
    distance = np.linalg.norm(uv_t - uv_c, axis=1)
    covered = (distance < radius_px) & (depth_t < depth_c)
    order = np.argsort(-errors, kind="stable")[:min(worst, len(errors))]

    def mean_or_nan(x):
        return float(x.mean()) if len(x) else float("nan")

    return {"pixel_distance": distance, "covered": covered, "worst": order,
            "covered_among_worst": mean_or_nan(covered[order]), "covered_overall": mean_or_nan(covered),
            "error_covered": mean_or_nan(errors[covered]), "error_uncovered": mean_or_nan(errors[~covered])}

