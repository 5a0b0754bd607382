"""Gyro-consistent blur synthesis (paper eq. 20) with rolling shutter, noise and MGV corruption.

One pair is made in two steps so the caller can fetch exactly the sharp pixels the motion needs:

1. :func:`sample_scene` draws a camera (field of view, principal point, position of the output
   window on a virtual sensor), exposure and readout times, and a dense "true" gyro trace; it
   integrates the trace and measures how far pixels travel, giving the margin of source pixels
   around the output window and the number of sub-exposure samples.
2. :func:`render_pair` averages the sharp image warped to every sub-exposure instant, in linear
   light (``B = 1/n sum_i H(theta_i - theta_centre) S``, eq. 20, one homography per row and
   instant for a rolling shutter), adds sensor noise, and computes the network's MGVs with
   ``eggnet_ros.motion`` from either the clean gyro or a corrupted copy of it (lower rate, noise,
   bias, time delay, camera-IMU misalignment; then per-pixel MGV noise as in section IV-C).

The sharp source image represents the view at the frame's reference instant ``stamp`` (the
middle of the frame span). The target is the view at each row's own exposure centre: for a global
shutter simply the source crop, for a rolling shutter the source warped row by row (the network
removes blur, it cannot undo rolling-shutter skew, and the MGVs are relative to row centres).
:func:`synthesize_pair` wraps both steps for a caller that already has a sharp image.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import cv2
import numpy as np

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.data.rotation_track import RotationTrack
from eggnet_ros.data.seeding import fast_normal
from eggnet_ros.data.sensor import (
    add_sensor_noise,
    linear_to_srgb,
    luminance,
    mosaic,
    quantize,
    srgb_to_linear,
)
from eggnet_ros.data.shake import ShakeConfig, generate_gyro
from eggnet_ros.motion import (
    CameraModel,
    ImuSamples,
    blur_extent_px,
    exp_so3,
    exposure_window,
    frame_motion,
    mgv_field,
)

_LOG = logging.getLogger(__name__)

Mode = Literal["rgb", "mono", "bayer"]
MODES: tuple[str, ...] = ("rgb", "mono", "bayer")

#: Sub-exposure sample counts: at least 9 (smooth short streaks), at most 65 (bounded cost).
N_SUB_MIN, N_SUB_MAX = 9, 65
#: Rolling-shutter homographies are computed at this many rows and interpolated in between
#: (entries vary smoothly over a readout of a few tens of ms; error << 0.05 px).
_RS_ANCHORS = 17


@dataclass(frozen=True)
class SynthConfig:
    """Every random choice of the pair synthesis, with its range. Use :meth:`train` / :meth:`eval`.

    Ranges are ``(low, high)`` drawn uniformly unless the comment says log-uniform. The MGV
    corruption settings only apply with probability ``corrupt_prob``; otherwise the MGVs are
    computed from the clean dense gyro ("controlled" case).
    """

    shake: ShakeConfig = field(default_factory=ShakeConfig)
    mode: Mode = "rgb"
    bayer_pattern: str = "rggb"
    # --- camera --------------------------------------------------------------------------------
    exposure_range_s: tuple[float, float] = (0.005, 0.040)
    #: Horizontal field of view of the *virtual sensor* (deg).
    fov_range_deg: tuple[float, float] = (50.0, 90.0)
    #: Principal point offset from the sensor centre, as a fraction of the sensor size.
    principal_jitter: float = 0.02
    #: Side of the square virtual sensor the output window is cut from, so that a 256 px
    #: training patch has the intrinsics (and blur lengths) of part of a 512 px frame; ``None``
    #: = the output is the whole sensor.
    sensor_size: int | None = 512
    rolling_shutter_prob: float = 0.5
    #: Full-sensor readout time (s) when the frame is rolling-shutter.
    readout_range_s: tuple[float, float] = (0.010, 0.030)
    #: Rate of the dense "true" gyro used for rendering and the clean MGVs.
    gyro_rate_hz: float = 1000.0
    #: Scenes whose longest streak exceeds this are scaled down to it (bounds cost and margin).
    max_blur_px: float = 64.0
    #: Number of MGV sample times (the node's MotionConfig.n_samples).
    n_mgv_samples: int = 13
    # --- sensor noise (linear light) -----------------------------------------------------------
    noise_prob: float = 0.9
    #: Photo-electrons at full scale (log-uniform): 100 = very dim scene, 20000 = daylight.
    photons_range: tuple[float, float] = (100.0, 20000.0)
    #: Read-noise std in full-scale units (log-uniform).
    read_noise_range: tuple[float, float] = (0.0005, 0.01)
    #: Quantise the blurred input like an 8-bit camera driver; ``None`` keeps floats.
    quantize_bits: int | None = 8
    # --- gyro / MGV corruption -----------------------------------------------------------------
    corrupt_prob: float = 0.5
    #: Observed IMU rate (Hz), random phase; ``None`` = keep the dense clean samples.
    imu_rate_range_hz: tuple[float, float] | None = (100.0, 400.0)
    #: White gyro noise std (rad/s).
    gyro_noise_range: tuple[float, float] = (0.0, 0.02)
    #: Constant per-axis gyro bias, U(-max, max) (rad/s).
    gyro_bias_max: float = 0.005
    #: Gyro time delay as a fraction of the exposure time (paper: {0..5} x exposure/10).
    delay_fractions: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    #: Draw the delay's sign at random (camera ahead of or behind the gyro clock).
    delay_sign_random: bool = True
    #: Camera-IMU misalignment: rotation of angle U(0, max) about a random axis (deg).
    miscal_max_deg: float = 1.0
    #: Per-pixel Gaussian MGV noise std (px), one drawn uniformly (paper: 0, 0.125, 0.25, 1).
    mgv_noise_sigmas: tuple[float, ...] = (0.0, 0.125, 0.25, 1.0)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        for name in (
            "exposure_range_s",
            "fov_range_deg",
            "readout_range_s",
            "photons_range",
            "read_noise_range",
        ):
            lo, hi = getattr(self, name)
            if not 0.0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        if not self.fov_range_deg[1] < 180.0:
            raise ValueError("field of view must be below 180 deg")
        for name in ("rolling_shutter_prob", "noise_prob", "corrupt_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability")
        if not self.delay_fractions or not self.mgv_noise_sigmas:
            raise ValueError("delay_fractions and mgv_noise_sigmas need at least one value")
        if self.n_mgv_samples < 3 or self.n_mgv_samples % 2 == 0:
            raise ValueError("n_mgv_samples must be odd and >= 3")
        if self.max_blur_px <= 0 or self.gyro_rate_hz < 2 * self.shake.band_hz[1]:
            raise ValueError("max_blur_px must be > 0 and gyro_rate_hz above the shake band's Nyquist rate")

    @classmethod
    def train(cls, preset: str = "moderate", mode: Mode = "rgb", **overrides: Any) -> SynthConfig:
        """Training mix: half clean MGVs, half corrupted (the network must learn to distrust them)."""
        return cls(**{"shake": ShakeConfig.preset(preset), "mode": mode, **overrides})

    @classmethod
    def eval(
        cls,
        preset: str = "moderate",
        mgv_noise: float = 0.0,
        delay_fraction: float = 0.0,
        mode: Mode = "rgb",
        **overrides: Any,
    ) -> SynthConfig:
        """An exact evaluation condition of section IV-C: fixed MGV noise sigma and delay.

        The gyro is otherwise perfect (dense, noiseless, aligned) and the output is a whole sensor.
        """
        base = dict(
            shake=ShakeConfig.preset(preset),
            mode=mode,
            sensor_size=None,
            corrupt_prob=1.0,
            imu_rate_range_hz=None,
            gyro_noise_range=(0.0, 0.0),
            gyro_bias_max=0.0,
            delay_fractions=(float(delay_fraction),),
            delay_sign_random=False,
            miscal_max_deg=0.0,
            mgv_noise_sigmas=(float(mgv_noise),),
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def eval_raw(cls, preset: str = "moderate", mode: Mode = "rgb", **overrides: Any) -> SynthConfig:
        """The paper's raw case: every pair's gyro is imperfect, drawn like the corrupted half of
        the training mix (lower rate, noise, bias, delay up to exposure/2 of either sign,
        camera-IMU misalignment, MGV noise). Pixels are those of :meth:`eval` (whole sensor, same
        draws), so the controlled and the raw case score identical images."""
        return cls.train(preset, mode, **{"sensor_size": None, "corrupt_prob": 1.0, **overrides})


@dataclass(frozen=True)
class Scene:
    """The sampled geometry and motion of one pair (everything but pixels)."""

    camera: CameraModel
    timing: ExposureTiming
    stamp: float
    imu_clean: ImuSamples
    track: RotationTrack
    #: Source pixels needed on each side of the output window.
    margin: int
    #: Sub-exposure samples used for rendering (odd).
    n_sub: int
    #: Longest streak path length over the probe points (px).
    path_px: float
    info: dict[str, Any]

    @property
    def rolling_shutter(self) -> bool:
        return self.timing.readout_time > 0

    @property
    def target_is_source(self) -> bool:
        """True when the target (every row's exposure centre) is the source image itself: a
        global shutter stamped at its exposure centre (every sampled scene). Otherwise the
        target is rendered like the blur; a hand-made "start"/"end" stamp would else put it half
        a streak off the blur."""
        if self.rolling_shutter:
            return False
        centre = float(exposure_window(self.stamp, self.timing, self.camera.height).row_centre(0.0))
        return abs(centre - self.stamp) < 1e-9


@dataclass
class BlurPair:
    """A synthetic training/test pair and everything needed to recompute its MGVs.

    ``blurred``/``sharp`` are (H, W, C): C = 3 for "rgb" (sRGB), 1 for "mono" (sRGB-encoded
    luminance), 1 for "bayer" (*linear* raw mosaic, ``info["bayer_pattern"]``). ``mgv`` is what
    the network gets: ``mgv_field(frame_motion(imu, stamp, H, MotionConfig(timing,
    n_samples=info["n_mgv_samples"])), camera)`` plus ``info["mgv_noise"]`` px of noise;
    ``mgv_clean`` is the same from ``imu_clean``. ``imu`` is the observed (possibly corrupted)
    gyro, already in the camera frame (a misalignment is baked into its rates, a delay into its
    stamps). ``observe_mgv(imu_clean, stamp, timing, camera, mgv_clean, info["mgv_seed"], cfg)``
    reproduces ``mgv`` and ``imu`` for any corruption setting ``cfg``. ``info`` records every
    random choice (field of view, exposure, readout, noise level, delay, ...).
    """

    blurred: np.ndarray
    sharp: np.ndarray
    mgv: np.ndarray
    mgv_clean: np.ndarray
    imu: ImuSamples
    imu_clean: ImuSamples
    camera: CameraModel
    stamp: float
    timing: ExposureTiming
    blur_px: float
    mode: str = "rgb"
    info: dict[str, Any] = field(default_factory=dict)


# ---- scene sampling -------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _project(K: np.ndarray, R: np.ndarray, Kinv: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Pixels (..., 2) of points ``pts`` (P, 2) moved by ``K R K^-1``; R (..., 3, 3) broadcast on P."""
    h = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)
    moved = (K @ R @ Kinv @ h[..., None])[..., 0]
    return moved[..., :2] / moved[..., 2:3]


