"""Blur synthesis: geometry against hand computations, linear light, noise, rolling shutter, MGVs.

References are independent of the code under test: streak endpoints from f * tan(omega t),
the sRGB curve from its IEC 61966-2-1 formula, noise variance from the Poisson-Gaussian model,
and MGVs from eggnet_ros.motion on hand-built gyro traces.
"""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pytest

from eggnet_ros.config import ExposureTiming
from eggnet_ros.data.sensor import add_sensor_noise, linear_to_srgb, srgb_to_linear
from eggnet_ros.data.synth import (
    SynthConfig,
    compute_mgv,
    generate_pair,
    render_blur,
    render_pair,
    sample_scene,
    scene_from_motion,
    synthesize_pair,
)
from eggnet_ros.motion import CameraModel, ImuSamples, exposure_window

F = 200.0
SIZE = 64
C = (SIZE - 1) / 2


def _camera(size: int = SIZE, f: float = F) -> CameraModel:
    c = (size - 1) / 2
    return CameraModel(size, size, np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]]))


def _constant_rate(omega: tuple[float, float, float], t1: float = 0.2, rate: float = 1000.0) -> ImuSamples:
    t = np.arange(0.0, t1, 1.0 / rate)
    return ImuSamples(t, np.tile(np.asarray(omega, float), (t.size, 1)))


def _clean(mode: str = "rgb", **kw) -> SynthConfig:
    """Eval preset with no sensor noise and no quantisation: only the geometry remains."""
    return SynthConfig.eval(mode=mode, noise_prob=0.0, quantize_bits=None, **kw)


def _srgb_encode_reference(y: float) -> float:
    return 12.92 * y if y <= 0.0031308 else 1.055 * y ** (1 / 2.4) - 0.055


# ---- geometry -------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1])
def test_point_light_streak_matches_f_tan_omega_t(axis: int) -> None:
    """A single bright pixel under a constant rate becomes a streak of +-f tan(omega T / 2)."""
    omega_rate, exposure = 1.0, 0.04  # rad/s, s -> half length f tan(0.02) = 4.0 px
    omega = [0.0, 0.0, 0.0]
    omega[axis] = omega_rate
    imu = _constant_rate(tuple(omega))
    timing = ExposureTiming(exposure_time=exposure)
    scene = scene_from_motion(_camera(), timing, 0.1, imu)
    sharp = np.zeros((SIZE, SIZE, 3), np.float32)
    centre = int(C)  # a pixel near the principal point
    sharp[centre, centre] = 1.0
    blurred, target = render_blur(scene, srgb_to_linear(sharp), (0, 0))

    energy = blurred[..., 0]
    half = F * math.tan(omega_rate * exposure / 2)
    # Rotation about y (yaw) moves the scene along -x, about x (pitch) along +y (x(t) = R x_c).
    along = energy.sum(axis=0 if axis == 1 else 1)  # profile along the streak direction
    across = energy.sum(axis=1 if axis == 1 else 0)
    assert energy.sum() == pytest.approx(1.0, abs=1e-3)  # warps conserve light
    assert across[centre - 1 : centre + 2].sum() == pytest.approx(1.0, abs=1e-3)  # a 1-px-thin streak
    lit = np.flatnonzero(along > 1e-4)
    lo_expected, hi_expected = centre - half, centre + half
    assert lit.min() == pytest.approx(lo_expected, abs=1.0)
    assert lit.max() == pytest.approx(hi_expected, abs=1.0)
    # uniform brightness along the streak (constant rate): each pixel gets ~1 / (2 * half)
    inner = along[math.ceil(lo_expected) + 1 : math.floor(hi_expected)]
    assert np.allclose(inner, 1.0 / (2 * half), rtol=0.15)
    np.testing.assert_array_equal(target, srgb_to_linear(sharp))  # global shutter: target = source

    # The MGV at that pixel points to the streak's ends: pre = start, pro = end of the exposure.
    mgv = compute_mgv(imu, 0.1, timing, scene.camera, 13)[:, centre, centre]
    sign = -1.0 if axis == 1 else 1.0  # yaw: start at +x (pre), end at -x; pitch: start at -y
    d = 0 if axis == 1 else 1
    assert mgv[d] == pytest.approx(-sign * half, abs=0.02)  # pre
    assert mgv[2 + d] == pytest.approx(sign * half, abs=0.02)  # pro
    assert abs(mgv[1 - d]) < 0.02 and abs(mgv[3 - d]) < 0.02


