"""Batch deblurring of a capture folder through the node's processing core.

Every frame goes through :class:`eggnet_ros.core.DeblurProcessor` with the rig's calibration,
exactly as the node would process it, and the deblurred frame is written as PNG next to a
per-frame CSV report (status, predicted blur, no-reference sharpness of input and output).

Scale. The shipped models were trained on blur whose median extent is 5-25 px. Real shake can
be far longer (the SHIELD frames: ~100 px at full resolution). A network cannot undo a streak
longer than its receptive field and training distribution, so instead of hiding that we process
at a scale where the blur is in range: the frame and K are downscaled by ``scale`` (the MGVs,
computed from the scaled K, shrink with it), the network deblurs the small frame, and its
*residual* (output - small input) is upscaled and added to the full-resolution input. Residual,
not result: the full-resolution detail the network never saw (texture across the streak,
sensor noise) is kept, and where the network changes nothing the output equals the input
exactly instead of a resampled copy. ``scale="auto"`` picks the largest scale at which the
gyro-predicted blur (95th percentile over a grid, median over frames) is at most
``target_blur_px``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from eggnet_ros.config import ProcessorConfig
from eggnet_ros.motion import ImuSamples, MotionError

from .layout import Capture, read_capture
from .overlay import grid_points
from .sharpness import Sharpness, compare
from .sync import capture_camera, capture_imu, frame_sync, load_frame, streak_paths

if TYPE_CHECKING:
    from eggnet_ros.core import DeblurProcessor

_LOG = logging.getLogger(__name__)

#: Median blur extent range of the shipped models' training data (px), see docs/captures.md.
TRAINING_BLUR_PX = (5.0, 25.0)
DEFAULT_TARGET_BLUR_PX = 20.0


@dataclass(frozen=True)
class FrameReport:
    file: str
    status: str
    reason: str
    scale: float
    blur_px_full: float
    blur_px_processed: float
    input: Sharpness
    output: Sharpness
    ms: float
    #: The same measures at the processing scale (network input vs network output); equal to
    #: input/output when scale == 1. Long blur processed small is best judged here: at full
    #: resolution the unchanged fine detail dilutes the change.
    input_processed: Sharpness | None = None
    output_processed: Sharpness | None = None


def predicted_blur_px(capture: Capture, index: int, imu: ImuSamples | None = None, cols: int = 8) -> float:
    """95th percentile of the start->end streak length (full-resolution px) over a point grid."""
    imu = capture_imu(capture) if imu is None else imu
    sync = frame_sync(capture, index, imu)
    paths = streak_paths(sync, grid_points(sync.camera.width, sync.camera.height, cols))
    extent = np.linalg.norm(paths.max(axis=1) - paths.min(axis=1), axis=1)
    return float(np.percentile(extent, 95))


def auto_scale(capture: Capture, target_blur_px: float = DEFAULT_TARGET_BLUR_PX) -> tuple[float, float]:
    """(scale, median full-resolution blur) so that the median frame's blur is <= target."""
    imu = capture_imu(capture)
    blurs = []
    for i in range(len(capture)):
        try:
            blurs.append(predicted_blur_px(capture, i, imu))
        except MotionError:
            continue
    if not blurs:
        raise MotionError(f"no frame of {capture.folder} is covered by its gyro log")
    median = float(np.median(blurs))
    scale = 1.0 if median <= target_blur_px else target_blur_px / median
    return scale, median


def training_blur_range(processor: DeblurProcessor | None) -> tuple[float, float]:
    """The model card's ``training_data.blur_px_range`` when it has one, else TRAINING_BLUR_PX."""
    card = getattr(processor, "model_card", None)
    data = getattr(card, "training_data", None)
    if isinstance(data, dict) and isinstance(data.get("blur_px_range"), (list, tuple)):
        lo, hi = data["blur_px_range"][:2]
        return float(lo), float(hi)
    return TRAINING_BLUR_PX


def check_blur_range(
    blur_px: float, scale: float, blur_range: tuple[float, float] = TRAINING_BLUR_PX
) -> None:
    """Warn (with numbers) when the blur the network sees is far outside its training range."""
    lo, hi = blur_range
    seen = blur_px * scale
    if seen > 1.5 * hi:
        _LOG.warning(
            "predicted blur %.0f px (%.0f px at scale %.3g) is far beyond the model's training range "
            "(median %g-%g px); use --scale auto or a smaller --scale",
            blur_px,
            seen,
            scale,
            lo,
            hi,
        )


