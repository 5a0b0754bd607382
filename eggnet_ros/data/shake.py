"""Synthetic camera shake: angular-velocity traces with hand-tremor / vibration spectra.

Why a spectral model instead of e.g. random smooth splines: real handheld and vehicle-mounted
gyro traces are dominated by band-limited energy (voluntary sway 1-4 Hz, physiological tremor
8-12 Hz, mount/engine vibration up to ~20 Hz) on top of slow pans and drift. Streak shapes within a
5-40 ms exposure depend on exactly that mix: a 10 Hz tremor curves the streak, a pan makes it
straight. The generator shapes white noise in the frequency domain (per axis, with per-axis RMS),
adds optional sinusoidal vibration lines and a slow pan/drift component, and returns the true
angular velocity in the camera optical frame (x right, y down, z forward, REP 103).

Everything here is numpy-only so that it runs on the bare GPU machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from eggnet_ros.motion import ImuSamples

#: Shortest span synthesised internally (s): the FFT resolution (1/span) must resolve the 1 Hz
#: end of the band even when only a 60 ms window is requested.
_MIN_SPAN_S = 4.0


@dataclass(frozen=True)
class ShakeConfig:
    """Statistics of the angular velocity of a shaking camera (all rates in rad/s).

    ``tremor_rms`` is the per-axis RMS (pitch about x, yaw about y, roll about z) of the
    band-limited component *before* the per-trace ``intensity`` factor, which is drawn
    log-uniformly from ``intensity_range`` so that a dataset contains both mild and strong shake.
    """

    #: Per-axis RMS of the band-limited shake (x = pitch, y = yaw, z = roll).
    tremor_rms: tuple[float, float, float] = (0.9, 0.9, 0.4)
    #: Pass band of the shaped noise (Hz); second-order roll-off on both sides.
    band_hz: tuple[float, float] = (1.0, 20.0)
    #: Spectral tilt inside the band: amplitude ~ f^-tilt (1/f-like sway dominates low freqs).
    tilt: float = 0.5
    #: Physiological tremor peak: centre drawn from this range (Hz), gain relative to the floor.
    tremor_peak_hz: tuple[float, float] = (8.0, 12.0)
    tremor_peak_gain: float = 1.5
    tremor_peak_width_hz: float = 1.5
    #: Per-trace scale factor, drawn log-uniformly.
    intensity_range: tuple[float, float] = (0.35, 2.0)
    #: Per-axis random weight spread: each axis RMS is multiplied by U(1 - s, 1 + s).
    axis_spread: float = 0.5
    #: Constant pan rate per axis drawn from U(-pan_max, pan_max) (rad/s), before intensity.
    pan_max: tuple[float, float, float] = (0.3, 0.3, 0.05)
    #: Slow drift: RMS (rad/s) of noise low-passed below ``drift_cutoff_hz``.
    drift_rms: float = 0.05
    drift_cutoff_hz: float = 1.0
    #: Narrow vibration lines (e.g. motors, engines): frequencies drawn from this range (Hz).
    vibration_lines: int = 0
    vibration_hz: tuple[float, float] = (12.0, 20.0)
    vibration_rms: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.band_hz
        if not 0.0 < lo < hi:
            raise ValueError(f"band_hz must satisfy 0 < lo < hi, got {self.band_hz}")
        ilo, ihi = self.intensity_range
        if not 0.0 < ilo <= ihi:
            raise ValueError(f"intensity_range must satisfy 0 < lo <= hi, got {self.intensity_range}")
        if min(self.tremor_rms) < 0 or min(self.pan_max) < 0 or self.drift_rms < 0:
            raise ValueError("rms / pan amplitudes must be non-negative")
        if not 0.0 <= self.axis_spread < 1.0:
            raise ValueError(f"axis_spread must be in [0, 1), got {self.axis_spread}")

    @classmethod
    def preset(cls, name: str) -> ShakeConfig:
        """Named presets. ``moderate`` is the default training/eval distribution.

        ``moderate`` was tuned (test/test_data_shake.py) so that with exposure U(5, 40) ms and
        horizontal field of view U(50, 90) deg on a 512x512 image the median blur extent lies in
        5-25 px. ``gentle`` / ``strong`` scale it by ~1/2.5 and ~2; ``vehicle`` is a
        robot/vehicle mount: less sway, strong narrow vibration lines.
        """
        base = cls()
        if name == "moderate":
            return base
        if name == "gentle":
            return replace(base, intensity_range=(0.15, 0.8))
        if name == "strong":
            return replace(base, intensity_range=(0.7, 4.0))
        if name == "vehicle":
            return replace(
                base,
                tremor_rms=(0.3, 0.3, 0.15),
                tremor_peak_gain=0.0,
                tilt=0.0,
                vibration_lines=3,
                vibration_hz=(8.0, 20.0),
                vibration_rms=0.5,
                pan_max=(0.1, 0.4, 0.05),
            )
        raise ValueError(f"unknown shake preset {name!r}; use gentle, moderate, strong or vehicle")


def _shaped_noise(rng: np.random.Generator, n: int, rate_hz: float, amplitude: np.ndarray) -> np.ndarray:
    """Unit-RMS real noise of length n whose amplitude spectrum is ``amplitude`` (n//2+1,)."""
    spectrum = (rng.standard_normal(amplitude.shape) + 1j * rng.standard_normal(amplitude.shape)) * amplitude
    spectrum[0] = 0.0
    signal = np.fft.irfft(spectrum, n=n)
    rms = float(np.sqrt(np.mean(signal**2)))
    return signal / rms if rms > 0 else signal


def _band_amplitude(freqs: np.ndarray, cfg: ShakeConfig, peak_hz: float) -> np.ndarray:
    lo, hi = cfg.band_hz
    f = np.maximum(freqs, 1e-6)
    # Second-order high-pass and low-pass magnitude responses (Butterworth-like edges).
    band = 1.0 / np.sqrt(1.0 + (lo / f) ** 4) / np.sqrt(1.0 + (f / hi) ** 4)
    floor = (f / lo) ** (-cfg.tilt)
    peak = cfg.tremor_peak_gain * np.exp(-0.5 * ((f - peak_hz) / cfg.tremor_peak_width_hz) ** 2)
    return band * (floor + peak)


def generate_gyro(
    rng: np.random.Generator, duration: float, rate_hz: float, cfg: ShakeConfig, t0: float = 0.0
) -> ImuSamples:
    """True angular velocity of a shaking camera, sampled at ``rate_hz`` over ``duration`` seconds.

    Returns samples at ``t0 + k / rate_hz`` (k = 0..ceil(duration * rate_hz)), omega in rad/s in
    the camera optical frame. The band-limited part is synthesised over at least
    ``_MIN_SPAN_S`` seconds and a random window is cut out, so its statistics do not depend on
    the requested duration.
    """
    if duration <= 0 or rate_hz <= 0:
        raise ValueError(f"duration and rate_hz must be positive, got {duration}, {rate_hz}")
    if rate_hz < 2.0 * cfg.band_hz[1]:
        raise ValueError(f"rate_hz={rate_hz} is below the Nyquist rate of the {cfg.band_hz[1]} Hz band")
    n = math.ceil(duration * rate_hz) + 1
    n_long = max(n, math.ceil(_MIN_SPAN_S * rate_hz))
    freqs = np.fft.rfftfreq(n_long, d=1.0 / rate_hz)

    intensity = math.exp(rng.uniform(math.log(cfg.intensity_range[0]), math.log(cfg.intensity_range[1])))
    axis_weight = rng.uniform(1.0 - cfg.axis_spread, 1.0 + cfg.axis_spread, size=3)
    peak_hz = rng.uniform(*cfg.tremor_peak_hz)
    shape = _band_amplitude(freqs, cfg, peak_hz)
    drift_shape = 1.0 / np.sqrt(1.0 + (np.maximum(freqs, 1e-6) / cfg.drift_cutoff_hz) ** 4)

    start = int(rng.integers(0, n_long - n + 1))
    omega = np.empty((n, 3))
    t_long = np.arange(n_long) / rate_hz
    for axis in range(3):
        tremor = _shaped_noise(rng, n_long, rate_hz, shape) * cfg.tremor_rms[axis] * axis_weight[axis]
        drift = _shaped_noise(rng, n_long, rate_hz, drift_shape) * cfg.drift_rms
        pan = rng.uniform(-cfg.pan_max[axis], cfg.pan_max[axis])
        vib = np.zeros(n_long)
        for _ in range(cfg.vibration_lines):
            f = rng.uniform(*cfg.vibration_hz)
            amp = cfg.vibration_rms * math.sqrt(2.0 / cfg.vibration_lines) * rng.uniform(0.5, 1.5)
            vib += amp * np.sin(2.0 * math.pi * f * t_long + rng.uniform(0.0, 2.0 * math.pi))
        total = intensity * (tremor + pan + vib) + drift
        omega[:, axis] = total[start : start + n]
    t = t0 + np.arange(n) / rate_hz
    return ImuSamples(t=t, omega=omega)
