"""Synthetic capture folders with a known calibration: the ground truth the real ones lack.

A sharp image is blurred by the rotation a gyro trace predicts (per-row rolling-shutter
rotations through :func:`eggnet_ros.motion.frame_motion`, many sub-exposure samples, pinhole
camera), and written in the capture layout with a rig.yaml that may deliberately *differ* from
the truth (e.g. time offset 0 while the frames were rendered with 12 ms). The offset sweep,
overlay and importer are then tested against a known answer.

Rendering: pixel x of row v collects, at sub-exposure time t_i, the scene point that was at
``H_i^-1 x`` at the row's exposure centre (``H_i = K R_i K^-1`` maps centre-time pixels to time
t_i), so ``B(x) = mean_i S(H_i^-1 x)`` with ``S`` the sharp image, by ``cv2.remap`` per sample.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from eggnet_ros.motion import CameraModel, ImuSamples, frame_motion

from .layout import CameraCalibration, FrameEntry, RigParams, write_capture

_LOG = logging.getLogger(__name__)


def render_blur(sharp: np.ndarray, camera: CameraModel, rotations_rows: np.ndarray) -> np.ndarray:
    """Blur ``sharp`` (H, W, C) float32 with per-row rotations (H, n, 3, 3) (pinhole camera)."""
    h, w = sharp.shape[:2]
    if rotations_rows.shape[0] != h:
        raise ValueError(f"need one rotation set per row ({h}), got {rotations_rows.shape[0]}")
    K = camera.K
    Kinv = np.linalg.inv(K)
    u = np.arange(w, dtype=np.float64)
    pix = np.stack(
        [
            np.broadcast_to(u, (h, w)),
            np.broadcast_to(np.arange(h, dtype=np.float64)[:, None], (h, w)),
            np.ones((h, w)),
        ],
        axis=-1,
    )  # (h, w, 3)
    acc = np.zeros_like(sharp, dtype=np.float32)
    n = rotations_rows.shape[1]
    for i in range(n):
        hinv = K @ np.swapaxes(rotations_rows[:, i], -1, -2) @ Kinv  # (h, 3, 3) = H_i^-1 per row
        src = np.einsum("vij,vuj->vui", hinv, pix)
        mx = (src[..., 0] / src[..., 2]).astype(np.float32)
        my = (src[..., 1] / src[..., 2]).astype(np.float32)
        acc += cv2.remap(sharp, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return acc / n


def synth_capture(
    folder: str | Path,
    sharp: np.ndarray,
    imu: ImuSamples,
    stamps: list[float],
    exposure: float,
    camera: CameraCalibration,
    true_rig: RigParams,
    written_rig: RigParams | None = None,
    n_render: int = 31,
    noise: float = 0.0,
    seed: int = 0,
    renderer: str = "builtin",
) -> Path:
    """Render blurred frames of ``sharp`` for ``stamps`` and write them as a capture folder.

    ``imu`` is in the IMU frame and clock (as a gyro would log it); ``true_rig`` is used to
    render, ``written_rig`` (default: the truth) goes into rig.yaml. Frames are 8-bit PNG.
    ``renderer="data"`` renders with :mod:`eggnet_ros.data.synth` (the training-data renderer:
    its own rotation integration and warping, so a test of the capture tools against it is
    not a test of this module against itself).
    """
    if renderer not in ("builtin", "data"):
        raise ValueError(f"renderer must be 'builtin' or 'data', got {renderer!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h, w = sharp.shape[:2]
    if (w, h) != (camera.width, camera.height):
        raise ValueError(f"sharp image {w}x{h} does not match the camera {camera.width}x{camera.height}")
    cam = CameraModel.from_calibration_yaml(camera.to_dict())
    rng = np.random.default_rng(seed)
    rows = (np.arange(h) + 0.5) / h
    frames = []
    for k, stamp in enumerate(stamps):
        if renderer == "data":
            blurred = _render_with_data(sharp.astype(np.float32), cam, imu, stamp, true_rig, exposure)
        else:
            config = replace(true_rig.motion_config(exposure), n_samples=n_render)
            motion = frame_motion(imu, stamp, h, config, n_rows=33 if true_rig.readout_time > 0 else None)
            rot = motion.rotations_at_rows(rows)
            if rot.shape[0] == 1:
                rot = np.broadcast_to(rot, (h, *rot.shape[1:]))
            blurred = render_blur(sharp.astype(np.float32), cam, rot)
        if noise > 0:
            blurred = blurred + rng.normal(0.0, noise, blurred.shape).astype(np.float32)
        name = f"{k:04d}.png"
        out = np.clip(np.round(blurred * 255.0), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / name), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        frames.append(FrameEntry(name, float(stamp), float(exposure)))
    write_capture(
        folder,
        frames,
        imu.t,
        imu.omega,
        camera,
        written_rig or true_rig,
        {"rig.yaml": "synthetic capture (eggnet_ros.capture.synthetic)"},
    )
    return folder


def _render_with_data(
    sharp: np.ndarray, cam: CameraModel, imu: ImuSamples, stamp: float, rig: RigParams, exposure: float
) -> np.ndarray:
    from eggnet_ros.data.synth import render_blur as data_render_blur
    from eggnet_ros.data.synth import scene_from_motion

    scene = scene_from_motion(cam, rig.timing(exposure), stamp, imu.rotated(rig.rotation_matrix))
    m = scene.margin
    src = cv2.copyMakeBorder(sharp, m, m, m, m, cv2.BORDER_REFLECT_101)
    blurred, _ = data_render_blur(scene, src, (m, m))
    return blurred


def turning_shake(t: np.ndarray, rate: float, turn_hz: float, roll: float = 0.0) -> np.ndarray:
    """Camera-frame angular velocity whose direction turns at ``turn_hz`` (pan/tilt circle) with
    magnitude ``rate`` (rad/s) modulated by 30 %, plus a small roll: a shake whose streak
    direction changes within tens of milliseconds, so the time offset is observable."""
    phase = 2 * np.pi * turn_hz * t
    mag = rate * (1.0 + 0.3 * np.sin(2 * np.pi * 2.3 * t))
    return np.stack([mag * np.cos(phase), mag * np.sin(phase), roll * np.sin(2 * np.pi * 3.1 * t)], axis=1)
