"""MGV fields against hand projections of 3D points (scipy rotations, OpenCV distortion)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.motion import (
    MGV_CHANNELS,
    CameraModel,
    FrameMotion,
    ImuSamples,
    blur_extent_px,
    error_bound,
    frame_motion,
    mgv_field,
)
from eggnet_ros.motion.mgv import blur_extent_coarse, interpolation_weights, mgv_coarse, upsample_mgv

F = 500.0
K = np.array([[F, 0.0, 160.0], [0.0, F, 120.0], [0.0, 0.0, 1.0]])
CRIT = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)


def _imu(rate, t_end: float = 1.0, hz: float = 200.0) -> ImuSamples:
    t = np.arange(0.0, t_end, 1.0 / hz)
    w = np.array([rate(x) for x in t], dtype=float)
    return ImuSamples(t, w)


def _motion(imu: ImuSamples, height: int, exp: float = 0.02, readout: float = 0.0, n: int = 13, n_rows=None):
    cfg = MotionConfig(timing=ExposureTiming(exp, "middle", 0.0, readout), n_samples=n)
    return frame_motion(imu, 0.5, height, cfg, n_rows=n_rows)


def _hand_mgv(uv: np.ndarray, rots: np.ndarray, Kmat: np.ndarray) -> np.ndarray:
    """Back-project pixels to 3D points, rotate them with each R_i, project through K by hand."""
    P = np.column_stack([uv, np.ones(len(uv))]) @ np.linalg.inv(Kmat).T  # (M, 3)
    moved = np.einsum("nab,mb->nma", rots, P)
    proj = np.stack(
        [
            Kmat[0, 0] * moved[..., 0] / moved[..., 2] + Kmat[0, 2],
            Kmat[1, 1] * moved[..., 1] / moved[..., 2] + Kmat[1, 2],
        ],
        -1,
    )
    d = proj - uv[None]
    return np.concatenate([d[0], d[-1], d.mean(0)], axis=1)  # (M, 6)


def _pixels(field: np.ndarray, uv: np.ndarray) -> np.ndarray:
    return field[:, uv[:, 1].astype(int), uv[:, 0].astype(int)].T


def _grid_pixels(w: int, h: int, step: int = 7) -> np.ndarray:
    uu, vv = np.meshgrid(np.r_[0:w:step, w - 1], np.r_[0:h:step, h - 1])
    return np.column_stack([uu.ravel(), vv.ravel()]).astype(float)


def test_channel_contract() -> None:
    assert MGV_CHANNELS == ("pre_dx", "pre_dy", "pro_dx", "pro_dy", "centroid_dx", "centroid_dy")


def test_pure_yaw_closed_form_and_sign() -> None:
    w = 1.5  # rad/s about +y (down): the forward axis turns right, the camera yaws right
    m = _motion(_imu(lambda t: [0.0, w, 0.0]), 240, exp=0.02)
    cam = CameraModel(320, 240, K)
    field = mgv_field(m, cam, grid_step=1)
    theta = w * 0.01  # centre -> end
    # at the principal point the displacement is f tan(w t); the scene moves left as we yaw right
    np.testing.assert_allclose(
        field[:, 120, 160], [F * np.tan(theta), 0, -F * np.tan(theta), 0, 0, 0], atol=1e-4
    )
    assert np.all(field[2] < 0) and np.all(field[0] > 0)
    # along the horizon: u' = cx + f tan(atan((u - cx) / f) - theta)
    u = np.arange(320.0)
    np.testing.assert_allclose(
        field[2, 120], 160 + F * np.tan(np.arctan((u - 160) / F) - theta) - u, atol=1e-4
    )


def test_pitch_up_moves_scene_down() -> None:
    # +x rotation turns the forward axis towards -y (up): the scene moves down at the end
    field = mgv_field(_motion(_imu(lambda t: [1.0, 0.0, 0.0]), 240), CameraModel(320, 240, K))
    assert np.all(field[3] > 0) and np.all(field[1] < 0)


@pytest.mark.parametrize("grid_step", [1, None])
def test_global_shutter_matches_hand_projection(grid_step) -> None:
    def rate(t):
        return [2.0 * np.sin(40 * t), 1.5 + 30 * t, -3.0 * np.cos(25 * t)]  # includes roll

    imu = _imu(rate)
    m = _motion(imu, 240, exp=0.03, n=13)

    def lin(t):  # the gyro model: linear between the 200 Hz samples
        return np.array([np.interp(t, imu.t, imu.omega[:, k]) for k in range(3)])

    # independent rotations: no closed form for a non-commuting rate, so compose many tiny
    # scipy steps from the exposure centre
    times = m.times[0]
    tc = times[6]
    rots = []
    for ti in times:
        steps = np.linspace(tc, ti, 400)
        Q = Rotation.identity()
        for a, b in itertools.pairwise(steps):
            Q = Q * Rotation.from_rotvec(lin(0.5 * (a + b)) * (b - a))
        rots.append(Q.inv().as_matrix())  # R_i = (C_c^T C_i)^T
    ref = _hand_mgv(_grid_pixels(320, 240), np.array(rots), K)
    got = _pixels(mgv_field(m, CameraModel(320, 240, K), grid_step=grid_step), _grid_pixels(320, 240))
    assert np.abs(ref).max() > 5.0
    np.testing.assert_allclose(got, ref, atol=1e-3 if grid_step == 1 else 0.02)


def test_exact_and_interpolated_fields_agree_within_tolerance() -> None:
    rng = np.random.default_rng(3)
    for trial in range(3):
        base = rng.normal(scale=3.0, size=3)
        m = _motion(_imu(lambda t, b=base: b + 10 * np.sin(30 * t)), 250, exp=0.03, n=13)
        cam = CameraModel(333, 250, K)
        exact = mgv_field(m, cam, grid_step=1)
        for tol in (0.05, 0.01):
            approx = mgv_field(m, cam, tolerance_px=tol)
            assert np.abs(approx - exact).max() <= tol, trial
        forced = mgv_field(m, cam, grid_step=16)
        # the error estimate is honest for a forced coarse grid too
        from eggnet_ros.motion.mgv import _cell_centres, _evaluate

        coarse = _evaluate(m, cam, _cell_centres(333, 21), _cell_centres(250, 16))
        assert np.abs(forced - exact).max() <= 1.05 * error_bound(coarse) + 1e-4


def test_rolling_shutter_rows_use_their_own_windows() -> None:
    t_ramp = 40.0  # yaw rate 2 + 40 t rad/s: every row sees a different rotation
    imu = _imu(lambda t: [0.0, 2.0 + t_ramp * t, 0.0])
    readout, exp, H = 0.03, 0.01, 240
    m = _motion(imu, H, exp=exp, readout=readout, n=9)
    cam = CameraModel(320, H, K)
    uv = _grid_pixels(320, H, step=11)
    start = 0.5 - (readout + exp) / 2
    rows_ref = []
    for u, v in uv:
        ts = start + v * readout / H + np.linspace(0, exp, 9)
        tc = ts[4]
        ang = 2.0 * (ts - tc) + t_ramp / 2 * (ts**2 - tc**2)
        rots = Rotation.from_rotvec(-ang[:, None] * [0, 1, 0]).as_matrix()
        rows_ref.append(_hand_mgv(np.array([[u, v]]), rots, K)[0])
    ref = np.array(rows_ref)
    for step in (1, None):
        got = _pixels(mgv_field(m, cam, grid_step=step), uv)
        np.testing.assert_allclose(got, ref, atol=0.02 if step is None else 1e-4)
    # rows do differ (the test would not notice a global-shutter shortcut otherwise)
    assert np.ptp(ref[:, 2]) > 0.5


def test_resized_camera_scales_field() -> None:
    imu = _imu(lambda t: [1.0, -2.0, 3.0 + 20 * t])
    m = _motion(imu, 240, readout=0.02)
    cam = CameraModel(330, 240, K)
    big = mgv_field(m, cam, grid_step=1)
    small = mgv_field(m, cam.resized(110, 80), grid_step=1)
    # pixel u' of a 3x smaller image sits at full-res 3u' + 1 and displacements shrink 3x
    np.testing.assert_allclose(small, big[:, 1::3, 1::3] / 3.0, atol=2e-4)


@pytest.mark.parametrize(
    ("model", "D"),
    [
        ("plumb_bob", [-0.3, 0.1, 0.001, -0.002, 0.0]),
        ("rational_polynomial", [0.4, -0.2, 0.001, 0.0005, 0.05, 0.7, -0.1, 0.08]),
        ("equidistant", [-0.02, 0.015, -0.008, 0.002]),
    ],
)
def test_distorted_field_matches_opencv_reference(model: str, D) -> None:
    D = np.asarray(D, float)
    w = np.array([1.0, -2.5, 1.5])
    m = _motion(_imu(lambda t: w), 240, exp=0.03, n=7)
    cam = CameraModel(320, 240, K, model, D)
    uv = _grid_pixels(320, 240, step=13)
    pts = uv.reshape(-1, 1, 2)
    fisheye = model == "equidistant"
    rays = (
        cv2.fisheye.undistortPoints(pts, K, D, criteria=CRIT)
        if fisheye
        else cv2.undistortPoints(pts, K, D, criteria=CRIT)
    ).reshape(-1, 2)
    rays = np.column_stack([rays, np.ones(len(rays))])
    proj = cv2.fisheye.projectPoints if fisheye else cv2.projectPoints
    dts = m.times[0] - m.times[0, 3]
    tracks = []
    for dt in dts:
        moved = Rotation.from_rotvec(-dt * w).apply(rays)
        out = proj(moved.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, D)[0].reshape(-1, 2)
        tracks.append(out - uv)
    tracks = np.array(tracks)
    ref = np.concatenate([tracks[0], tracks[-1], tracks.mean(0)], axis=1)
    # the distortion must matter, or the test would not distinguish the models
    assert np.abs(ref - _hand_mgv(uv, Rotation.from_rotvec(-dts[:, None] * w).as_matrix(), K)).max() > 0.5
    for step in (1, None):
        got = _pixels(mgv_field(m, cam, grid_step=step), uv)
        np.testing.assert_allclose(got, ref, atol=2e-4 if step == 1 else 0.02)


def test_out_buffer_and_validation() -> None:
    m = _motion(_imu(lambda t: [0.3, 0.2, 0.1]), 240)
    cam = CameraModel(320, 240, K)
    buf = np.empty((6, 240, 320), np.float32)
    res = mgv_field(m, cam, out=buf)
    assert res is buf and res.dtype == np.float32
    np.testing.assert_array_equal(res, mgv_field(m, cam))
    with pytest.raises(ValueError):
        mgv_field(m, cam, out=np.empty((6, 240, 321), np.float32))
    with pytest.raises(ValueError):
        FrameMotion(rows=[0.5], times=np.zeros((1, 4)), rotations=np.zeros((1, 4, 3, 3)))


def test_blur_extent_is_robust_streak_length() -> None:
    mgv = np.zeros((6, 40, 40), np.float32)
    mgv[0], mgv[2] = 2.0, -1.0  # streak length 3 everywhere ...
    mgv[3, :2, :2] = 400.0  # ... but for a tiny corner outlier
    assert blur_extent_px(mgv) == pytest.approx(3.0)
    with pytest.raises(ValueError):
        blur_extent_px(np.zeros((2, 4, 4)))


def test_pinhole_bound_is_rigorous_and_not_vacuous() -> None:
    from eggnet_ros.motion import pinhole_error_coefficient

    rng = np.random.default_rng(7)
    cam = CameraModel(300, 200, np.array([[260.0, 0, 140.3], [0, 255.0, 104.9], [0, 0, 1]]))
    for _ in range(4):
        w = rng.normal(scale=4.0, size=3)  # strong, with roll: up to ~0.1 rad over the exposure
        m = _motion(_imu(lambda t, w=w: w + 5 * np.sin(20 * t)), 200, exp=0.04, n=9)
        exact = mgv_field(m, cam, grid_step=1)
        coef = pinhole_error_coefficient(m, cam)
        for step in (8, 16, 25):
            err = np.abs(mgv_field(m, cam, grid_step=step) - exact).max()
            assert err <= coef * step**2 + 1e-4
            assert err >= 0.1 * coef * step**2  # tight within a factor of 10 (measured ~2.5)


def test_coarse_grid_samples_are_exact_mgvs_at_their_positions() -> None:
    # The grid's samples sit at non-integer cell centres; each must be the hand projection there.
    m = _motion(_imu(lambda t: [1.2, -2.0, 3.0]), 240, exp=0.03, n=13)
    coarse = mgv_coarse(m, CameraModel(320, 240, K), grid_step=16)
    assert not coarse.exact and coarse.values.shape == (6, 15, 20)
    np.testing.assert_allclose(coarse.xs, (np.arange(20) + 0.5) * 16 - 0.5)  # cv2.resize's map
    uu, vv = np.meshgrid(coarse.xs, coarse.ys)
    uv = np.column_stack([uu.ravel(), vv.ravel()])
    dts = m.times[0] - m.times[0, 6]
    rots = np.array([Rotation.from_rotvec(-dt * np.array([1.2, -2.0, 3.0])).as_matrix() for dt in dts])
    got = coarse.values.reshape(6, -1).T
    np.testing.assert_allclose(got, _hand_mgv(uv, rots, K), atol=1e-3)


def test_upsampled_coarse_grid_is_the_field() -> None:
    m = _motion(_imu(lambda t: [0.5, 1.5, -2.0 + 20 * t]), 250, readout=0.02)
    cam = CameraModel(333, 250, K)
    for step in (None, 8, 1):
        coarse = mgv_coarse(m, cam, grid_step=step)
        assert coarse.exact == (step == 1)
        np.testing.assert_array_equal(upsample_mgv(coarse), mgv_field(m, cam, grid_step=step))
    with pytest.raises(ValueError):
        mgv_coarse(m, cam, grid_step=2)


def test_interpolation_weights_match_linear_interpolation_and_extrapolation() -> None:
    centres = np.array([1.5, 5.5, 9.5, 13.5])
    values = np.array([2.0, -1.0, 4.0, 0.5])
    pos = np.linspace(-2.0, 16.0, 37)
    got = interpolation_weights(centres, pos) @ values
    inside = (pos >= centres[0]) & (pos <= centres[-1])
    np.testing.assert_allclose(got[inside], np.interp(pos[inside], centres, values), atol=1e-12)
    # outside: the first/last segment's line, by hand
    left, right = pos < centres[0], pos > centres[-1]
    np.testing.assert_allclose(got[left], 2.0 + (pos[left] - 1.5) * (-3.0 / 4.0), atol=1e-12)
    np.testing.assert_allclose(got[right], 0.5 + (pos[right] - 13.5) * (-3.5 / 4.0), atol=1e-12)


#: Stated accuracy of blur_extent_coarse against the full-field blur_extent_px.
EXTENT_REL, EXTENT_ABS = 0.02, 0.05


@pytest.mark.parametrize("size", [(640, 480), (333, 250)])
def test_blur_extent_from_the_grid_matches_the_full_field(size) -> None:
    # Random shakes (constant + oscillating rates, roll included), global and rolling shutter,
    # pinhole and distorted lenses: the sparse percentile stays within 2 % + 0.05 px (measured
    # <= 0.8 %: both are percentiles of the same smooth field over different pixel samples).
    W, H = size
    rng = np.random.default_rng(11)
    worst = 0.0
    for trial in range(8):
        f = rng.uniform(0.6, 1.2) * W
        Kt = np.array([[f, 0.0, W / 2 + rng.normal(scale=5)], [0.0, f, H / 2], [0.0, 0.0, 1.0]])
        cam = (CameraModel(W, H, Kt, "plumb_bob", [rng.uniform(-0.25, 0.05), 0.03, 0, 0, 0])
               if trial % 3 == 0 else CameraModel(W, H, Kt))
        base, amp = rng.normal(scale=1.5, size=3), rng.normal(scale=3.0, size=3)
        readout = 0.03 if trial % 2 else 0.0
        m = _motion(_imu(lambda t, b=base, a=amp: b + a * np.sin(30 * t)), H,
                    exp=rng.uniform(0.005, 0.04), readout=readout, n=9)
        full = blur_extent_px(mgv_field(m, cam))
        got = blur_extent_coarse(mgv_coarse(m, cam))
        assert full > 0.5
        assert abs(got - full) <= EXTENT_REL * full + EXTENT_ABS, (trial, got, full)
        worst = max(worst, abs(got - full) / full)
    assert worst > 0  # the grid path is really a different computation


def test_blur_extent_from_an_exact_grid_is_the_full_field_value() -> None:
    m = _motion(_imu(lambda t: [0.4, 0.9, 0.2]), 12)
    cam = CameraModel(14, 12, np.array([[20.0, 0, 7.0], [0, 20.0, 6.0], [0, 0, 1]]))
    coarse = mgv_coarse(m, cam)
    assert coarse.exact  # too small for a grid
    assert blur_extent_coarse(coarse) == blur_extent_px(mgv_field(m, cam))


def test_coarse_grid_validation_and_non_finite_extent() -> None:
    from eggnet_ros.motion.mgv import CoarseMGV

    with pytest.raises(ValueError):
        CoarseMGV(np.zeros((4, 3, 3), np.float32), 30, 30)
    with pytest.raises(ValueError):
        CoarseMGV(np.zeros((6, 1, 3), np.float32), 30, 30)  # one row cannot be interpolated
    values = np.zeros((6, 3, 4), np.float32)
    values[2] = 3.0  # pro - pre = 3 px everywhere ...
    grid = CoarseMGV(values, 40, 30)
    np.testing.assert_allclose(grid.xs, [4.5, 14.5, 24.5, 34.5])
    assert blur_extent_coarse(grid) == pytest.approx(3.0)
    values[0, 1, 1] = np.nan  # ... a NaN anywhere must not be hidden by the percentile
    assert np.isnan(blur_extent_coarse(grid))


@pytest.mark.parametrize("distorted", [False, True])
def test_start_step_hint_keeps_the_tolerance(distorted: bool) -> None:
    # A hint too fine, about right, or too coarse: the grid adapts and the bound still holds.
    m = _motion(_imu(lambda t: [1.0, -2.0, 1.5 + 30 * t]), 250, exp=0.03, readout=0.02, n=9)
    lens = ("plumb_bob", [-0.2, 0.05, 0, 0, 0]) if distorted else ()
    cam = CameraModel(333, 250, K, *lens)
    exact = mgv_field(m, cam, grid_step=1)
    reference = mgv_coarse(m, cam)
    steps = {}
    for hint in (4.0, 0.5 * reference.step, reference.step, 3 * reference.step, 500.0, float("nan")):
        coarse = mgv_coarse(m, cam, tolerance_px=0.02, start_step=hint)
        assert np.abs(upsample_mgv(coarse) - exact).max() <= 0.02, hint
        steps[hint] = coarse.step
    assert steps[4.0] > 1.25 * 4.0  # a needlessly fine hint is coarsened
    assert steps[reference.step] == reference.step  # a good hint is taken as is
