"""The vectorised gyro integration against a plain per-sample loop written here.

The loop follows the algorithm the trajectory module documents, one step at a time with scipy's
rotation exponential: knots at the frame span's bounds, at every IMU stamp strictly inside and
at uniform sub-steps of at most 1 ms; the rate linear between IMU samples (np.interp); the
fourth-order Magnus step ``h (w0 + w1) / 2 + h^2 / 12 (w0 x w1)`` multiplied on the right in
time order; a sample time reached by one partial step from the last knot at or before it. The
vectorised code (interval expansion with np.repeat, a prefix-scan product, batched exponentials)
must agree to rounding, ~1e-12 rad, including rolling-shutter rows, irregular IMU stamps and
stamps falling exactly on exposure bounds and sample times.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.motion import ImuSamples, exposure_window, frame_motion, orientation_track

ATOL = 1e-12


def _rate(imu: ImuSamples, t: float) -> np.ndarray:
    return np.array([np.interp(t, imu.t, imu.omega[:, k]) for k in range(3)])


def _step(imu: ImuSamples, ta: float, tb: float) -> np.ndarray:
    h = tb - ta
    w0, w1 = _rate(imu, ta), _rate(imu, tb)
    omega = h * (w0 + w1) / 2 + h * h / 12 * np.cross(w0, w1)
    return Rotation.from_rotvec(omega).as_matrix()


def _reference_track(imu: ImuSamples, t0: float, t1: float) -> tuple[list[float], list[np.ndarray]]:
    """Knots and ``Q(t) = C(t0)^T C(t)`` at them, one step per loop iteration."""
    knots = [t0] + [float(s) for s in imu.t if t0 < s < t1] + [t1]
    grid, Q = [t0], [np.eye(3)]
    for a, b in itertools.pairwise(knots):
        k = max(math.ceil((b - a) / 1e-3), 1)
        for i in range(1, k + 1):
            tb = b if i == k else a + (b - a) * i / k
            Q.append(Q[-1] @ _step(imu, grid[-1], tb))
            grid.append(tb)
    return grid, Q


def _reference_at(imu: ImuSamples, grid: list[float], Q: list[np.ndarray], t: float) -> np.ndarray:
    k = max(i for i, g in enumerate(grid) if g <= t)
    return Q[k] @ _step(imu, grid[k], t)


def _reference_frame(
    imu: ImuSamples, stamp: float, height: int, cfg: MotionConfig, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(times (R, n), rotations (R, n, 3, 3)) of every row and sample, sample by sample."""
    timing = cfg.timing
    span = timing.readout_time + timing.exposure_time
    back = {"start": 0.0, "middle": span / 2, "end": span}[timing.stamp_convention]
    start = stamp - back + timing.time_offset
    R_ci = np.asarray(cfg.rotation_cam_imu).reshape(3, 3)
    cam = ImuSamples(imu.t, imu.omega @ R_ci.T)
    grid, Q = _reference_track(cam, start, start + span)
    rows = [(height - 1) / 2] if timing.readout_time == 0 else np.linspace(0, height - 1, n_rows)
    n = cfg.n_samples
    times = np.empty((len(rows), n))
    rot = np.empty((len(rows), n, 3, 3))
    for r, row in enumerate(rows):
        row_start = start + row * timing.readout_time / height
        for i in range(n):
            times[r, i] = row_start + i / (n - 1) * timing.exposure_time
        Qc = _reference_at(cam, grid, Q, times[r, n // 2])
        for i in range(n):
            rot[r, i] = _reference_at(cam, grid, Q, times[r, i]).T @ Qc
    return times, rot


def _irregular_imu(rng: np.random.Generator, t_end: float, extra: list[float] = ()) -> ImuSamples:
    """~200 Hz gyro with jittered spacing (1-9 ms), a fast non-commuting shake, ``extra`` stamps."""
    t = np.cumsum(rng.uniform(0.001, 0.009, size=int(t_end / 0.004) + 10))
    t = np.unique(np.concatenate([t[t < t_end], extra]))
    w = np.column_stack([3 * np.sin(40 * t + 1), 2 * np.cos(27 * t), 1.5 * np.sin(61 * t)])
    return ImuSamples(t, w + rng.normal(scale=0.5, size=w.shape))


def _angle(A: np.ndarray, B: np.ndarray) -> float:
    rel = (np.swapaxes(A, -1, -2) @ B).reshape(-1, 3, 3)
    return float(np.linalg.norm(Rotation.from_matrix(rel).as_rotvec(), axis=1).max())


@pytest.mark.parametrize(
    ("readout", "convention", "n", "n_rows"),
    [(0.0, "middle", 13, 1), (0.03, "end", 13, 7), (0.0244, "start", 5, 4), (0.03, "middle", 41, 3)],
)
def test_frame_motion_matches_per_sample_loop(readout: float, convention: str, n: int, n_rows: int) -> None:
    rng = np.random.default_rng(int(readout * 1e4) + n)
    rot_ci = Rotation.from_euler("xyz", [80, -10, 35], degrees=True).as_matrix()
    cfg = MotionConfig(
        timing=ExposureTiming(0.018, convention, -0.0043, readout),
        n_samples=n,
        rotation_cam_imu=tuple(rot_ci.ravel()),
        max_imu_gap=0.02,
    )
    imu = _irregular_imu(rng, 1.0)
    m = frame_motion(imu, 0.5, 480, cfg, n_rows=n_rows if readout else None)
    times, ref = _reference_frame(imu, 0.5, 480, cfg, n_rows)
    np.testing.assert_allclose(m.times, times, rtol=0, atol=ATOL)
    assert np.abs(m.rotations - ref).max() < ATOL
    assert _angle(m.rotations, ref) < ATOL
    assert _angle(ref[:, :1], np.broadcast_to(np.eye(3), ref[:, :1].shape)) > 0.01  # real motion


def test_imu_stamps_exactly_on_bounds_and_sample_times() -> None:
    """Stamps at the frame span's bounds (the last one ending the stream), at a row's first,
    centre and last sample: zero-length partial steps, knots coinciding with sample times and
    the window's bracketing samples sitting exactly on the bounds."""
    height, n, n_rows = 300, 9, 5
    cfg = MotionConfig(timing=ExposureTiming(0.012, "start", 0.0, 0.02), n_samples=n, max_imu_gap=0.02)
    window = exposure_window(0.4, cfg.timing, height)
    rows = np.linspace(0.0, height - 1.0, n_rows)
    times = np.asarray(window.row_start(rows))[:, None] + np.linspace(0.0, 1.0, n) * window.exposure_time
    on = [window.start, window.end, times[2, 0], times[2, n // 2], times[3, -1], times[0, 3]]
    rng = np.random.default_rng(5)
    imu = _irregular_imu(rng, window.end, extra=on)
    assert imu.t[-1] == window.end and window.start in imu.t
    m = frame_motion(imu, 0.4, height, cfg, n_rows=n_rows)
    np.testing.assert_array_equal(m.times, times)
    _, ref = _reference_frame(imu, 0.4, height, cfg, n_rows)
    assert np.abs(m.rotations - ref).max() < ATOL


def test_orientation_track_matches_loop_over_many_steps() -> None:
    """Half a second of irregular gyro (~560 knots): the prefix-scan product keeps up with the
    sequential one."""
    rng = np.random.default_rng(11)
    imu = _irregular_imu(rng, 1.0)
    grid, Q = orientation_track(imu, 0.2137, 0.7301)
    ref_grid, ref_Q = _reference_track(imu, 0.2137, 0.7301)
    assert len(grid) == len(ref_grid) > 500
    np.testing.assert_allclose(grid, ref_grid, rtol=0, atol=1e-15)
    assert np.abs(Q - np.array(ref_Q)).max() < ATOL
    assert _angle(Q[-1:], np.eye(3)[None]) > 0.1


def test_rows_between_evaluated_ones_interpolate_the_rotation_vector() -> None:
    """rotations_at_rows against a scipy log/exp interpolation, for a few rows (the logarithms of
    just the needed intervals), then for many (all intervals, cached), then a few again."""
    cfg = MotionConfig(timing=ExposureTiming(0.015, "middle", 0.0, 0.03), n_samples=7, max_imu_gap=0.02)
    m = frame_motion(_irregular_imu(np.random.default_rng(3), 1.0), 0.5, 400, cfg, n_rows=17)

    def reference(rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), 7, 3, 3))
        for j, row in enumerate(rows):
            pos = float(np.interp(row, m.rows, np.arange(len(m.rows))))
            a = min(int(pos), len(m.rows) - 2)
            for i in range(7):
                Ra, Rb = m.rotations[a, i], m.rotations[a + 1, i]
                delta = Rotation.from_matrix(Ra.T @ Rb).as_rotvec()
                out[j, i] = Ra @ Rotation.from_rotvec((pos - a) * delta).as_matrix()
        return out

    few = np.array([0.0, 0.13, 0.5004, 0.91, 1.0])
    many = np.linspace(0.0, 1.0, 23)
    for rows in (few, many, few[::-1]):
        assert np.abs(m.rotations_at_rows(rows) - reference(rows)).max() < ATOL
