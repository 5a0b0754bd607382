"""DeblurProcessor: one frame + its gyro samples + the camera model -> one deblurred frame.

This is the single processing path shared by the ROS node, ``eggnet-deblur`` and the bag tools,
so live and offline results are identical by construction. It never raises for bad *data*
(missing coverage, size mismatch, unsupported encoding...): every frame comes back as a
:class:`FrameResult` whose ``status`` and ``reason`` say what happened, and the configured
``fallback`` decides between passing the input through and dropping it. It does raise for bad
*configuration* at construction (model missing or corrupt, CUDA required but absent), because
those must stop the program at start-up with a clear message.

Per frame, the calling thread (the node's worker) does only O(grid) work besides handing data
over: gyro integration, the MGVs on their coarse grid (:func:`~eggnet_ros.motion.mgv.mgv_coarse`)
and the blur extent from that grid - needed *before* the model for ``min_blur_px``. Everything
per pixel (integers -> floats, Bayer packing, the full-resolution MGV field, clamp/round/cast and
layout of the output) runs where the model runs: CUDA kernels on a GPU, OpenCV on a CPU device.
``FrameResult.timings`` reports the two sides separately.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core.encodings import (
    Conversion,
    InputMode,
    UnsupportedConversionError,
    UnsupportedEncodingError,
    check_image,
    plan_conversion,
)
from eggnet_ros.core.mgv_upsample import mgv_tensor
from eggnet_ros.core.model_paths import AUTO_MODEL, auto_model_name, resolve_model_path
from eggnet_ros.motion import (
    CameraModel,
    ImuSamples,
    MotionError,
    exposure_window,
    frame_motion,
)
from eggnet_ros.motion.mgv import CoarseMGV, blur_extent_coarse, mgv_coarse

_LOG = logging.getLogger(__name__)

Status = Literal["deblurred", "passthrough", "dropped"]
#: (N, C, H, W) image in [0, 1], (N, 6, H, W) MGVs in px -> (N, C, H, W) deblurred image.
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CudaUnavailableError(RuntimeError):
    """CUDA was requested with ``require_cuda`` but torch sees no usable GPU."""


@dataclass
class FrameResult:
    """Outcome of one frame.

    ``image`` has the input's dtype, shape and encoding; it is ``None`` exactly when
    ``status == "dropped"`` so that a dropped frame cannot be published by accident.
    ``imu_covered`` tells whether the IMU covered the whole exposure window (diagnostics).
    ``fallback`` is True when the frame could not be deblurred (``reason`` says why) - as opposed
    to a deliberate passthrough of a frame with less than ``min_blur_px`` of blur.
    ``timings`` are milliseconds, split by where the work runs so that what stalls the node's
    thread is visible apart from what the device does:

    - host (the calling thread): ``motion`` (exposure window, gyro integration, the MGVs on
      their coarse grid, blur extent), ``upload`` (hand the frame's integers and the grid to the
      device), ``download`` (fetch the output integers); ``host`` is their sum, ``host_cpu`` the
      thread CPU time they took (less than ``host`` when the thread waited for a core);
    - device (where the model runs; on a CPU device the same thread): ``prepare`` (image to
      float, MGV grid to full resolution), ``model`` (the network alone), ``finish`` (finite
      check, clamp/scale/round/cast, layout); each ends with a device synchronisation;
    - ``convert`` = upload + prepare + finish + download; ``total`` = wall time of the call.
    """

    image: np.ndarray | None
    status: Status
    reason: str
    blur_px: float = math.nan
    imu_covered: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    fallback: bool = False


def select_device(requested: str, require_cuda: bool) -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda`` to a device, falling back to CPU unless CUDA is required."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if require_cuda:
        raise CudaUnavailableError(
            f"device={requested!r} with require_cuda=true, but torch {torch.__version__} sees no CUDA device "
            f"(torch.version.cuda={torch.version.cuda})")
    if requested == "cuda":
        _LOG.warning("CUDA requested but not available (torch %s): running on CPU", torch.__version__)
    return torch.device("cpu")


def select_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``precision`` on ``device`` (None = plain fp32)."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if precision == "fp16" and device.type != "cuda":
        _LOG.warning("precision fp16 is only used on CUDA; running fp32 on %s", device)
        return None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


class _ThreadScratch(threading.local):
    """State each thread reuses across frames, so ``process()`` stays re-entrant without locks."""

    def __init__(self) -> None:
        #: float32 work buffers by role ("input", "mgv"), reallocated when the shape changes
        self.buffers: dict[str, np.ndarray] = {}
        #: last coarse MGV grid step per (width, height): usually saves the probe evaluation
        self.mgv_step: dict[tuple[int, int], float] = {}
        #: page-locked upload buffers (see Conversion.upload)
        self.pinned: dict[object, torch.Tensor] = {}


class DeblurProcessor:
    """Deblur frames with EggNet (or any ``model(image, mgv)`` callable).

    Args:
        config: processing settings; ``config.model`` is loaded when ``model`` is None.
        model: a ready model (tests, benchmarks); its input mode is read from ``model.config``
            when present, else from ``input_mode``.
        input_mode: input mode of a callable ``model`` without a ``config``.
    """

    def __init__(self, config: ProcessorConfig | None = None, model: ModelFn | None = None,
                 input_mode: InputMode | None = None) -> None:
        self.config = config or ProcessorConfig()
        self.device = select_device(self.config.device, self.config.require_cuda)
        self.autocast_dtype = select_dtype(self.config.precision, self.device)
        self.model_card = None
        #: What ``config.model`` resolved to ("auto" becomes a shipped name for this device).
        self.model_name = self.config.model
        if model is None:
            if self.model_name == AUTO_MODEL:
                self.model_name = auto_model_name(self.device.type)
            model = self._load(self.model_name)
        elif isinstance(model, torch.nn.Module):
            model = model.to(self.device).eval()
        self.model: ModelFn = model
        own_mode = getattr(getattr(model, "config", None), "input_mode", None)
        if own_mode and input_mode and own_mode != input_mode:
            raise ValueError(f"input_mode={input_mode!r} contradicts the model's own {own_mode!r}")
        self.input_mode: InputMode = own_mode or input_mode or "rgb"
        self._conversions: dict[str, Conversion | Exception] = {}
        self._local = _ThreadScratch()

    def _scratch(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 work buffer reused across frames (per thread, so process() stays re-entrant)."""
        bufs = self._local.buffers
        buf = bufs.get(key)
        if buf is None or buf.shape != shape:
            buf = bufs[key] = np.empty(shape, np.float32)
        return buf

    def _load(self, name: str) -> ModelFn:
        from eggnet_ros.model import load_model  # torch-heavy; only when a file is to be read

        path = resolve_model_path(name)
        model, card = load_model(str(path), device=str(self.device), backend=self.config.deform_backend)
        self.model_card = card
        _LOG.info("loaded model %s on %s", path, self.device)
        return model.eval()

    # -- configuration ---------------------------------------------------------------------------
    def describe(self) -> str:
        """One line for the start-up log."""
        prec = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.autocast_dtype]
        cfg = self.config
        return (f"model={self.model_name} input_mode={self.input_mode} device={self.device} precision={prec} "
                f"min_blur_px={cfg.min_blur_px} fallback={cfg.fallback}")

    def update(self, **changes: object) -> None:
        """Change settings that need no model reload (timing, rotation, thresholds, fallback).

        ``changes`` are ``ProcessorConfig`` fields, plus ``motion`` sub-fields and ``timing``
        sub-fields by name (e.g. ``exposure_time=0.01``, ``rotation_cam_imu=(...)``).
        """
        fixed = {"model", "device", "precision", "deform_backend", "require_cuda"}
        if fixed & set(changes):
            raise ValueError(f"{sorted(fixed & set(changes))} cannot change without a restart")
        timing_f = {f.name for f in dataclasses.fields(ExposureTiming)}
        motion_f = {f.name for f in dataclasses.fields(MotionConfig)}
        t_ch = {k: v for k, v in changes.items() if k in timing_f}
        m_ch = {k: v for k, v in changes.items() if k in motion_f - {"timing"}}
        p_ch = {k: v for k, v in changes.items() if k not in timing_f and k not in motion_f}
        motion = self.config.motion
        if t_ch:
            motion = dataclasses.replace(motion, timing=dataclasses.replace(motion.timing, **t_ch))
        if m_ch:
            motion = dataclasses.replace(motion, **m_ch)
        self.config = dataclasses.replace(self.config, motion=motion, **p_ch)

    def warmup(self, height: int, width: int) -> float:
        """Run the network once on a blank frame of this size; returns the time it took (ms).

        The first call pays for allocator growth, kernel selection (cuDNN autotuning) and lazy
        initialisation - hundreds of ms to seconds - which a live node should spend before the
        first real frame, not on it.
        """
        from eggnet_ros.core.encodings import model_channels

        t0 = time.perf_counter()
        x = torch.zeros(1, model_channels(self.input_mode), height, width, device=self.device)
        m = torch.zeros(1, 6, height, width, device=self.device)
        amp = torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                             enabled=self.autocast_dtype is not None)
        with torch.inference_mode(), amp:
            self.model(x, m)
        self._sync()
        return (time.perf_counter() - t0) * 1e3

    def conversion(self, encoding: str) -> Conversion:
        """The (cached) conversion for ``encoding``; raises for unsupported encodings/modes."""
        conv = self._conversions.get(encoding)
        if conv is None:
            try:
                conv = plan_conversion(encoding, self.input_mode)
                if not conv.native:
                    _LOG.info("camera encoding differs from the model's input: %s", conv.description)
            except (UnsupportedEncodingError, UnsupportedConversionError) as exc:
                conv = exc
            self._conversions[encoding] = conv
        if isinstance(conv, Exception):
            raise conv
        return conv

    def exposure_window(self, stamp: float, height: int, exposure_time: float | None = None):
        """The frame's exposure window in the IMU clock (what the node waits for)."""
        return exposure_window(stamp, self._timing(exposure_time), height)

    def _timing(self, exposure_time: float | None, cfg: ProcessorConfig | None = None) -> ExposureTiming:
        timing = (cfg or self.config).motion.timing
        if exposure_time is not None and exposure_time != timing.exposure_time:
            timing = dataclasses.replace(timing, exposure_time=float(exposure_time))
        return timing

    # -- processing ------------------------------------------------------------------------------
    def reject(self, image: np.ndarray | None, reason: str, blur_px: float = math.nan,
               imu_covered: bool = False, timings: dict[str, float] | None = None,
               cfg: ProcessorConfig | None = None) -> FrameResult:
        """The configured fallback for a frame that cannot be deblurred (pass through or drop)."""
        cfg = cfg or self.config
        status: Status = "dropped" if cfg.fallback == "drop" else "passthrough"
        return FrameResult(None if status == "dropped" else image, status, reason, blur_px, imu_covered,
                           timings or {}, fallback=True)

    def process(self, image: np.ndarray, encoding: str, stamp: float, imu: ImuSamples | None,
                camera: CameraModel | None, *, exposure_time: float | None = None) -> FrameResult:
        """Deblur one frame; see :class:`FrameResult`. ``exposure_time`` overrides the config's."""
        t0, c0 = time.perf_counter(), time.thread_time()
        timings: dict[str, float] = {}
        cfg = self.config  # one consistent snapshot even if update() runs concurrently

        def fallback(reason: str, blur: float = math.nan, covered: bool = False) -> FrameResult:
            timings["total"] = (time.perf_counter() - t0) * 1e3
            return self.reject(image, reason, blur, covered, timings, cfg)

        try:
            conv = self.conversion(encoding)
            check_image(image, conv.encoding)
        except ValueError as exc:
            return fallback(str(exc))
        height, width = image.shape[:2]
        if camera is None:
            return fallback("no camera_info received yet")
        if (camera.width, camera.height) != (width, height):
            return fallback(f"camera_info size {camera.width}x{camera.height} != image size {width}x{height}")

        motion_cfg = cfg.motion
        timing = self._timing(exposure_time, cfg)
        if timing is not motion_cfg.timing:
            motion_cfg = dataclasses.replace(motion_cfg, timing=timing)
        try:
            window = exposure_window(stamp, timing, height)
        except ValueError as exc:
            return fallback(f"exposure timing: {exc}")
        if imu is None or len(imu.t) < 2 or not imu.covers(window.start, window.end):
            return fallback(f"IMU does not cover the exposure window [{window.start:.6f}, {window.end:.6f}]")
        try:  # raises MotionError for IMU gaps > max_imu_gap inside the window
            motion = frame_motion(imu, stamp, height, motion_cfg)
            cam = camera if conv.downscale == 1 else camera.resized(width // conv.downscale,
                                                                    height // conv.downscale)
            # Only the coarse grid on the host: the full field is built next to the model. The
            # last frame's grid step (per thread and size) usually saves the probe evaluation.
            hints = self._local.mgv_step
            coarse = mgv_coarse(motion, cam, start_step=hints.get((cam.width, cam.height)))
            hints[(cam.width, cam.height)] = coarse.step
        except MotionError as exc:  # covered at both ends, but with a gap inside
            return fallback(f"motion: {exc}")
        except ValueError as exc:
            return fallback(f"motion: {exc}", covered=True)
        # bilinear interpolation of finite samples is finite: checking the grid checks the field
        finite = bool(np.isfinite(coarse.values).all())
        blur = float(blur_extent_coarse(coarse)) * conv.downscale if finite else math.nan
        timings["motion"] = (time.perf_counter() - t0) * 1e3
        timings["host_cpu"] = (time.thread_time() - c0) * 1e3
        if not math.isfinite(blur):
            return fallback("MGV field is not finite", covered=True)
        if blur < cfg.min_blur_px:
            timings["host"] = timings["motion"]
            timings["total"] = (time.perf_counter() - t0) * 1e3
            reason = f"blur {blur:.2f} px < min_blur_px {cfg.min_blur_px}"
            return FrameResult(image, "passthrough", reason, blur, True, timings)

        try:
            out = self._run(conv, image, coarse, timings)
        except (RuntimeError, ValueError) as exc:  # e.g. CUDA OOM: one bad frame, not a dead node
            _LOG.debug("model failed", exc_info=True)
            return fallback(f"model failed: {exc}", blur, True)
        finally:
            timings["host"] = sum(timings.get(k, 0.0) for k in ("motion", "upload", "download"))
        if out is None:
            return fallback("model output is not finite", blur, True)
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return FrameResult(out, "deblurred", "", blur, True, timings)

    def _run(self, conv: Conversion, image: np.ndarray, coarse: CoarseMGV, timings: dict[str, float]
             ) -> np.ndarray | None:
        """Upload, prepare, model, finish, download; fills the stage ``timings`` (see FrameResult)."""
        on_cpu = self.device.type == "cpu"
        t_up, c_up = time.perf_counter(), time.thread_time()
        raw = conv.upload(image, self.device, pinned=None if on_cpu else self._pinned())
        t_prep, c_prep = time.perf_counter(), time.thread_time()
        in_buf = self._scratch("input", conv.chw_shape(*image.shape[:2])) if on_cpu else None
        x = conv.prepare(raw, out=in_buf)
        mgv_buf = self._scratch("mgv", (6, coarse.height, coarse.width)) if on_cpu else None
        m = mgv_tensor(coarse, self.device, out=mgv_buf).unsqueeze(0)
        m = m.expand(x.shape[0], *m.shape[1:])
        self._sync()
        t_model = time.perf_counter()
        amp = torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                             enabled=self.autocast_dtype is not None)
        with torch.inference_mode(), amp:
            y = self.model(x, m)
        self._sync()
        t_fin = time.perf_counter()
        timings["upload"] = (t_prep - t_up) * 1e3
        timings["prepare"] = (t_model - t_prep) * 1e3
        timings["model"] = (t_fin - t_model) * 1e3
        if y.shape != x.shape:
            raise ValueError(f"model returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
        finite = math.isfinite(float(y.float().sum()))  # one pass, no mask; NaN/inf propagate
        q = conv.finish(y) if finite else None
        self._sync()
        t_down, c_down = time.perf_counter(), time.thread_time()
        out = conv.download(q) if q is not None else None
        t_end, c_end = time.perf_counter(), time.thread_time()
        timings["host_cpu"] = timings.get("host_cpu", 0.0) + ((c_prep - c_up) + (c_end - c_down)) * 1e3
        timings["finish"] = (t_down - t_fin) * 1e3
        timings["download"] = (t_end - t_down) * 1e3
        timings["convert"] = timings["upload"] + timings["prepare"] + timings["finish"] + timings["download"]
        return out

    def _pinned(self) -> dict:
        """This thread's cache of page-locked upload buffers (see Conversion.upload)."""
        return self._local.pinned

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
