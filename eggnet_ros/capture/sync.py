"""Capture folder -> the motion library's objects (gyro stream, camera, per-frame motion).

Kept apart from :mod:`layout` (file format only) so that every consumer -- importer, overlay,
offset sweep, batch deblurring -- derives a frame's exposure window, rotation and camera scale
the same way, through :func:`eggnet_ros.motion.frame_motion`, exactly as the node does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from eggnet_ros.motion import CameraModel, FrameMotion, ImuSamples, frame_motion, validate_imu

from .layout import Capture, LayoutError

_LOG = logging.getLogger(__name__)


def capture_imu(capture: Capture, max_gap: float = 0.05) -> ImuSamples:
    """The capture's gyro stream (IMU frame and clock), cleaned by :func:`validate_imu`."""
    imu, report = validate_imu(capture.imu_t, capture.imu_omega, max_gap=max_gap)
    if not report.clean:
        _LOG.warning("%s/imu.csv: %s", capture.folder, report)
    return imu


def capture_camera(capture: Capture, scale: float = 1.0) -> CameraModel:
    """The camera of the frames resized by ``scale`` (K + D of camera.yaml, pixel-centre rule)."""
    cam = CameraModel.from_calibration_yaml(capture.camera.to_dict())
    if scale == 1.0:
        return cam
    return cam.resized(round(cam.width * scale), round(cam.height * scale))


def load_frame(capture: Capture, index: int, scale: float = 1.0) -> np.ndarray:
    """Frame ``index`` as RGB uint8, resized by ``scale`` (INTER_AREA: no aliasing when shrinking).

    Raises :class:`LayoutError` when the file cannot be decoded or its size disagrees with
    camera.yaml (a calibration for another resolution would misplace every streak).
    """
    path = capture.path_of(index)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise LayoutError(f"cannot decode image {path}")
    h, w = bgr.shape[:2]
    if (w, h) != (capture.camera.width, capture.camera.height):
        raise LayoutError(
            f"{path} is {w}x{h} but camera.yaml says {capture.camera.width}x{capture.camera.height}"
        )
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if scale != 1.0:
        size = (round(w * scale), round(h * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return rgb


@dataclass(frozen=True)
class FrameSync:
    """Everything needed to reason about one frame's blur."""

    index: int
    stamp: float
    motion: FrameMotion
    camera: CameraModel


def frame_sync(
    capture: Capture,
    index: int,
    imu: ImuSamples,
    scale: float = 1.0,
    n_samples: int = 13,
    n_rows: int | None = None,
    time_offset: float | None = None,
) -> FrameSync:
    """Motion of frame ``index`` through :func:`frame_motion` (raises MotionError when uncovered).

    ``time_offset`` overrides rig.yaml's (the offset sweep); ``scale`` only changes the camera
    (rotations do not depend on resolution, rows are normalised).
    """
    entry = capture.frames[index]
    config = capture.rig.motion_config(entry.exposure, n_samples=n_samples, time_offset=time_offset)
    camera = capture_camera(capture, scale)
    motion = frame_motion(imu, entry.stamp, capture.camera.height, config, n_rows=n_rows)
    return FrameSync(index, entry.stamp, motion, camera)


def streak_paths(sync: FrameSync, points: np.ndarray) -> np.ndarray:
    """Pixel paths (P, n, 2) of scene points seen at ``points`` (P, 2) at their rows' exposure centre.

    Uses the per-row rotations of the frame (interpolated to each point's row) and the camera's
    projection with distortion, i.e. the full blur trajectory through all n samples, not just the
    start/centre/end of the MGVs.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    cam = sync.camera
    rows = (pts[:, 1] + 0.5) / cam.height
    rot = sync.motion.rotations_at_rows(rows)  # (P or 1, n, 3, 3)
    if rot.shape[0] == 1 and pts.shape[0] > 1:
        rot = np.broadcast_to(rot, (pts.shape[0], *rot.shape[1:]))
    rays = cam.undistort_pixels(pts)  # (P, 3)
    moved = np.einsum("pnij,pj->pni", rot, rays)
    uv = cam.project(moved.reshape(-1, 3)).reshape(pts.shape[0], -1, 2)
    return uv
