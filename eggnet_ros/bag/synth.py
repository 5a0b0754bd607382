"""Synthesise a realistic rosbag2 of a shaking, slowly panning camera with ground truth.

Why a bag and not a folder of pairs: the node and the bag tools must cope with what a real
recording looks like - separate camera and IMU clocks related by an offset, a stamp convention,
transport latency in the log times, a 200-400 Hz IMU in its own frame with noise - and the VO
metric needs consecutive frames of one continuous motion that overlap.

The world is a large panorama (built-in CC0 photos tiled on a plane far away) seen by a purely
rotating pinhole camera. One dense "true" gyro trace (the data package's shake spectrum plus a
constant pan) drives everything: each frame's sharp view at its reference instant is cut from the
panorama with a margin, and the blur is rendered from it by ``eggnet_ros.data.synth.render_pair``
- the very code that makes the training data (linear-light averaging, rolling shutter, sensor
noise, 8-bit quantisation), so the bag's blur statistics match what the network learnt.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from eggnet_ros.bag.io import SIDECAR, BagWriter, Storage, s_to_ns
from eggnet_ros.config import ExposureTiming, StampConvention
from eggnet_ros.data.rotation_track import RotationTrack
from eggnet_ros.data.shake import ShakeConfig, generate_gyro
from eggnet_ros.data.synth import Scene, SynthConfig, render_pair
from eggnet_ros.motion import CameraModel, ImuSamples, exposure_window

_LOG = logging.getLogger(__name__)

IMAGES_DIR = Path(__file__).resolve().parents[1] / "data" / "images"
#: Photos tiled into the panorama (textured, varied content; all CC0 / public domain).
PANORAMA_PHOTOS = ("astronaut.png", "coffee.png", "rocket.jpg", "chelsea.png", "camera.png",
                   "brick.png", "hubble_deep_field.jpg", "gravel.png")
#: Absolute epoch of the synthetic host clock: stamps look like a real recording's.
EPOCH_S = 1_700_000_000.0

Encoding = Literal["rgb8", "mono8", "bayer_rggb8"]


@dataclass(frozen=True)
class BagSynthConfig:
    """Everything that defines a synthetic bag. Defaults: a 20 fps VGA camera, handheld shake."""

    frames: int = 30
    width: int = 640
    height: int = 480
    fps: float = 20.0
    hfov_deg: float = 60.0
    exposure_time: float = 0.025
    #: Rolling-shutter readout (s) of the whole frame; 0 = global shutter.
    readout_time: float = 0.0
    stamp_convention: StampConvention = "middle"
    #: Kalibr ``timeshift_cam_imu``: t_imu = t_cam + time_offset.
    time_offset: float = 0.0
    #: Row-major camera<-IMU rotation; the bag's gyro is expressed in the IMU frame.
    rotation_cam_imu: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    imu_rate_hz: float = 400.0
    gyro_noise: float = 0.003
    gyro_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)
    shake_preset: str = "moderate"
    #: Fixed shake intensity (the preset's range is drawn per trace; a bag wants one level).
    shake_intensity: float = 1.0
    #: Constant pan (rad/s) about the camera's y axis: the view drifts right over the panorama.
    pan_rate: float = 0.15
    encoding: Encoding = "rgb8"
    #: Sensor noise in linear light (photo-electrons at full scale; read noise std).
    photons_at_white: float = 4000.0
    read_noise: float = 0.002
    seed: int = 0
    #: Transport latency added to the log (receive) times.
    image_latency: float = 0.008
    imu_latency: float = 0.001
    topics: dict[str, str] = field(default_factory=lambda: {
        "image": "/camera/image_raw", "camera_info": "/camera/camera_info", "imu": "/imu",
        "sharp": "/camera/image_sharp"})
    camera_frame: str = "camera_optical_frame"
    imu_frame: str = "imu_link"

    def __post_init__(self) -> None:
        if self.frames < 1 or self.width < 16 or self.height < 16 or self.fps <= 0:
            raise ValueError("need frames >= 1, width/height >= 16 and fps > 0")
        if self.exposure_time <= 0 or self.readout_time < 0:
            raise ValueError("exposure_time must be > 0 and readout_time >= 0")
        if self.exposure_time + self.readout_time > 1.0 / self.fps:
            span = self.exposure_time + self.readout_time
            raise ValueError(f"exposure + readout ({span:.3f} s) exceeds the frame period")
        if self.imu_rate_hz < 200.0:
            raise ValueError(f"imu_rate_hz must be >= 200 (got {self.imu_rate_hz})")
        if self.encoding not in ("rgb8", "mono8", "bayer_rggb8"):
            raise ValueError(f"encoding must be rgb8, mono8 or bayer_rggb8, got {self.encoding!r}")
        if self.encoding.startswith("bayer") and (self.width % 2 or self.height % 2):
            raise ValueError("a Bayer bag needs even width and height")

    @property
    def timing(self) -> ExposureTiming:
        return ExposureTiming(exposure_time=self.exposure_time, stamp_convention=self.stamp_convention,
                              time_offset=self.time_offset, readout_time=self.readout_time)

    @property
    def camera(self) -> CameraModel:
        f = 0.5 * self.width / math.tan(math.radians(self.hfov_deg) / 2)
        K = np.array([[f, 0.0, (self.width - 1) / 2], [0.0, f, (self.height - 1) / 2], [0.0, 0.0, 1.0]])
        return CameraModel(self.width, self.height, K)


@dataclass
class SynthSummary:
    """What was written (for logs, the demo and tests)."""

    path: Path
    frames: int
    duration_s: float
    imu_samples: int
    blur_px: list[float]
    topics: dict[str, str]


# -- the world -----------------------------------------------------------------------------------
def build_panorama(height: int) -> np.ndarray:
    """Photos tiled in two rows into an sRGB float32 (height, ~3.3 x height, 3) mosaic."""
    row_h = height // 2
    rows = []
    photos = [p for p in PANORAMA_PHOTOS if (IMAGES_DIR / p).exists()]
    if len(photos) < 2:
        raise FileNotFoundError(f"built-in photos missing from {IMAGES_DIR}")
    half = (len(photos) + 1) // 2
    for names in (photos[:half], photos[half:]):
        tiles = []
        for name in names:
            img = cv2.imread(str(IMAGES_DIR / name), cv2.IMREAD_COLOR)
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            w = round(img.shape[1] * row_h / img.shape[0])
            tiles.append(cv2.resize(img, (w, row_h), interpolation=cv2.INTER_AREA))
        rows.append(np.concatenate(tiles, axis=1))
    width = min(r.shape[1] for r in rows)
    pano = np.concatenate([r[:, :width] for r in rows], axis=0)
    return pano.astype(np.float32) / 255.0


def _view(pano: np.ndarray, K_pano: np.ndarray, camera_to_world: np.ndarray, K_view: np.ndarray,
          size: tuple[int, int]) -> np.ndarray:
    """Pinhole view (``size`` = (w, h)) of the panorama plane for a camera with orientation ``Q``.

    A view pixel x sees the world direction ``Q K_view^-1 x``, which meets the panorama plane
    (z = 1 in the world) at pixel ``K_pano Q K_view^-1 x``: one homography.
    """
    H = K_pano @ camera_to_world @ np.linalg.inv(K_view)
    return cv2.warpPerspective(pano, H, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT_101)


def _max_shift_px(track: RotationTrack, camera: CameraModel, ref: float, t0: float, t1: float
                  ) -> tuple[float, float]:
    """(longest streak length, largest displacement from the reference view) over probe pixels."""
    w, h = camera.width, camera.height
    pts = np.stack(np.meshgrid([0.0, w / 2, w - 1.0], np.linspace(0, h - 1, 5)), -1).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], 1)
    times = np.linspace(t0, t1, 33)
    R = track.relative(ref, times)  # ref coords -> t coords
    K, Kinv = camera.K, np.linalg.inv(camera.K)
    moved = np.einsum("tij,pj->tpi", K @ R @ Kinv, hom)
    uv = moved[..., :2] / moved[..., 2:3]
    path = float(np.max(np.sum(np.linalg.norm(np.diff(uv, axis=0), axis=-1), axis=0)))
    return path, float(np.max(np.abs(uv - pts[None])))


# -- the bag -------------------------------------------------------------------------------------
def synthesize_bag(path: str | Path, cfg: BagSynthConfig | None = None, storage: Storage = "mcap"
                   ) -> SynthSummary:
    """Write the bag described by ``cfg`` to ``path`` (a new rosbag2 directory)."""
    cfg = cfg or BagSynthConfig()
    rng = np.random.default_rng(cfg.seed)
    camera = cfg.camera
    span = cfg.readout_time + cfg.exposure_time
    lead = 0.1  # IMU before the first exposure / after the last one
    t_ref = lead + span / 2 + np.arange(cfg.frames) / cfg.fps  # frame reference instants (IMU clock)
    duration = float(t_ref[-1] + span / 2 + lead)

    shake = replace(ShakeConfig.preset(cfg.shake_preset), pan_max=(0.0, 0.0, 0.0),
                    intensity_range=(cfg.shake_intensity, cfg.shake_intensity))
    dense = generate_gyro(rng, duration, 1000.0, shake)
    omega = dense.omega.copy()
    omega[:, 1] += cfg.pan_rate
    truth = ImuSamples(dense.t, omega)
    track = RotationTrack(truth)

    # The panorama at the camera's own scale; the first view looks at its left third.
    pano = build_panorama(max(2 * cfg.height, 720))
    f = camera.K[0, 0]
    K_pano = np.array([[f, 0.0, cfg.width * 0.75], [0.0, f, pano.shape[0] / 2], [0.0, 0.0, 1.0]])
    synth_cfg = SynthConfig(mode={"rgb8": "rgb", "mono8": "mono", "bayer_rggb8": "bayer"}[cfg.encoding],
                            noise_prob=1.0, photons_range=(cfg.photons_at_white,) * 2,
                            read_noise_range=(cfg.read_noise,) * 2, corrupt_prob=0.0, quantize_bits=8,
                            sensor_size=None)
    R_ci = np.asarray(cfg.rotation_cam_imu, dtype=np.float64).reshape(3, 3)
    ref_timing = ExposureTiming(exposure_time=cfg.exposure_time, stamp_convention="middle",
                                readout_time=cfg.readout_time)
    shift_to_stamp = {"start": -span / 2, "middle": 0.0, "end": span / 2}[cfg.stamp_convention]

    blur: list[float] = []
    with BagWriter(path, storage=storage) as bag:
        # IMU: the true rate resampled at the IMU's rate (random phase), noise, bias, IMU frame.
        step = 1.0 / cfg.imu_rate_hz
        t_imu = np.arange(rng.uniform(0.0, step), duration, step)
        w_cam = truth.interpolate(t_imu) + np.asarray(cfg.gyro_bias) + cfg.gyro_noise * rng.standard_normal(
            (len(t_imu), 3))
        w_imu = w_cam @ R_ci  # omega_imu = R^T omega_cam, row-vector form
        accel = np.array([0.0, -9.81, 0.0]) @ R_ci  # specific force at rest: "up" is -y in the camera
        frame_events = [(float(t_ref[k] + span / 2 + cfg.image_latency), k) for k in range(cfg.frames)]
        imu_events = [(float(t + cfg.imu_latency), i) for i, t in enumerate(t_imu)]
        events = sorted([(t, 0, i) for t, i in imu_events] + [(t, 1, k) for t, k in frame_events])
        for log_t, kind, idx in events:
            log_ns = s_to_ns(EPOCH_S + log_t)
            if kind == 0:
                bag.write_imu(cfg.topics["imu"], s_to_ns(EPOCH_S + t_imu[idx]), cfg.imu_frame, w_imu[idx],
                              accel + 0.02 * rng.standard_normal(3), log_time_ns=log_ns)
                continue
            blurred, sharp, blur_px = _render_frame(idx, t_ref[idx], track, truth, pano, K_pano, camera,
                                                    ref_timing, synth_cfg, rng)
            blur.append(blur_px)
            stamp_ns = s_to_ns(EPOCH_S + t_ref[idx] + shift_to_stamp - cfg.time_offset)
            bag.write_image(cfg.topics["image"], stamp_ns, cfg.camera_frame, blurred, cfg.encoding, log_ns)
            bag.write_camera_info(cfg.topics["camera_info"], stamp_ns, cfg.camera_frame, camera, log_ns)
            if cfg.topics.get("sharp"):
                bag.write_image(cfg.topics["sharp"], stamp_ns, cfg.camera_frame, sharp, cfg.encoding, log_ns)
    sidecar = {"timing": dataclasses.asdict(cfg.timing), "rotation_cam_imu": list(cfg.rotation_cam_imu),
               "topics": dict(cfg.topics), "fps": cfg.fps, "imu_rate_hz": cfg.imu_rate_hz, "seed": cfg.seed,
               "blur_px": blur, "note": "written by eggnet-bag synth; not part of the rosbag2 format"}
    (Path(path) / SIDECAR).write_text(json.dumps(sidecar, indent=1))
    _LOG.info("wrote %s: %d frames, %d IMU samples, blur %.1f px median", path, cfg.frames, len(t_imu),
              float(np.median(blur)))
    return SynthSummary(Path(path), cfg.frames, duration, len(t_imu), blur, dict(cfg.topics))


def _render_frame(k: int, ref: float, track: RotationTrack, truth: ImuSamples, pano: np.ndarray,
                  K_pano: np.ndarray, camera: CameraModel, timing: ExposureTiming, synth_cfg: SynthConfig,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """(blurred, sharp) uint8 frames in the bag's encoding, and the blur extent (px)."""
    window = exposure_window(ref, timing, camera.height)
    path_px, shift = _max_shift_px(track, camera, ref, window.start, window.end)
    margin = math.ceil(shift) + 4
    n_sub = int(np.clip(math.ceil(path_px) + 1, 9, 65)) | 1
    K_view = camera.K.copy()
    K_view[0, 2] += margin
    K_view[1, 2] += margin
    size = (camera.width + 2 * margin, camera.height + 2 * margin)
    sharp_view = _view(pano, K_pano, track.orientation(np.array(ref)), K_view, size)
    scene = Scene(camera=camera, timing=timing, stamp=ref, imu_clean=truth.window(window.start - 0.02,
                  window.end + 0.02), track=track, margin=margin, n_sub=n_sub, path_px=path_px,
                  info={"frame": k})
    pair = render_pair(scene, sharp_view, rng, synth_cfg, (margin, margin))
    return _to_u8(pair.blurred), _to_u8(pair.sharp), float(pair.blur_px)


def _to_u8(x: np.ndarray) -> np.ndarray:
    out = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
    return out[..., 0] if out.ndim == 3 and out.shape[2] == 1 else out
