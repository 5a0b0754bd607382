"""Blur-overlay diagnostic: the gyro-predicted blur path of a grid of points on the blurred frame.

Why: calibration errors are invisible in a deblurred output (the network just does less), but
obvious on the input: if the rotation mapping, focal length or time offset is wrong, the drawn
streaks do not follow the smeared edges. Each streak is the full trajectory through all n
sub-exposure samples (per-row rotations, so rolling shutter is included): green dot = start of
the exposure, white = exposure centre (the grid point), red = end. ``gain`` magnifies the streak
about its centre for mild blur (the factor is printed on the image).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from .layout import Capture
from .sync import FrameSync, capture_imu, frame_sync, load_frame, streak_paths

_LOG = logging.getLogger(__name__)


def grid_points(width: int, height: int, cols: int = 12, rows: int | None = None) -> np.ndarray:
    """(P, 2) pixel positions of a centred ``cols`` x ``rows`` grid (rows from the aspect ratio)."""
    if rows is None:
        rows = max(round(cols * height / width), 2)
    us = (np.arange(cols) + 0.5) * width / cols - 0.5
    vs = (np.arange(rows) + 0.5) * height / rows - 0.5
    uu, vv = np.meshgrid(us, vs)
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


def draw_streaks(
    image_rgb: np.ndarray, paths: np.ndarray, gain: float = 1.0, thickness: int = 2
) -> np.ndarray:
    """Draw ``paths`` (P, n, 2) on a copy of ``image_rgb`` (start green, centre white, end red)."""
    out = np.ascontiguousarray(image_rgb.copy())
    n = paths.shape[1]
    centre = paths[:, n // 2 : n // 2 + 1]
    drawn = centre + gain * (paths - centre)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    for p in drawn:
        pts = np.round(p * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], False, (0, 0, 0), thickness + 2, cv2.LINE_AA, shift)
        cv2.polylines(out, [pts], False, (255, 230, 0), thickness, cv2.LINE_AA, shift)
        for idx, colour in ((0, (0, 220, 0)), (n - 1, (255, 40, 40)), (n // 2, (255, 255, 255))):
            c = tuple(int(v) for v in np.round(p[idx] * (1 << shift)))
            cv2.circle(out, c, (thickness + 1) << shift, colour, -1, cv2.LINE_AA, shift)
    return out


def _label(image: np.ndarray, lines: list[str]) -> None:
    y = 22
    for text in lines:
        cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        y += 24


def render_overlay(
    capture: Capture,
    index: int,
    scale: float = 1.0,
    gain: float = 1.0,
    cols: int = 12,
    time_offset: float | None = None,
    n_samples: int = 13,
) -> tuple[np.ndarray, FrameSync, np.ndarray]:
    """(overlay RGB, the frame's sync, paths (P, n, 2) in pixels of the scaled frame)."""
    imu = capture_imu(capture)
    sync = frame_sync(capture, index, imu, scale=scale, n_samples=n_samples, time_offset=time_offset)
    frame = load_frame(capture, index, scale)
    pts = grid_points(sync.camera.width, sync.camera.height, cols)
    paths = streak_paths(sync, pts)
    out = draw_streaks(frame, paths, gain, thickness=max(1, round(min(frame.shape[:2]) / 400)))
    lengths = np.linalg.norm(paths[:, -1] - paths[:, 0], axis=1)
    offset = capture.rig.time_offset if time_offset is None else time_offset
    _label(
        out,
        [
            f"{capture.frames[index].file}  offset {offset * 1e3:+.2f} ms  scale {scale:g}"
            + (f"  streaks x{gain:g}" if gain != 1 else ""),
            f"start->end length: median {np.median(lengths):.1f} px, max {lengths.max():.1f} px",
            "green = exposure start, white = centre, red = end",
        ],
    )
    return out, sync, paths


def write_overlay(capture: Capture, index: int, out: str | Path, **kw: object) -> Path:
    image, _, _ = render_overlay(capture, index, **kw)  # type: ignore[arg-type]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {out}")
    _LOG.info("overlay of %s -> %s", capture.frames[index].file, out)
    return out
