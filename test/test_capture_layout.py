"""Capture layout: file round trip, validation, and the timing/rotation chain checked by hand.

The hand-computed cases use a gyro turning about one fixed axis, so the rotation between two
instants is exactly the integral of the (linearly interpolated) rate: the expected angles below
are trapezoid sums over the sparse samples, computed here independently of eggnet_ros.motion.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eggnet_ros.capture.layout import (
    CameraCalibration,
    FrameEntry,
    LayoutError,
    RigParams,
    read_capture,
    write_capture,
)
from eggnet_ros.capture.sync import capture_camera, capture_imu, frame_sync, load_frame, streak_paths

W, H = 64, 48
K = np.array([[80.0, 0.0, 31.5], [0.0, 80.0, 23.5], [0.0, 0.0, 1.0]])
#: A proper rotation that is not a permutation (30 deg about z, then 90 deg about x).
R_CAM_IMU = Rotation.from_euler("zx", [30, 90], degrees=True).as_matrix()


def _write(tmp_path, rig: RigParams, t: np.ndarray, omega: np.ndarray, stamps=(0.1,), exposure=0.02):
    img = np.full((H, W, 3), 128, np.uint8)
    frames = []
    for i, s in enumerate(stamps):
        name = f"f{i}.png"
        cv2.imwrite(str(tmp_path / name), img)
        frames.append(FrameEntry(name, s, exposure))
    cam = CameraCalibration(W, H, K, np.zeros(5), "plumb_bob", "test")
    write_capture(tmp_path, frames, t, omega, cam, rig)
    return read_capture(tmp_path)


def test_round_trip_keeps_every_value(tmp_path):
    rig = RigParams(tuple(R_CAM_IMU.ravel()), -0.0123456789, 0.031, "end")
    t = np.array([0.0, 0.0123456789, 0.02, 0.5])
    om = np.array([[1e-3, -2.5, 3.25], [0, 0, 0], [0.1, 0.2, 0.3], [-1, 1, -1]])
    cap = _write(tmp_path, rig, t, om, stamps=(0.123456789, 0.2), exposure=0.0125)
    assert cap.rig == rig
    np.testing.assert_allclose(cap.imu_t, t, atol=1e-9)
    np.testing.assert_allclose(cap.imu_omega, om, rtol=1e-8)
    assert [f.stamp for f in cap.frames] == pytest.approx([0.123456789, 0.2], abs=1e-9)
    assert cap.frames[0].file == "f0.png" and cap.frames[0].exposure == pytest.approx(0.0125)
    np.testing.assert_allclose(cap.camera.K, K)
    header = (tmp_path / "frames.csv").read_text().splitlines()[0]
    assert header == "file,stamp,exposure"
    assert (tmp_path / "imu.csv").read_text().splitlines()[0] == "t,wx,wy,wz"


def test_camera_yaml_is_read_by_the_ros_calibration_parser(tmp_path):
    rig = RigParams()
    cap = _write(tmp_path, rig, np.array([0.0, 1.0]), np.zeros((2, 3)))
    cam = capture_camera(cap, 0.5)
    # pixel-centre rule by hand: f' = f s, c' = (c + 0.5) s - 0.5
    assert (cam.width, cam.height) == (32, 24)
    assert cam.K[0, 0] == pytest.approx(40.0)
    assert cam.K[0, 2] == pytest.approx((31.5 + 0.5) * 0.5 - 0.5)
    assert cam.K[1, 2] == pytest.approx((23.5 + 0.5) * 0.5 - 0.5)
    assert load_frame(cap, 0, 0.5).shape == (24, 32, 3)


@pytest.mark.parametrize(
    ("rig_kw", "message"),
    [
        ({"rotation_cam_imu": (0, 1, 0, 1, 0, 0, 0, 0, 1)}, "det -1"),
        ({"rotation_cam_imu": (1, 0, 0, 0, 2, 0, 0, 0, 1)}, "not orthonormal"),
        ({"stamp_convention": "centre"}, "stamp_convention"),
        ({"readout_time": -0.01}, "readout"),
    ],
)
def test_bad_rig_values_are_rejected_with_a_reason(rig_kw, message):
    with pytest.raises(LayoutError, match=message):
        RigParams(**rig_kw)


def test_missing_files_and_bad_headers_name_the_problem(tmp_path):
    with pytest.raises(LayoutError, match=r"frames\.csv is missing"):
        read_capture(tmp_path)
    _write(tmp_path, RigParams(), np.array([0.0, 1.0]), np.zeros((2, 3)))
    (tmp_path / "imu.csv").write_text("time,x,y,z\n0,0,0,0\n1,0,0,0\n")
    with pytest.raises(LayoutError, match="t,wx,wy,wz"):
        read_capture(tmp_path)
    (tmp_path / "imu.csv").write_text("t,wx,wy,wz\n0,0,0,0\n1,0,0,0\n")
    (tmp_path / "f0.png").unlink()
    with pytest.raises(LayoutError, match=r"f0\.png"):
        read_capture(tmp_path)


# ---- timing, interpolation and rotation through the whole chain ------------------------------------

RATE_T = np.arange(0.0, 0.3001, 0.01)  # 100 Hz: only ~2 samples inside a 20 ms exposure
#: A rate that is *not* linear between samples' neighbours: the linear interpolant matters.
RATE = 2.0 + 3.0 * np.sin(2 * np.pi * 7.0 * RATE_T) ** 2


def _trapezoid_integral(t0: float, t1: float) -> float:
    """Integral of the piecewise-linear interpolant of RATE over [t0, t1], by hand."""
    knots = np.concatenate([[t0], RATE_T[(t0 < RATE_T) & (t1 > RATE_T)], [t1]])
    vals = np.interp(knots, RATE_T, RATE)
    return float(np.sum(0.5 * (vals[1:] + vals[:-1]) * np.diff(knots)))


@pytest.mark.parametrize("convention", ["start", "middle", "end"])
@pytest.mark.parametrize("offset", [0.0, 0.0137, -0.0071])
def test_exposure_window_rotation_and_interpolation_match_hand_computation(tmp_path, convention, offset):
    exposure, readout, stamp = 0.02, 0.03, 0.15
    axis_imu = np.array([0.0, 0.6, 0.8])
    om = RATE[:, None] * axis_imu[None, :]
    rig = RigParams(tuple(R_CAM_IMU.ravel()), offset, readout, convention)
    cap = _write(tmp_path, rig, RATE_T, om, stamps=(stamp,), exposure=exposure)
    sync = frame_sync(cap, 0, capture_imu(cap), n_samples=13, n_rows=H)
    back = {"start": 0.0, "middle": 0.5 * (readout + exposure), "end": readout + exposure}[convention]
    first_row_start = stamp - back + offset  # IMU clock (Kalibr: t_imu = t_cam + offset)
    axis_cam = R_CAM_IMU @ axis_imu
    for r in (0, H - 1):
        row_start = first_row_start + r * readout / H
        np.testing.assert_allclose(sync.motion.times[r, 0], row_start, atol=1e-12)
        np.testing.assert_allclose(sync.motion.times[r, -1], row_start + exposure, atol=1e-12)
        # rotation from the exposure start to its end: R_end R_start^T (both relative to the centre)
        rot = sync.motion.rotations[r]
        rel = rot[-1] @ rot[0].T
        rotvec = Rotation.from_matrix(rel).as_rotvec()
        angle = _trapezoid_integral(row_start, row_start + exposure)
        # a direction's coordinates turn opposite to the camera: rotvec = -angle * axis_cam
        np.testing.assert_allclose(rotvec, -angle * axis_cam, atol=1e-6)


def test_yawing_camera_streaks_point_left(tmp_path):
    """omega_y > 0 turns the forward axis towards +x, so the scene moves to -x (REP 103)."""
    t = np.arange(0.0, 0.5, 0.01)
    om_cam = np.array([0.0, 1.0, 0.0])
    om_imu = R_CAM_IMU.T @ om_cam
    rig = RigParams(tuple(R_CAM_IMU.ravel()), 0.0, 0.0, "middle")
    cap = _write(tmp_path, rig, t, np.tile(om_imu, (t.size, 1)), stamps=(0.2,), exposure=0.02)
    sync = frame_sync(cap, 0, capture_imu(cap))
    path = streak_paths(sync, np.array([[31.5, 23.5]]))[0]
    # centre pixel: u(t) = cx + f tan(-omega (t - tc)); start -> end spans f * 2 tan(0.01)
    np.testing.assert_allclose(path[-1, 0] - path[0, 0], -80.0 * 2 * math.tan(0.01), rtol=1e-6)
    np.testing.assert_allclose(path[:, 1], 23.5, atol=1e-9)
