"""Motion guidance vectors (MGVs): the 6-channel gyro input of EggNet's GTM (paper eqs. 14-16).

.. _mgv-channels:

``MGV_CHANNELS = ("pre_dx", "pre_dy", "pro_dx", "pro_dy", "centroid_dx", "centroid_dy")`` is the
contract with the model. For every pixel ``p`` of the image described by ``camera`` (the pixel's
position at its row's exposure centre ``t_c``), with ``x(t)`` the pixel the same scene point
occupies at time ``t``:

- ``pre``  = ``x(t_start) - p``: centre -> start of the row's exposure (paper's pre-MGV),
- ``pro``  = ``x(t_end) - p``: centre -> end of the exposure (paper's pro-MGV, eq. 14),
- ``centroid`` = ``mean_i x(t_i) - p`` over the ``n`` uniform sample times (start and end
  included): the offset of the blur trajectory's centroid from the sharp pixel, which is where
  a box-filter blur (eq. 13, mean of the sub-frames) puts the pixel's "centre of mass".

Units are pixels of ``camera``; x = right, y = down. ``x(t)`` follows the pure-rotation
homography ``K R K^-1`` (eq. 6) for a pinhole camera; with distortion the pixel is undistorted to
a ray, rotated, and re-distorted, so the vectors are right in the raw image. With a rolling
shutter each row uses its own exposure window.

Speed: the field is smooth, so it is evaluated exactly on a coarse grid and upsampled bilinearly
(one SIMD pass per channel with cv2.resize, the half-cell border extrapolated linearly). The
grid is refined until the interpolation error bound ``3/8 (max|d2x| + max|d2y|)`` (second
differences on the grid, i.e. ``h^2 f''``; 1/8 inside, 3/8 for the extrapolated border) is below
``tolerance_px``; small images and ``grid_step=1`` are evaluated exactly at every pixel.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from .camera import CameraModel
from .trajectory import FrameMotion

_LOG = logging.getLogger(__name__)

MGV_CHANNELS: tuple[str, ...] = ("pre_dx", "pre_dy", "pro_dx", "pro_dy", "centroid_dx", "centroid_dy")
#: Default bound on the interpolation error (px): well below gyro noise and calibration error.
DEFAULT_TOLERANCE_PX = 0.02
#: Coarse grid steps tried, coarse to fine, before falling back to exact evaluation.
_STEPS = (32, 16, 8, 4)
#: Elements (samples x pixels) evaluated per chunk in exact mode, bounds temporary memory.
_CHUNK_ELEMENTS = 1 << 21


def _evaluate(motion: FrameMotion, camera: CameraModel, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Exact MGV channels (6, len(vs), len(us)) float64 at the pixel grid ``us`` x ``vs``."""
    n = motion.n_samples
    h, w = len(vs), len(us)
    rot = motion.rotations_at_rows((vs + 0.5) / camera.height)  # (1 or h, n, 3, 3)
    out = np.empty((6, h, w))
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // (n * w))
    distorted = camera.is_distorted
    if distorted:
        rays = camera.grid_rays(us, vs)
        base = camera.project(rays)
    else:
        Hm = camera.K @ rot @ np.linalg.inv(camera.K)
        coef = np.moveaxis(Hm, 1, 0)[..., None]  # (n, 1 or h, 3, 3, 1)
    u = us[None, None, :]
    for j0 in range(0, h, rows_per_chunk):
        j1 = min(j0 + rows_per_chunk, h)
        if distorted:
            r = rot if rot.shape[0] == 1 else rot[j0:j1]
            moved = (
                np.einsum("rnab,rwb->nrwa", r, rays[j0:j1])
                if r.shape[0] > 1
                else np.einsum("nab,rwb->nrwa", r[0], rays[j0:j1])
            )
            disp = camera.project(moved) - base[None, j0:j1]
            dx, dy = disp[..., 0], disp[..., 1]
        else:
            c = coef if coef.shape[1] == 1 else coef[:, j0:j1]
            v = vs[None, j0:j1, None]
            den = c[:, :, 2, 0] * u + (c[:, :, 2, 1] * v + c[:, :, 2, 2])
            inv = 1.0 / den
            dx = (c[:, :, 0, 0] * u + (c[:, :, 0, 1] * v + c[:, :, 0, 2])) * inv - u
            dy = (c[:, :, 1, 0] * u + (c[:, :, 1, 1] * v + c[:, :, 1, 2])) * inv - v
        out[0, j0:j1], out[1, j0:j1] = dx[0], dy[0]
        out[2, j0:j1], out[3, j0:j1] = dx[-1], dy[-1]
        out[4, j0:j1], out[5, j0:j1] = dx.mean(axis=0), dy.mean(axis=0)
    return out