def _measure(track: RotationTrack, camera: CameraModel, window: Any, stamp: float) -> tuple[float, float]:
    """(longest streak path length, largest source displacement) over 15 probe pixels, in px."""
    w, h = camera.width, camera.height
    xs = np.array([0.0, (w - 1) / 2, w - 1.0])
    ys = np.linspace(0.0, h - 1.0, 5)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    frac = np.linspace(0.0, 1.0, 33)
    times = window.row_start(pts[:, 1])[:, None] + frac[None, :] * window.exposure_time  # (P, 33)
    centres = window.row_centre(pts[:, 1])[:, None]
    K, Kinv = camera.K, np.linalg.inv(camera.K)
    # streak traced by the scene point seen at each probe at its row's exposure centre
    streak = _project(K, track.relative(centres, times).transpose(1, 0, 2, 3), Kinv, pts)  # (33, P, 2)
    path = float(np.max(np.sum(np.linalg.norm(np.diff(streak, axis=0), axis=-1), axis=0)))
    # where the output pixel's light comes from in the source (reference-instant) image
    all_t = np.concatenate([times, centres], axis=1).T  # (34, P)
    inv = np.swapaxes(track.relative(stamp, all_t), -1, -2)
    source = _project(K, inv, Kinv, pts)
    shift = float(np.max(np.abs(source - pts[None])))
    return path, shift