def _add_residual(full: np.ndarray, small_in: np.ndarray, small_out: np.ndarray) -> np.ndarray:
    residual = small_out.astype(np.float32) - small_in.astype(np.float32)
    up = cv2.resize(residual, (full.shape[1], full.shape[0]), interpolation=cv2.INTER_CUBIC)
    maxval = 255.0 if full.dtype == np.uint8 else 65535.0
    return np.clip(np.round(full.astype(np.float32) + up), 0, maxval).astype(full.dtype)


def side_by_side(
    left: np.ndarray,
    right: np.ndarray,
    labels: tuple[str, str] = ("input", "deblurred"),
    max_width: int = 2400,
) -> np.ndarray:
    """Input | output, labelled, scaled so the pair is at most ``max_width`` wide."""
    pair = np.concatenate([left, right], axis=1)
    if pair.shape[1] > max_width:
        s = max_width / pair.shape[1]
        pair = cv2.resize(pair, (max_width, round(pair.shape[0] * s)), interpolation=cv2.INTER_AREA)
    half = pair.shape[1] // 2
    for x, text in ((10, labels[0]), (half + 10, labels[1])):
        cv2.putText(pair, text, (x, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 5, cv2.LINE_AA)
        cv2.putText(pair, text, (x, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
    return pair


def deblur_folder(
    folder: str | Path,
    out_dir: str | Path,
    processor_config: ProcessorConfig | None = None,
    scale: float | str = 1.0,
    processor: DeblurProcessor | None = None,
    frames: list[int] | None = None,
    target_blur_px: float = DEFAULT_TARGET_BLUR_PX,
    side_by_side_frames: bool = False,
    crop: tuple[int, int, int, int] | None = None,
) -> list[FrameReport]:
    """Deblur the frames of capture ``folder`` into ``out_dir`` (PNG + ``report.csv``).

    ``processor_config`` supplies model/device/precision; its motion settings are replaced by
    the capture's rig (rotation, Kalibr offset, readout, stamp convention, per-frame exposure).
    Frames without gyro coverage follow the config's fallback (passthrough: the input is written).
    ``crop`` (x, y, w, h in full-resolution pixels) limits the side-by-side image to a region,
    so mild blur stays visible. ``processor``: a ready DeblurProcessor (tests, reuse across
    folders); its motion settings are updated to the rig's.
    """
    capture = read_capture(folder)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = processor_config or ProcessorConfig()
    exposures = [f.exposure for f in capture.frames]
    motion = capture.rig.motion_config(float(np.median(exposures)), n_samples=base.motion.n_samples)
    motion = dataclasses.replace(motion, max_imu_gap=base.motion.max_imu_gap)
    config = dataclasses.replace(base, motion=motion)
    if processor is None:
        from eggnet_ros.core import DeblurProcessor  # torch: only when actually deblurring

        processor = DeblurProcessor(config)
    else:
        processor.update(
            **{f.name: getattr(motion.timing, f.name) for f in dataclasses.fields(motion.timing)},
            rotation_cam_imu=motion.rotation_cam_imu,
            n_samples=motion.n_samples,
        )

    if scale == "auto":
        s, blur_med = auto_scale(capture, target_blur_px)
        _LOG.info("median predicted blur %.1f px at full resolution -> processing at scale %.3f", blur_med, s)
    else:
        s = float(scale)
        if not (0 < s <= 1 and math.isfinite(s)):
            raise ValueError(f"scale must be in (0, 1] or 'auto', got {scale}")
    imu = capture_imu(capture)
    camera = capture_camera(capture, s)
    blur_range = training_blur_range(processor)
    reports = []
    for i in range(len(capture)) if frames is None else frames:
        entry = capture.frames[i]
        t0 = time.perf_counter()
        full = load_frame(capture, i, 1.0)
        small = full if s == 1.0 else load_frame(capture, i, s)
        try:
            blur_full = predicted_blur_px(capture, i, imu)
            check_blur_range(blur_full, s, blur_range)
        except MotionError:
            blur_full = math.nan
        res = processor.process(small, "rgb8", entry.stamp, imu, camera, exposure_time=entry.exposure)
        if res.status == "deblurred":
            out = res.image if s == 1.0 else _add_residual(full, small, res.image)
        elif res.status == "passthrough":
            out = full
        else:
            out = None
        ms = (time.perf_counter() - t0) * 1e3
        stem = Path(entry.file).stem
        if out is not None:
            cv2.imwrite(str(out_dir / f"{stem}.png"), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
            s_in, s_out = compare(full, out)
            p_in, p_out = (
                (s_in, s_out) if s == 1.0 else compare(small, res.image if res.image is not None else small)
            )
            if side_by_side_frames:
                a, b = full, out
                if crop is not None:
                    x, y, w, h = crop
                    a, b = full[y : y + h, x : x + w], out[y : y + h, x : x + w]
                pair = side_by_side(a, b, ("input", f"deblurred ({res.status}, scale {s:.2g})"))
                # PNG: JPEG artefacts would blur the very detail being compared
                cv2.imwrite(str(out_dir / f"{stem}_side.png"), cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
        else:
            s_in = s_out = p_in = p_out = Sharpness(math.nan, math.nan, 0.0)
        reports.append(
            FrameReport(
                entry.file, res.status, res.reason, s, blur_full, res.blur_px, s_in, s_out, ms, p_in, p_out
            )
        )
        _LOG.info(
            "%s: %s %s blur %.1f px full / %.1f px processed, grad %.4f -> %.4f, lapvar %.3g -> %.3g",
            entry.file,
            res.status,
            res.reason,
            blur_full,
            res.blur_px,
            s_in.gradient,
            s_out.gradient,
            s_in.laplacian_var,
            s_out.laplacian_var,
        )
    write_report(reports, out_dir / "report.csv")
    return reports


def _g(s: Sharpness | None) -> float:
    return math.nan if s is None else s.gradient


def format_table(reports: list[FrameReport]) -> str:
    """The per-frame table printed by the CLIs (blur in px; sharpness on the input's texture mask)."""
    lines = [
        f"{'frame':<22}{'status':<12}{'scale':>6}{'blur full':>10}{'blur proc':>10}"
        f"{'grad in':>9}{'grad out':>9}{'lapvar in':>11}{'lapvar out':>11}"
        f"{'grad in@p':>10}{'grad out@p':>11}"
    ]
    for r in reports:
        lines.append(
            f"{r.file:<22}{r.status:<12}{r.scale:>6.3f}{r.blur_px_full:>10.1f}{r.blur_px_processed:>10.1f}"
            f"{r.input.gradient:>9.4f}{r.output.gradient:>9.4f}{r.input.laplacian_var:>11.3g}"
            f"{r.output.laplacian_var:>11.3g}"
            f"{_g(r.input_processed):>10.4f}{_g(r.output_processed):>11.4f}"
        )
    return "\n".join(lines)


def write_report(reports: list[FrameReport], path: str | Path) -> None:
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "file",
                "status",
                "scale",
                "blur_px_full",
                "blur_px_processed",
                "grad_in",
                "grad_out",
                "lapvar_in",
                "lapvar_out",
                "texture_coverage",
                "grad_in_processed",
                "grad_out_processed",
                "lapvar_in_processed",
                "lapvar_out_processed",
                "ms",
                "reason",
            ]
        )
        for r in reports:
            w.writerow(
                [
                    r.file,
                    r.status,
                    f"{r.scale:.4f}",
                    f"{r.blur_px_full:.2f}",
                    f"{r.blur_px_processed:.2f}",
                    f"{r.input.gradient:.5f}",
                    f"{r.output.gradient:.5f}",
                    f"{r.input.laplacian_var:.6g}",
                    f"{r.output.laplacian_var:.6g}",
                    f"{r.input.coverage:.3f}",
                    f"{_g(r.input_processed):.5f}",
                    f"{_g(r.output_processed):.5f}",
                    f"{math.nan if r.input_processed is None else r.input_processed.laplacian_var:.6g}",
                    f"{math.nan if r.output_processed is None else r.output_processed.laplacian_var:.6g}",
                    f"{r.ms:.0f}",
                    r.reason,
                ]
            )