def _cell_centres(size: int, cells: int) -> np.ndarray:
    """Pixel positions that cv2.resize maps coarse sample ``j`` to: ``(j + .5) size/cells - .5``."""
    return (np.arange(cells) + 0.5) * (size / cells) - 0.5


def error_bound(coarse: np.ndarray) -> float:
    """Bilinear-upsampling error bound (px) from a coarse field's second differences.

    ``|f - I f| <= hx^2/8 max|f_xx| + hy^2/8 max|f_yy|`` inside cells; linear extrapolation over
    the half-cell border triples the constant. ``h^2 f''`` is estimated by second differences.
    """
    est = 0.0
    if coarse.shape[-1] >= 3:
        est += float(np.max(np.abs(np.diff(coarse, 2, axis=-1))))
    if coarse.shape[-2] >= 3:
        est += float(np.max(np.abs(np.diff(coarse, 2, axis=-2))))
    return 3.0 / 8.0 * est


def _extrapolate_border(img: np.ndarray, first: float, last: float, axis: int) -> None:
    """Replace cv2.resize's clamped border (outside the first/last sample) by linear extrapolation."""
    size = img.shape[axis]
    a = int(np.ceil(first))
    b = int(np.floor(last))
    idx = [slice(None)] * img.ndim

    def take(i: int) -> np.ndarray:
        idx[axis] = slice(i, i + 1)
        return img[tuple(idx)]

    shape = [1] * img.ndim
    shape[axis] = -1
    if a > 0:
        x = (np.arange(0, a, dtype=np.float32) - a).reshape(shape)
        lo, hi = take(a), take(a + 1)
        idx[axis] = slice(0, a)
        img[tuple(idx)] = lo + x * (hi - lo)
    if b < size - 1:
        x = (np.arange(b + 1, size, dtype=np.float32) - b).reshape(shape)
        lo, hi = take(b - 1), take(b)
        idx[axis] = slice(b + 1, size)
        img[tuple(idx)] = hi + x * (hi - lo)


def _upsample(coarse: np.ndarray, width: int, height: int, out: np.ndarray) -> None:
    src = np.ascontiguousarray(coarse, dtype=np.float32)
    h, w = src.shape[-2:]
    for c in range(src.shape[0]):
        cv2.resize(src[c], (width, height), dst=out[c], interpolation=cv2.INTER_LINEAR)
    _extrapolate_border(out, _cell_centres(width, w)[0], _cell_centres(width, w)[-1], axis=2)
    _extrapolate_border(out, _cell_centres(height, h)[0], _cell_centres(height, h)[-1], axis=1)


def mgv_field(
    motion: FrameMotion,
    camera: CameraModel,
    *,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    grid_step: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The MGV field (6, H, W) float32 at ``camera``'s size; channels: ``MGV_CHANNELS``.

    ``grid_step=None`` picks the coarsest grid (32, 16, 8 or 4 px) whose interpolation error
    bound is within ``tolerance_px``, else evaluates exactly; ``grid_step=1`` forces exact
    evaluation at every pixel, any other value forces that grid. ``out`` (6, H, W) float32
    C-contiguous may be passed to reuse a buffer. ``motion`` may come from a frame of another
    resolution: rows are matched through their normalised positions.
    """
    W, H = camera.width, camera.height
    if out is None:
        out = np.empty((6, H, W), dtype=np.float32)
    elif out.shape != (6, H, W) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(6, H, W)}")
    if grid_step is not None and grid_step < 1:
        raise ValueError("grid_step must be >= 1")
    steps: tuple[int, ...]
    if grid_step is None:
        steps = tuple(s for s in _STEPS if min(W, H) >= 4 * s)
    else:
        steps = () if grid_step == 1 else (int(grid_step),)
    for s in steps:
        w, h = max(-(-W // s), 2), max(-(-H // s), 2)
        coarse = _evaluate(motion, camera, _cell_centres(W, w), _cell_centres(H, h))
        if grid_step is not None or error_bound(coarse) <= tolerance_px:
            _upsample(coarse, W, H, out)
            return out
    out[...] = _evaluate(motion, camera, np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    return out


def blur_extent_px(mgv: np.ndarray, percentile: float = 95.0) -> float:
    """Robust maximum streak length (px): the 95th percentile of ``|pro - pre|`` over pixels.

    A percentile rather than the maximum so a few extreme corner pixels (strong roll) do not
    decide whether a frame is worth deblurring. The field is smooth, so every 4th pixel in each
    direction is enough and keeps this cheap on megapixel frames.
    """
    mgv = np.asarray(mgv)
    if mgv.ndim != 3 or mgv.shape[0] != 6:
        raise ValueError(f"expected an MGV field of shape (6, H, W), got {mgv.shape}")
    sub = mgv[:, ::4, ::4].astype(np.float64)
    length = np.hypot(sub[2] - sub[0], sub[3] - sub[1])
    return float(np.percentile(length, percentile))