def sample_scene(rng: np.random.Generator, cfg: SynthConfig, height: int, width: int) -> Scene:
    """Draw camera, timing and true motion for an output of ``height`` x ``width`` pixels."""
    if height < 2 or width < 2:
        raise ValueError(f"output must be at least 2x2, got {height}x{width}")
    if cfg.mode == "bayer" and (height % 2 or width % 2):
        raise ValueError("bayer mode needs even output height and width")
    sensor_w = max(cfg.sensor_size or width, width)
    sensor_h = max(cfg.sensor_size or height, height)
    fov = math.radians(rng.uniform(*cfg.fov_range_deg))
    f = 0.5 * sensor_w / math.tan(0.5 * fov)
    cx = (sensor_w - 1) / 2 + rng.uniform(-1, 1) * cfg.principal_jitter * sensor_w
    cy = (sensor_h - 1) / 2 + rng.uniform(-1, 1) * cfg.principal_jitter * sensor_h
    # window on the sensor; even offsets keep the Bayer phase of the sensor
    x0 = 2 * int(rng.integers(0, (sensor_w - width) // 2 + 1))
    y0 = 2 * int(rng.integers(0, (sensor_h - height) // 2 + 1))
    K = np.array([[f, 0.0, cx - x0], [0.0, f, cy - y0], [0.0, 0.0, 1.0]])
    camera = CameraModel(width, height, K)

    exposure = rng.uniform(*cfg.exposure_range_s)
    rolling = rng.uniform() < cfg.rolling_shutter_prob
    sensor_readout = rng.uniform(*cfg.readout_range_s) if rolling else 0.0
    # the window's rows are sensor rows y0..y0+height-1: same line time, shorter readout
    readout = sensor_readout * height / sensor_h
    timing = ExposureTiming(exposure_time=exposure, stamp_convention="middle", readout_time=readout)

    # Gyro beyond the frame span for delayed / resampled copies. It does not depend on the
    # corruption settings (unless they are extreme), so all eval conditions share their images.
    min_rate = min(cfg.imu_rate_range_hz[0], 100.0) if cfg.imu_rate_range_hz else 100.0
    pad = max(max(abs(d) for d in cfg.delay_fractions), 0.5) * exposure + 3.0 / min_rate + 0.005
    duration = 2 * pad + readout + exposure
    imu = generate_gyro(rng, duration, cfg.gyro_rate_hz, cfg.shake)
    stamp = pad + 0.5 * (readout + exposure)
    info = dict(
        fov_deg=math.degrees(fov),
        focal_px=f,
        exposure_s=exposure,
        rolling_shutter=bool(rolling),
        sensor_readout_s=sensor_readout,
        sensor_size=(sensor_h, sensor_w),
        window_origin=(y0, x0),
    )
    return scene_from_motion(camera, timing, stamp, imu, cfg.max_blur_px, info)


def scene_from_motion(
    camera: CameraModel,
    timing: ExposureTiming,
    stamp: float,
    imu: ImuSamples,
    max_blur_px: float | None = None,
    info: dict[str, Any] | None = None,
) -> Scene:
    """A scene from a given camera, timing and true gyro (camera frame), e.g. a hand-made motion.

    Integrates the gyro, measures the longest streak and the largest source displacement, and
    derives the margin and the number of sub-exposure samples (about one per pixel of streak,
    clipped to [N_SUB_MIN, N_SUB_MAX], odd). With ``max_blur_px`` the rates are scaled down so
    the longest streak does not exceed it.
    """
    window = exposure_window(stamp, timing, camera.height)
    if not imu.covers(window.start, window.end):
        raise ValueError(
            f"the gyro [{imu.t[0]}, {imu.t[-1]}] does not cover the exposure [{window.start}, {window.end}]"
        )
    track = RotationTrack(imu)
    path, shift = _measure(track, camera, window, stamp)
    if max_blur_px is not None and path > max_blur_px:
        scale = 0.98 * max_blur_px / path
        imu = ImuSamples(imu.t, imu.omega * scale)
        track = RotationTrack(imu)
        path, shift = _measure(track, camera, window, stamp)
    n_sub = int(np.clip(math.ceil(path) + 1, N_SUB_MIN, N_SUB_MAX)) | 1
    info = dict(info or {}, n_sub=n_sub, path_px=path)
    return Scene(camera, timing, stamp, imu, track, math.ceil(shift) + 2, n_sub, path, info)


# ---- rendering ------------------------------------------------------------------------------------


def _row_maps(scene: Scene, fracs: np.ndarray) -> np.ndarray:
    """Per-row maps (len(fracs), H, 3, 3) from output pixels to source pixels.

    ``fracs`` in [0, 1] pick the instants ``row_start + frac * exposure`` of every row (0.5 = the
    row's exposure centre, i.e. the target). Rotations are computed at ``_RS_ANCHORS`` rows in
    one batch and the maps interpolated linearly in between.
    """
    h = scene.camera.height
    window = exposure_window(scene.stamp, scene.timing, h)
    anchors = np.linspace(0.0, h - 1.0, min(h, _RS_ANCHORS))
    times = window.row_start(anchors)[None, :] + np.asarray(fracs)[:, None] * window.exposure_time
    R = scene.track.relative(scene.stamp, times)  # ref -> t, (F, A, 3, 3)
    K = scene.camera.K
    M = K @ np.swapaxes(R, -1, -2) @ np.linalg.inv(K)  # output pixel at t -> source pixel at ref
    pos = np.arange(h, dtype=np.float64) * (len(anchors) - 1) / max(h - 1, 1)
    lo = np.minimum(pos.astype(int), len(anchors) - 2) if len(anchors) > 1 else np.zeros(h, int)
    w = (pos - lo)[None, :, None, None]
    hi = np.minimum(lo + 1, len(anchors) - 1)
    return M[:, lo] * (1.0 - w) + M[:, hi] * w


def _remap_rows(src: np.ndarray, maps: np.ndarray, width: int, offset: tuple[int, int]) -> np.ndarray:
    """Warp ``src`` with one homography per output row (rolling shutter).

    For row ``r`` the source position of column ``c`` is ``(a c + b) / (g c + k)`` with per-row
    coefficients, so the maps are a few float32 outer-product passes (cheap next to the remap).
    """
    h = maps.shape[0]
    oy, ox = offset
    cols = np.arange(width, dtype=np.float32)[None, :]
    rows = np.arange(h, dtype=np.float64)
    m = maps
    f32 = np.float32

    def coef(i: int) -> tuple[np.ndarray, np.ndarray]:
        return m[:, i, 0].astype(f32)[:, None], (m[:, i, 1] * rows + m[:, i, 2]).astype(f32)[:, None]

    (ax, bx), (ay, by), (ad, bd) = coef(0), coef(1), coef(2)
    inv = ad * cols
    inv += bd
    np.reciprocal(inv, out=inv)
    map_x = ax * cols
    map_x += bx
    map_x *= inv
    map_x += f32(ox)
    map_y = ay * cols
    map_y += by
    map_y *= inv
    map_y += f32(oy)
    return cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def _warp_global(
    src: np.ndarray, M: np.ndarray, size: tuple[int, int], offset: tuple[int, int]
) -> np.ndarray:
    """Warp ``src`` with one output->source homography ``M`` (global shutter)."""
    oy, ox = offset
    A = np.array([[1.0, 0.0, ox], [0.0, 1.0, oy], [0.0, 0.0, 1.0]]) @ M
    return cv2.warpPerspective(
        src, A, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101
    )


def render_blur(
    scene: Scene, sharp_linear: np.ndarray, offset: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(blurred, target) in linear light for the output window at ``offset`` (y, x) of the source.

    Eq. 20 with midpoint sampling of the exposure: sample ``i`` of ``n`` sits at
    ``row_start + (i + 0.5) / n * exposure``, so the middle sample is the row's exposure centre
    and the average approximates the box-filter integral of a real exposure.
    """
    h, w = scene.camera.height, scene.camera.width
    n = scene.n_sub
    acc = np.zeros((h, w, sharp_linear.shape[2]), dtype=np.float32)
    if not scene.rolling_shutter:
        window = exposure_window(scene.stamp, scene.timing, h)
        times = window.row_start(0.0) + (np.arange(n) + 0.5) / n * window.exposure_time
        R = scene.track.relative(scene.stamp, times)
        K = scene.camera.K
        Ms = K @ np.swapaxes(R, -1, -2) @ np.linalg.inv(K)
        for M in Ms:
            acc += _warp_global(sharp_linear, M, (w, h), offset).reshape(acc.shape)
        if scene.target_is_source:
            oy, ox = offset
            target = sharp_linear[oy : oy + h, ox : ox + w].copy()
        else:
            R_c = scene.track.relative(scene.stamp, np.array([float(window.row_centre(0.0))]))[0]
            M_c = K @ R_c.T @ np.linalg.inv(K)
            target = _warp_global(sharp_linear, M_c, (w, h), offset).reshape(acc.shape)
    else:
        maps = _row_maps(scene, np.append((np.arange(n) + 0.5) / n, 0.5))
        for i in range(n):
            acc += _remap_rows(sharp_linear, maps[i], w, offset).reshape(acc.shape)
        target = _remap_rows(sharp_linear, maps[n], w, offset).reshape(acc.shape)
    acc *= np.float32(1.0 / n)
    return acc, target


# ---- gyro corruption and MGVs ---------------------------------------------------------------------


def _random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    return exp_so3(axis * math.radians(rng.uniform(0.0, max_deg)))


def corrupt_gyro(
    imu: ImuSamples,
    rng: np.random.Generator,
    rate_hz: float | None,
    noise_std: float,
    bias: np.ndarray,
    rotation: np.ndarray,
    delay: float,
) -> ImuSamples:
    """What a real, imperfect gyro reports for the true motion ``imu``.

    Resampled at ``rate_hz`` with a random phase (``None`` keeps the samples), plus white noise
    and a constant ``bias`` (rad/s), rotated by the camera-IMU misalignment ``rotation``, with
    stamps shifted by ``delay`` (a positive delay reports each rate ``delay`` seconds late).
    """
    if rate_hz is not None:
        step = 1.0 / rate_hz
        t = np.arange(imu.t[0] + rng.uniform(0.0, step), imu.t[-1], step)
        omega = imu.interpolate(t)
    else:
        t, omega = imu.t.copy(), imu.omega.copy()
    omega = omega + np.asarray(bias)[None, :] + noise_std * rng.standard_normal(omega.shape)
    return ImuSamples(t + delay, omega @ np.asarray(rotation).T)


def compute_mgv(
    imu: ImuSamples, stamp: float, timing: ExposureTiming, camera: CameraModel, n: int
) -> np.ndarray:
    """The network's MGV field exactly as the node computes it (``eggnet_ros.motion``)."""
    motion = frame_motion(imu, stamp, camera.height, MotionConfig(timing=timing, n_samples=n))
    return mgv_field(motion, camera).astype(np.float32, copy=False)


def observe_mgv(
    imu_clean: ImuSamples,
    stamp: float,
    timing: ExposureTiming,
    camera: CameraModel,
    mgv_clean: np.ndarray,
    seed: int,
    cfg: SynthConfig,
) -> tuple[np.ndarray, ImuSamples, dict[str, Any]]:
    """The MGVs the network gets, from the gyro a real, imperfect IMU would report.

    All corruption randomness comes from ``seed`` alone (drawn by :func:`render_pair` after the
    pixels), so the MGVs of any corruption setting can be recomputed for stored images; this is
    what lets the fixed test set share one image cache between its evaluation conditions.
    Returns ``(mgv, observed imu, info)``.
    """
    rng = np.random.default_rng(seed)
    if rng.uniform() >= cfg.corrupt_prob:
        info = dict(
            corrupted=False,
            delay_s=0.0,
            mgv_noise=0.0,
            miscal_deg=0.0,
            imu_rate_hz=cfg.gyro_rate_hz,
            gyro_noise=0.0,
        )
        return mgv_clean, imu_clean, info
    delay = float(rng.choice(np.asarray(cfg.delay_fractions))) * timing.exposure_time
    if cfg.delay_sign_random and rng.uniform() < 0.5:
        delay = -delay
    rate = rng.uniform(*cfg.imu_rate_range_hz) if cfg.imu_rate_range_hz else None
    noise_std = rng.uniform(*cfg.gyro_noise_range)
    bias = rng.uniform(-cfg.gyro_bias_max, cfg.gyro_bias_max, size=3)
    rotation = _random_rotation(rng, cfg.miscal_max_deg)
    sigma = float(rng.choice(np.asarray(cfg.mgv_noise_sigmas)))
    exact = rate is None and noise_std == 0 and not np.any(bias) and cfg.miscal_max_deg == 0
    if exact and delay == 0.0:
        imu, mgv = imu_clean, mgv_clean.copy()
    else:
        imu = corrupt_gyro(imu_clean, rng, rate, noise_std, bias, rotation, delay)
        mgv = compute_mgv(imu, stamp, timing, camera, cfg.n_mgv_samples)
    if sigma > 0:
        mgv = mgv + fast_normal(rng, mgv.shape) * np.float32(sigma)
    info = dict(
        corrupted=True,
        delay_s=delay,
        mgv_noise=sigma,
        miscal_deg=float(math.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))),
        imu_rate_hz=rate if rate is not None else cfg.gyro_rate_hz,
        gyro_noise=noise_std,
    )
    return mgv, imu, info


# ---- the pair -------------------------------------------------------------------------------------


def render_pair(
    scene: Scene,
    sharp_source: np.ndarray,
    rng: np.random.Generator,
    cfg: SynthConfig,
    offset: tuple[int, int],
) -> BlurPair:
    """Render the pair of ``scene`` from a sharp sRGB image holding the output window at ``offset``.

    ``sharp_source`` should extend ``scene.margin`` pixels beyond the window on every side;
    where it does not, the border is reflected (never black).
    """
    if sharp_source.ndim != 3 or sharp_source.shape[2] != 3:
        raise ValueError(f"sharp image must be (H, W, 3), got {sharp_source.shape}")
    if sharp_source.dtype == np.uint8:
        sharp_source = sharp_source.astype(np.float32) / 255.0
    h, w = scene.camera.height, scene.camera.width
    oy, ox = offset
    if oy < 0 or ox < 0 or oy + h > sharp_source.shape[0] or ox + w > sharp_source.shape[1]:
        raise ValueError(
            f"output window {h}x{w} at {offset} is outside the sharp image {sharp_source.shape[:2]}"
        )
    short = max(scene.margin - min(oy, ox, sharp_source.shape[0] - oy - h, sharp_source.shape[1] - ox - w), 0)
    if short:
        _LOG.debug("sharp image lacks %d px of margin; reflecting its border", short)
    linear = srgb_to_linear(sharp_source)
    blurred_lin, target_lin = render_blur(scene, linear, offset)

    if cfg.mode == "rgb":
        sensor_in = blurred_lin
        sharp = (
            sharp_source[oy : oy + h, ox : ox + w].astype(np.float32)
            if scene.target_is_source
            else linear_to_srgb(target_lin)
        )
    elif cfg.mode == "mono":
        sensor_in = luminance(blurred_lin)
        sharp = linear_to_srgb(luminance(target_lin))
    else:
        sensor_in = mosaic(blurred_lin, cfg.bayer_pattern)
        sharp = mosaic(target_lin, cfg.bayer_pattern)

    photons = read = 0.0
    if rng.uniform() < cfg.noise_prob:
        photons = _log_uniform(rng, *cfg.photons_range)
        read = _log_uniform(rng, *cfg.read_noise_range)
        sensor_in = add_sensor_noise(sensor_in, rng, photons, read)
    blurred = sensor_in if cfg.mode == "bayer" else linear_to_srgb(sensor_in)
    if cfg.quantize_bits:
        blurred = quantize(blurred, cfg.quantize_bits)

    mgv_clean = compute_mgv(scene.imu_clean, scene.stamp, scene.timing, scene.camera, cfg.n_mgv_samples)
    mgv_seed = int(rng.integers(0, 2**63 - 1))
    mgv, imu, corruption = observe_mgv(
        scene.imu_clean, scene.stamp, scene.timing, scene.camera, mgv_clean, mgv_seed, cfg
    )
    info = dict(
        scene.info,
        **corruption,
        mgv_seed=mgv_seed,
        photons=photons,
        read_noise=read,
        n_mgv_samples=cfg.n_mgv_samples,
        margin=scene.margin,
        bayer_pattern=cfg.bayer_pattern if cfg.mode == "bayer" else None,
    )
    return BlurPair(
        blurred=np.ascontiguousarray(blurred, dtype=np.float32),
        sharp=np.ascontiguousarray(np.clip(sharp, 0.0, 1.0), dtype=np.float32),
        mgv=mgv.astype(np.float32, copy=False),
        mgv_clean=mgv_clean,
        imu=imu,
        imu_clean=scene.imu_clean,
        camera=scene.camera,
        stamp=scene.stamp,
        timing=scene.timing,
        blur_px=blur_extent_px(mgv_clean),
        mode=cfg.mode,
        info=info,
    )


def synthesize_pair(
    sharp: np.ndarray, rng: np.random.Generator, cfg: SynthConfig, out_size: tuple[int, int] | None = None
) -> BlurPair:
    """Blur a sharp sRGB image (H, W, 3) float32 in [0, 1] with random gyro-measured shake.

    The output is the centre ``out_size`` = (height, width) window (default: the whole image);
    pixels around it feed the warps, and missing margin is reflected. Pass an image larger than
    the output by the expected blur for border-artefact-free results (the dataset does this
    exactly via :func:`sample_scene` + :func:`render_pair`).
    """
    if sharp.ndim != 3 or sharp.shape[2] != 3:
        raise ValueError(f"sharp image must be (H, W, 3), got {sharp.shape}")
    h_in, w_in = sharp.shape[:2]
    h, w = out_size if out_size is not None else (h_in, w_in)
    if h > h_in or w > w_in:
        raise ValueError(f"out_size {(h, w)} exceeds the image {(h_in, w_in)}")
    scene = sample_scene(rng, cfg, h, w)
    offset = ((h_in - h) // 2, (w_in - w) // 2)
    short = max(scene.margin - min(offset[0], offset[1], h_in - h - offset[0], w_in - w - offset[1]), 0)
    if short:
        sharp = cv2.copyMakeBorder(sharp, short, short, short, short, cv2.BORDER_REFLECT_101)
        offset = (offset[0] + short, offset[1] + short)
    return render_pair(scene, sharp, rng, cfg, offset)


def generate_pair(
    rng: np.random.Generator, source: Any, cfg: SynthConfig, height: int, width: int
) -> BlurPair:
    """Sample a scene, fetch exactly the sharp pixels it needs from ``source``, render the pair.

    ``source`` is anything with ``sample(rng, height, width) -> (H, W, 3)`` (see
    :mod:`eggnet_ros.data.sources`). The source image extends ``scene.margin`` pixels beyond the
    output on each side, so no warp ever reads outside real content.
    """
    scene = sample_scene(rng, cfg, height, width)
    m = scene.margin
    sharp = source.sample(rng, height + 2 * m, width + 2 * m)
    return render_pair(scene, sharp, rng, cfg, (m, m))
