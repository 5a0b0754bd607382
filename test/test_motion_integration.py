"""Gyro integration on SO(3) against independent references (scipy Rotation, an ODE solver)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.spatial.transform import Rotation

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.motion import ImuSamples, MotionError, exp_so3, frame_motion, log_so3

H = 480


def _config(exp: float = 0.03, readout: float = 0.0, n: int = 13, **kw) -> MotionConfig:
    return MotionConfig(timing=ExposureTiming(exp, "middle", 0.0, readout), n_samples=n, **kw)


def _reference_rotations(imu: ImuSamples, times: np.ndarray, t_start: float) -> np.ndarray:
    """R_i = C_i^T C_c by solving dC/dt = C [w(t)]x (w piecewise linear) with an RK solver.

    ``times`` (n,) with the centre at n // 2. Independent of the code under test: a generic ODE
    solver on the 9 matrix entries, stepping no further than IMU knots.
    """

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        w = np.array([np.interp(t, imu.t, imu.omega[:, k]) for k in range(3)])
        C = y.reshape(3, 3)
        wx = np.array([[0, -w[2], w[1]], [w[2], 0, -w[0]], [-w[1], w[0], 0]])
        return (C @ wx).ravel()

    sol = solve_ivp(
        rhs, (t_start, times[-1]), np.eye(3).ravel(), t_eval=times, rtol=1e-11, atol=1e-12, max_step=5e-4
    )
    C = sol.y.T.reshape(-1, 3, 3)
    Cc = C[len(times) // 2]
    return np.swapaxes(C, -1, -2) @ Cc


def test_so3_maps_match_scipy() -> None:
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(50, 3))
    v = (
        axes
        / np.linalg.norm(axes, axis=1, keepdims=True)
        * np.array([1e-7, 1e-3, 0.5, 2.0, 3.1]).repeat(10)[:, None]
    )
    np.testing.assert_allclose(exp_so3(v), Rotation.from_rotvec(v).as_matrix(), atol=1e-13)
    np.testing.assert_allclose(log_so3(Rotation.from_rotvec(v).as_matrix()), v, atol=1e-9)
    near_pi = np.array([[0.0, 0.0, np.pi - 1e-5], [0.6, -0.8, 0.0]]) * [[1], [np.pi - 2e-4]]
    np.testing.assert_allclose(log_so3(Rotation.from_rotvec(near_pi).as_matrix()), near_pi, atol=1e-6)


def test_constant_rate_matches_scipy_closed_form() -> None:
    w = np.array([0.7, -1.3, 2.1])
    t = np.arange(0.0, 1.0, 0.01)
    imu = ImuSamples(t, np.tile(w, (t.size, 1)))
    m = frame_motion(imu, 0.5, H, _config())
    dt = m.times[0] - m.times[0, 6]
    # C_i = C_c exp(dt [w]x)  ->  R_i = C_i^T C_c = exp(-dt [w]x)
    ref = Rotation.from_rotvec(-dt[:, None] * w).as_matrix()
    np.testing.assert_allclose(m.rotations[0], ref, atol=1e-12)
    np.testing.assert_allclose(m.times[0, 6], 0.5)


def test_time_varying_noncommuting_rate_matches_ode_solver() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(0.0, 0.2, 0.01)  # sparse 100 Hz gyro: only 3-4 samples inside the exposure
    w = rng.normal(scale=4.0, size=(t.size, 3))
    imu = ImuSamples(t, w)
    m = frame_motion(imu, 0.1234, H, _config(exp=0.04, n=13))
    ref = _reference_rotations(imu, m.times[0], m.times[0, 0])
    angle_err = np.linalg.norm(
        Rotation.from_matrix(m.rotations[0] @ np.swapaxes(ref, -1, -2)).as_rotvec(), axis=1
    )
    assert np.max(angle_err) < 1e-8
    # and the motion is far from trivial, so the comparison has teeth
    assert np.max(np.linalg.norm(Rotation.from_matrix(ref).as_rotvec(), axis=1)) > 0.03


def test_camera_imu_rotation_is_applied() -> None:
    t = np.arange(0.0, 1.0, 0.01)
    w_imu = np.array([0.0, 0.0, 3.0])
    r_cam_imu = Rotation.from_euler("xyz", [90, 0, 30], degrees=True).as_matrix()
    imu = ImuSamples(t, np.tile(w_imu, (t.size, 1)))
    m = frame_motion(imu, 0.5, H, _config(rotation_cam_imu=tuple(r_cam_imu.ravel())))
    dt = m.times[0] - 0.5
    ref = Rotation.from_rotvec(-dt[:, None] * (r_cam_imu @ w_imu)).as_matrix()
    np.testing.assert_allclose(m.rotations[0], ref, atol=1e-12)


def test_rolling_shutter_rows_use_their_own_window() -> None:
    t = np.arange(0.0, 1.0, 0.005)
    wy = 2.0 + 40.0 * t  # yaw rate ramp: each row sees a different rotation
    imu = ImuSamples(t, np.column_stack([np.zeros_like(t), wy, np.zeros_like(t)]))
    readout, exp = 0.03, 0.01
    m = frame_motion(imu, 0.5, H, _config(exp=exp, readout=readout), n_rows=5)
    assert m.rotations.shape == (5, 13, 3, 3)
    for r in range(5):
        tc = m.times[r, 6]
        # single axis: angle = integral of the rate from tc to t_i, closed form for a ramp
        ang = 2.0 * (m.times[r] - tc) + 20.0 * (m.times[r] ** 2 - tc**2)
        np.testing.assert_allclose(
            m.rotations[r], Rotation.from_rotvec(-ang[:, None] * [0, 1, 0]).as_matrix(), atol=1e-10
        )
    # interpolation between evaluated rows vs evaluating every row of a small sensor
    full = frame_motion(imu, 0.5, 40, _config(exp=exp, readout=readout), n_rows=40)
    coarse = frame_motion(imu, 0.5, 40, _config(exp=exp, readout=readout), n_rows=5)
    np.testing.assert_allclose(coarse.rotations_at_rows(full.rows), full.rotations, atol=1e-9)


def test_missing_coverage_and_gaps_raise_motion_error() -> None:
    t = np.arange(0.0, 1.0, 0.01)
    imu = ImuSamples(t, np.zeros((t.size, 3)))
    with pytest.raises(MotionError, match="cover"):
        frame_motion(imu, 0.995, H, _config())
    holey = ImuSamples(np.concatenate([t[:50], t[60:]]), np.zeros((90, 3)))
    with pytest.raises(MotionError, match="gap"):
        frame_motion(holey, 0.55, H, _config(max_imu_gap=0.05))
    with pytest.raises(ValueError):
        frame_motion(imu, 0.5, H, _config(n=12))


def test_rolling_shutter_row_interpolation_error_within_documented_bound() -> None:
    t = np.arange(0.0, 1.0, 0.0025)
    amp, freq = 3.0, 2 * np.pi * 8.0  # 3 rad/s at 8 Hz: peak angular acceleration 151 rad/s^2
    w = np.column_stack([amp * np.sin(freq * t), amp * np.cos(freq * t + 0.3), 0.5 * np.sin(freq * t)])
    imu = ImuSamples(t, w)
    readout, exp, height, n_rows = 0.03, 0.02, 200, 9
    cfg = _config(exp=exp, readout=readout)
    full = frame_motion(imu, 0.5, height, cfg, n_rows=height)
    coarse = frame_motion(imu, 0.5, height, cfg, n_rows=n_rows)
    rel = np.swapaxes(coarse.rotations_at_rows(full.rows), -1, -2) @ full.rotations
    err = np.linalg.norm(Rotation.from_matrix(rel.reshape(-1, 3, 3)).as_rotvec(), axis=1).max()
    dt = readout * (height - 1) / height / (n_rows - 1)
    max_acc = np.abs(np.diff(w, axis=0) / np.diff(t)[:, None]).max() * np.sqrt(3)
    bound = dt**2 / 8 * 2 * max_acc
    assert 0.05 * bound < err <= bound  # the bound is tight enough to be informative