@pytest.mark.parametrize("convention", ["start", "end"])
def test_global_shutter_target_is_the_exposure_centre_for_any_stamp_convention(convention: str) -> None:
    """A stamp at the exposure start/end must not move the target off the blur's centre.

    The source image shows the stamp instant; the target must still be the exposure centre,
    i.e. the same pair as a "middle" stamp at the centre time (hand-made motions of
    scene_from_motion use any convention; the sampled scenes always use "middle").
    """
    exposure = 0.04
    imu = _constant_rate((0.0, 1.0, 0.0))  # yaw: 4 px half-streak, the centre view is 4 px from the start
    sharp = np.zeros((SIZE, SIZE, 3), np.float32)
    centre = int(C)
    sharp[centre, centre] = 1.0
    middle = scene_from_motion(_camera(), ExposureTiming(exposure_time=exposure), 0.1, imu)
    stamp = 0.1 - exposure / 2 if convention == "start" else 0.1 + exposure / 2
    other = scene_from_motion(
        _camera(), ExposureTiming(exposure_time=exposure, stamp_convention=convention), stamp, imu
    )
    blur_m, target_m = render_blur(middle, srgb_to_linear(sharp), (0, 0))
    blur_o, target_o = render_blur(other, srgb_to_linear(sharp), (0, 0))

    # Same exposure, different reference image instant: compare where the light lands
    # relative to the target (the streak is centred on the target's point in both).
    def column_of_max(img: np.ndarray) -> float:
        profile = img[..., 0].sum(axis=0)
        return float(np.sum(profile * np.arange(SIZE)) / profile.sum())

    assert column_of_max(target_o) == pytest.approx(column_of_max(blur_o), abs=0.1)
    assert column_of_max(target_m) == pytest.approx(column_of_max(blur_m), abs=0.1)
    # ... and the stamp instant is 4 px away from it (the old target was the stamp's view)
    assert abs(column_of_max(target_o) - centre) == pytest.approx(F * math.tan(0.02), abs=0.1)
    pair = render_pair(other, sharp, np.random.default_rng(0), _clean(), (0, 0))  # the sRGB pair too
    assert column_of_max(pair.sharp) == pytest.approx(column_of_max(pair.blurred), abs=0.1)
    assert abs(column_of_max(pair.sharp) - centre) > 3.0


def test_motion_in_second_half_streaks_towards_pro_only() -> None:
    """Direction in time: a yaw that starts at the exposure centre streaks only towards -x (pro)."""
    exposure, rate = 0.04, 2.0
    t = np.arange(0.0, 0.2, 0.0005)
    omega = np.zeros((t.size, 3))
    omega[t >= 0.1, 1] = rate  # stamp (= exposure centre) is 0.1
    imu = ImuSamples(t, omega)
    timing = ExposureTiming(exposure_time=exposure)
    scene = scene_from_motion(_camera(), timing, 0.1, imu)
    sharp = np.zeros((SIZE, SIZE, 3), np.float32)
    centre = int(C)
    sharp[centre, centre] = 1.0
    blurred, _ = render_blur(scene, srgb_to_linear(sharp), (0, 0))
    lit = np.flatnonzero(blurred[..., 0].sum(axis=0) > 1e-4)
    length = F * math.tan(rate * exposure / 2)  # 8 px towards -x
    assert lit.max() <= centre + 1
    assert lit.min() == pytest.approx(centre - length, abs=1.0)
    mgv = compute_mgv(imu, 0.1, timing, scene.camera, 13)[:, centre, centre]
    # the rate ramps up over the 0.5 ms sample interval before the centre: 0.1 px of pre motion
    assert mgv[0] == pytest.approx(0.0, abs=0.15)
    assert mgv[2] == pytest.approx(-length, abs=0.15)


