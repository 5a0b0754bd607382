"""Shake generator: sampling, spectrum (scipy's Welch estimate as reference), blur distribution."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import welch

from eggnet_ros.data.shake import ShakeConfig, generate_gyro
from eggnet_ros.data.synth import SynthConfig, compute_mgv, sample_scene
from eggnet_ros.motion import blur_extent_px


def test_samples_are_uniform_at_the_requested_rate() -> None:
    imu = generate_gyro(np.random.default_rng(0), 0.05, 400.0, ShakeConfig(), t0=2.0)
    assert imu.t[0] == 2.0
    np.testing.assert_allclose(np.diff(imu.t), 1 / 400.0, rtol=1e-9)
    assert imu.t[-1] >= 2.05 and imu.omega.shape == (len(imu.t), 3)


def test_deterministic_per_generator_state() -> None:
    a = generate_gyro(np.random.default_rng(7), 0.1, 1000.0, ShakeConfig())
    b = generate_gyro(np.random.default_rng(7), 0.1, 1000.0, ShakeConfig())
    c = generate_gyro(np.random.default_rng(8), 0.1, 1000.0, ShakeConfig())
    np.testing.assert_array_equal(a.omega, b.omega)
    assert not np.allclose(a.omega, c.omega)


def test_band_limited_spectrum_and_per_axis_rms() -> None:
    """Without pan/drift, the power lies in the 1-20 Hz band and each axis has its RMS."""
    cfg = replace(
        ShakeConfig(), intensity_range=(1.0, 1.0), axis_spread=0.0, pan_max=(0.0, 0.0, 0.0), drift_rms=0.0
    )
    rate = 500.0
    imu = generate_gyro(np.random.default_rng(3), 8.0, rate, cfg)
    f, p = welch(imu.omega, fs=rate, nperseg=1024, axis=0)
    in_band = (f >= 0.7) & (f <= 25.0)
    share = p[in_band].sum(axis=0) / p.sum(axis=0)
    assert np.all(share > 0.9)
    assert np.all(p[f > 60].sum(axis=0) / p.sum(axis=0) < 0.01)
    rms = np.sqrt(np.mean(imu.omega**2, axis=0))
    np.testing.assert_allclose(rms, cfg.tremor_rms, rtol=0.1)


def test_vibration_preset_has_narrow_lines() -> None:
    cfg = replace(ShakeConfig.preset("vehicle"), tremor_rms=(0.0, 0.0, 0.0), pan_max=(0, 0, 0), drift_rms=0.0)
    rate = 500.0
    imu = generate_gyro(np.random.default_rng(1), 8.0, rate, cfg)
    f, p = welch(imu.omega[:, 0], fs=rate, nperseg=2048)
    top = np.sort(p)[::-1]
    assert top[:6].sum() / p.sum() > 0.8  # a few lines carry the energy
    assert 8.0 - 0.5 <= f[np.argmax(p)] <= 20.0 + 0.5


def test_rejects_rates_below_the_band() -> None:
    with pytest.raises(ValueError):
        generate_gyro(np.random.default_rng(0), 0.1, 30.0, ShakeConfig())
    with pytest.raises(ValueError):
        ShakeConfig.preset("earthquake")


def test_moderate_preset_blur_extent_distribution() -> None:
    """Median blur extent (motion only, 200 seeds) at 512x512, exposure 5-40 ms, FOV 50-90 deg.

    Global and rolling shutter frames (random readout), MGVs from eggnet_ros.motion.
    """
    cfg = SynthConfig.eval("moderate")
    assert cfg.exposure_range_s == (0.005, 0.040) and cfg.fov_range_deg == (50.0, 90.0)
    extents = []
    for seed in range(200):
        scene = sample_scene(np.random.default_rng(seed), cfg, 512, 512)
        mgv = compute_mgv(scene.imu_clean, scene.stamp, scene.timing, scene.camera, cfg.n_mgv_samples)
        extents.append(blur_extent_px(mgv))
    median = float(np.median(extents))
    assert 5.0 <= median <= 25.0, f"median blur {median:.1f} px"
    # a spread of difficulties, not one blur size
    p10, p90 = np.percentile(extents, [10, 90])
    assert p10 < 5.0 < 15.0 < p90