def test_margin_covers_every_source_pixel() -> None:
    """Dense check of the probe-based margin: no pixel at any sub-exposure instant reads beyond it."""
    cfg = SynthConfig.train("strong", rolling_shutter_prob=1.0)
    for seed in range(3):
        scene = sample_scene(np.random.default_rng(seed), cfg, 48, 40)
        window = exposure_window(scene.stamp, scene.timing, 48)
        v, u = np.mgrid[0:48, 0:40].astype(float)
        times = window.row_start(v)[..., None] + np.linspace(0, 1, 17) * window.exposure_time
        R = scene.track.relative(scene.stamp, times)  # (48, 40, 17, 3, 3)
        K = scene.camera.K
        pts = np.stack([u, v, np.ones_like(u)], -1)[:, :, None, :, None]
        src = (K @ np.swapaxes(R, -1, -2) @ np.linalg.inv(K) @ pts)[..., 0]
        shift = np.abs(src[..., :2] / src[..., 2:] - pts[..., :2, 0])
        assert shift.max() <= scene.margin - 1


# ---- linear light, noise --------------------------------------------------------------------------


def test_srgb_curve_matches_iec_formula() -> None:
    y = np.linspace(0, 1, 1001, dtype=np.float32)
    reference = np.array([_srgb_encode_reference(float(v)) for v in y])
    np.testing.assert_allclose(linear_to_srgb(y), reference, atol=2e-6)
    np.testing.assert_allclose(srgb_to_linear(linear_to_srgb(y)), y, atol=2e-6)


def test_blur_averages_in_linear_light() -> None:
    """Half the exposure on white and half on black gives linear 0.5 = sRGB 0.7354, not 0.5."""
    omega_rate, exposure = 2.0, 0.04  # streak of 2 f tan(0.04) = 16 px
    imu = _constant_rate((0.0, omega_rate, 0.0))
    timing = ExposureTiming(exposure_time=exposure)
    scene = scene_from_motion(_camera(), timing, 0.1, imu)
    m = scene.margin
    sharp = np.zeros((SIZE + 2 * m, SIZE + 2 * m, 3), np.float32)
    edge = m + SIZE // 2
    sharp[:, edge:] = 1.0  # white right half; the pixel at the edge sees both halves equally
    pair = render_pair(scene, sharp, np.random.default_rng(0), _clean(), (m, m))
    # the sample grid is symmetric about the edge between columns SIZE/2 - 1 and SIZE/2
    edge_value = 0.5 * (pair.blurred[SIZE // 2, SIZE // 2 - 1, 0] + pair.blurred[SIZE // 2, SIZE // 2, 0])
    assert edge_value == pytest.approx(_srgb_encode_reference(0.5), abs=0.02)
    assert pair.blurred[5, 2, 0] == 0.0 and pair.blurred[5, -3, 0] == pytest.approx(1.0, abs=1e-6)  # far away


def test_sensor_noise_statistics() -> None:
    """Poisson-Gaussian: variance = x / photons + read^2, mean unbiased away from clipping."""
    rng = np.random.default_rng(1)
    photons, read = 800.0, 0.01
    for level in (0.1, 0.6):
        flat = np.full((256, 256), level, np.float32)
        noisy = add_sensor_noise(flat, rng, photons, read)
        assert noisy.mean() == pytest.approx(level, abs=1e-3)
        assert noisy.var() == pytest.approx(level / photons + read**2, rel=0.05)


# ---- rolling shutter ------------------------------------------------------------------------------


def test_rolling_shutter_rows_use_their_own_window() -> None:
    """Motion that starts after row 3H/4 finished exposing blurs only the rows after it."""
    h = SIZE
    exposure, readout = 0.004, 0.04
    timing = ExposureTiming(exposure_time=exposure, readout_time=readout)
    stamp = 0.1
    window = exposure_window(stamp, timing, h)
    t_motion = float(window.row_end(3 * h // 4)) + 0.002
    t = np.arange(0.0, 0.2, 0.001)
    omega = np.zeros((t.size, 3))
    omega[t >= t_motion, 1] = 3.0  # 3 rad/s yaw -> up to f * 3 * 4 ms = 2.4 px of blur
    imu = ImuSamples(t, omega)
    scene = scene_from_motion(_camera(h), timing, stamp, imu)
    assert scene.rolling_shutter
    m = scene.margin
    x = np.arange(h + 2 * m)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * x / 7.0)  # vertical stripes: horizontal blur shows
    sharp = np.repeat(np.tile(stripes, (h + 2 * m, 1))[..., None], 3, axis=2).astype(np.float32)
    pair = render_pair(scene, sharp, np.random.default_rng(0), _clean(), (m, m))

    diff = np.abs(pair.blurred - pair.sharp).mean(axis=(1, 2))
    still = slice(0, 3 * h // 4 + 1)
    assert diff[still].max() < 1e-5  # rows exposed before the motion: sharp
    assert diff[-4:].min() > 0.02  # the last rows: blurred
    # the MGVs agree: zero for the still rows, a streak for the last rows
    streak = np.hypot(pair.mgv_clean[2] - pair.mgv_clean[0], pair.mgv_clean[3] - pair.mgv_clean[1])
    assert streak[still].max() < 0.01
    assert streak[-1].min() > 1.5
    # the targets are the rows at their own exposure centre: still rows show the source exactly
    np.testing.assert_allclose(pair.sharp[still], sharp[m : m + 3 * h // 4 + 1, m : m + h], atol=2e-6)


def test_rolling_shutter_render_matches_per_pixel_reference() -> None:
    """Row-interpolated maps + cv2.remap equal a direct per-pixel evaluation with scipy sampling."""
    from scipy.ndimage import map_coordinates

    cfg = SynthConfig.train(
        "strong", rolling_shutter_prob=1.0, readout_range_s=(0.03, 0.03), sensor_size=None
    )
    scene = sample_scene(np.random.default_rng(4), cfg, 40, 36)
    assert scene.rolling_shutter
    m = scene.margin
    src = np.random.default_rng(5).uniform(size=(40 + 2 * m, 36 + 2 * m, 1)).astype(np.float32)
    src = cv2.GaussianBlur(src, (0, 0), 1.0)[..., None]  # band-limited, like a real image
    blurred, target = render_blur(scene, src, (m, m))

    window = exposure_window(scene.stamp, scene.timing, 40)
    v, u = np.mgrid[0:40, 0:36].astype(float)
    K, Kinv = scene.camera.K, np.linalg.inv(scene.camera.K)
    pts = np.stack([u, v, np.ones_like(u)], -1)[..., None]

    def sample_at(frac: float) -> np.ndarray:
        times = window.row_start(v) + frac * window.exposure_time
        R = scene.track.relative(scene.stamp, times)  # every pixel's own row time, no interpolation
        s = (K @ np.swapaxes(R, -1, -2) @ Kinv @ pts)[..., 0]
        return map_coordinates(src[..., 0], [s[..., 1] / s[..., 2] + m, s[..., 0] / s[..., 2] + m], order=1)

    n = scene.n_sub
    reference = np.mean([sample_at((i + 0.5) / n) for i in range(n)], axis=0)
    np.testing.assert_allclose(blurred[..., 0], reference, atol=2e-3)  # remap: 1/32 px fixed point
    np.testing.assert_allclose(target[..., 0], sample_at(0.5), atol=2e-3)


# ---- corruption, determinism, borders -------------------------------------------------------------


def test_delay_and_mgv_noise_follow_the_eval_condition() -> None:
    cfg = _clean(delay_fraction=0.3, mgv_noise=0.25)
    sharp = np.random.default_rng(3).uniform(size=(48, 48, 3)).astype(np.float32)
    pair = synthesize_pair(sharp, np.random.default_rng(4), cfg)
    delay = 0.3 * pair.timing.exposure_time
    assert pair.info["delay_s"] == pytest.approx(delay)
    np.testing.assert_allclose(pair.imu.t - pair.imu_clean.t, delay, atol=1e-12)
    np.testing.assert_array_equal(pair.imu.omega, pair.imu_clean.omega)
    delayed = compute_mgv(pair.imu, pair.stamp, pair.timing, pair.camera, 13)
    noise = pair.mgv - delayed
    assert noise.std() == pytest.approx(0.25, rel=0.05)
    assert abs(noise.mean()) < 0.01


def test_train_config_mixes_clean_and_corrupted_mgvs() -> None:
    cfg = SynthConfig.train(noise_prob=0.0)
    corrupted = []
    for seed in range(10):
        scene = sample_scene(np.random.default_rng(seed), cfg, 16, 16)
        sharp = np.full((16 + 2 * scene.margin, 16 + 2 * scene.margin, 3), 0.5, np.float32)
        pair = render_pair(scene, sharp, np.random.default_rng(seed), cfg, (scene.margin, scene.margin))
        corrupted.append(pair.info["corrupted"])
        if not pair.info["corrupted"]:
            np.testing.assert_array_equal(pair.mgv, pair.mgv_clean)
    assert 0 < sum(corrupted) < len(corrupted)


class _ConstantSource:
    name = "constant"

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return np.full((height, width, 3), 0.4, np.float32)


def test_pairs_are_deterministic_per_seed() -> None:
    cfg = SynthConfig.train(rolling_shutter_prob=0.5)

    def digest(seed: int) -> str:
        sharp = np.random.default_rng(99).uniform(size=(40, 40, 3)).astype(np.float32)
        pair = synthesize_pair(sharp, np.random.default_rng(seed), cfg, out_size=(32, 32))
        return hashlib.sha256(pair.blurred.tobytes() + pair.sharp.tobytes() + pair.mgv.tobytes()).hexdigest()

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def test_no_dark_borders_from_warping() -> None:
    """A flat grey scene stays flat grey everywhere, including the borders, under strong shake."""
    cfg = _clean(shake=SynthConfig.train("strong").shake, rolling_shutter_prob=0.5)
    value = _srgb_encode_reference(float(srgb_to_linear(np.float32(0.4))))
    for seed in range(3):
        pair = generate_pair(np.random.default_rng(seed), _ConstantSource(), cfg, 40, 40)
        np.testing.assert_allclose(pair.blurred, value, atol=1e-4)


@pytest.mark.parametrize("mode,channels", [("rgb", 3), ("mono", 1), ("bayer", 1)])
def test_modes_give_expected_shapes_and_ranges(mode: str, channels: int) -> None:
    sharp = np.random.default_rng(0).uniform(size=(36, 36, 3)).astype(np.float32)
    pair = synthesize_pair(sharp, np.random.default_rng(1), SynthConfig.train(mode=mode), out_size=(32, 32))
    assert pair.blurred.shape == pair.sharp.shape == (32, 32, channels)
    assert pair.mgv.shape == pair.mgv_clean.shape == (6, 32, 32)
    assert pair.blurred.dtype == pair.sharp.dtype == pair.mgv.dtype == np.float32
    assert pair.blurred.min() >= 0.0 and pair.blurred.max() <= 1.0
    assert np.isfinite(pair.blur_px)
