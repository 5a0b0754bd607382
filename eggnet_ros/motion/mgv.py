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
(one SIMD pass per channel with cv2.resize, the half-cell border extrapolated linearly). For a
global-shutter pinhole camera the grid step follows from a rigorous bound on the homographies'
curvature (:func:`pinhole_error_coefficient`), so the error is provably below ``tolerance_px``.
Rolling-shutter and distorted fields are refined until an estimated bound,
``3/8 (max|d2x| + max|d2y|)`` from second differences on the grid (``h^2 f''``), is below the
tolerance. Small images and ``grid_step=1`` are evaluated exactly at every pixel.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .camera import CameraModel
from .trajectory import FrameMotion

_LOG = logging.getLogger(__name__)

#: Channel order of :func:`mgv_field` (the contract with the model; meaning in the module
#: docstring): displacement in px (x right, y down) of each pixel from its row's exposure centre
#: to the start (pre), to the end (pro), and to the mean of the n sample positions (centroid).
MGV_CHANNELS: tuple[str, ...] = ("pre_dx", "pre_dy", "pro_dx", "pro_dy", "centroid_dx", "centroid_dy")
#: Default bound on the interpolation error (px): well below gyro noise and calibration error.
DEFAULT_TOLERANCE_PX = 0.02
#: First (probe) grid step; finer steps are predicted from its error bound.
_PROBE_STEP = 64
#: Below this grid step exact per-pixel evaluation is as cheap and needs no border handling.
_MIN_STEP = 4
#: Elements (samples x pixels) evaluated per chunk in exact mode, bounds temporary memory.
_CHUNK_ELEMENTS = 1 << 21


def _evaluate(motion: FrameMotion, camera: CameraModel, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Exact MGV channels (6, len(vs), len(us)) float32 at the pixel grid ``us`` x ``vs``.

    Evaluated in float32 (coordinates below 1e4 px keep the absolute error below 1e-3 px;
    pinhole ones relative to the principal point). The centre sample is the
    identity and contributes zero displacement, so it is skipped in the centroid sum.
    """
    n = motion.n_samples
    h, w = len(vs), len(us)
    rot = motion.rotations_at_rows((vs + 0.5) / camera.height)  # (1 or h, n, 3, 3)
    others = np.r_[0 : n // 2, n // 2 + 1 : n]
    rot = rot[:, others]
    m = n - 1
    out = np.empty((6, h, w), dtype=np.float32)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // (m * w))
    distorted = camera.is_distorted
    if distorted:
        gx, gy, gu, gv = camera.grid_geometry(us, vs)
        coef = np.moveaxis(rot, 1, 0).astype(np.float32)  # (m, 1 or h, 3, 3)
    else:
        # pixel coordinates relative to the principal point halve float32 rounding
        Kc = camera.K.copy()
        Kc[:2, 2] = 0.0
        Hm = Kc @ rot @ np.linalg.inv(Kc)
        coef = np.moveaxis(Hm, 1, 0).astype(np.float32)  # (m, 1 or h, 3, 3)
        u = (us - camera.K[0, 2]).astype(np.float32)[None, None, :]
    for j0 in range(0, h, rows_per_chunk):
        j1 = min(j0 + rows_per_chunk, h)
        c = coef if coef.shape[1] == 1 else coef[:, j0:j1]
        if distorted:
            x, y = gx[None, j0:j1], gy[None, j0:j1]
            X, Y, Z = (
                c[:, :, k, 0, None] * x + c[:, :, k, 1, None] * y + c[:, :, k, 2, None] for k in range(3)
            )
            pu, pv = camera.project_xyz(X, Y, Z)
            dx, dy = pu - gu[None, j0:j1], pv - gv[None, j0:j1]
        else:
            v = (vs[j0:j1] - camera.K[1, 2]).astype(np.float32)[None, :, None]
            # row-constant parts first: (m, rows, 1) arrays, then one broadcast op per term
            inv = c[:, :, 2, 0, None] * u + (c[:, :, 2, 1, None] * v + c[:, :, 2, 2, None])
            np.reciprocal(inv, out=inv)
            dx = c[:, :, 0, 0, None] * u + (c[:, :, 0, 1, None] * v + c[:, :, 0, 2, None])
            dx *= inv
            dx -= u
            dy = c[:, :, 1, 0, None] * u + (c[:, :, 1, 1, None] * v + c[:, :, 1, 2, None])
            dy *= inv
            dy -= v
        sum_x, sum_y = dx.sum(axis=0), dy.sum(axis=0)
        out[0, j0:j1], out[1, j0:j1] = dx[0], dy[0]
        out[2, j0:j1], out[3, j0:j1] = dx[-1], dy[-1]
        out[4, j0:j1], out[5, j0:j1] = sum_x / n, sum_y / n
    return out


def _cell_centres(size: int, cells: int) -> np.ndarray:
    """Pixel positions that cv2.resize maps coarse sample ``j`` to: ``(j + .5) size/cells - .5``."""
    return (np.arange(cells) + 0.5) * (size / cells) - 0.5


def _max_second_difference(coarse: np.ndarray, axis: int) -> float:
    d2 = np.abs(np.diff(coarse, 2, axis=axis))
    worst = float(np.max(d2))
    if d2.shape[axis] >= 2:
        # curvature can grow towards the border (lens distortion): extrapolate it linearly to
        # the outermost cells, whose half-cell border band is extrapolated, not interpolated
        first, second = np.take(d2, 0, axis=axis), np.take(d2, 1, axis=axis)
        last, before = np.take(d2, -1, axis=axis), np.take(d2, -2, axis=axis)
        worst = max(worst, float(np.max(2 * first - second)), float(np.max(2 * last - before)))
    return worst


def error_bound(coarse: np.ndarray) -> float:
    """Bilinear-upsampling error bound (px) from a coarse field's second differences.

    ``|f - I f| <= hx^2/8 max|f_xx| + hy^2/8 max|f_yy|`` inside cells; linear extrapolation over
    the half-cell border triples the constant. ``h^2 f''`` is estimated by second differences
    (extrapolated to the border cells). An estimate, not a proof: it assumes ``f''`` varies
    little within a cell, which holds for rotation fields; tests compare it with exact fields.
    """
    est = 0.0
    if coarse.shape[-1] >= 3:
        est += _max_second_difference(coarse, -1)
    if coarse.shape[-2] >= 3:
        est += _max_second_difference(coarse, -2)
    return 3.0 / 8.0 * est


def pinhole_error_coefficient(motion: FrameMotion, camera: CameraModel) -> float:
    """``C`` such that bilinear upsampling from a grid of cell size ``<= h`` errs by ``<= C h^2`` px.

    Rigorous for a global-shutter pinhole camera, where every sample is one homography
    ``x = N / D`` (N, D affine in the pixel): ``x_uu = -2 D_u x_u / D`` with
    ``|x_u| <= (|N_u| + max|x| |D_u|) / min D``, and ``max|x|``, ``min D`` are attained at the
    image corners (a projective map keeps the rectangle convex while ``D > 0``). Likewise for
    ``v`` and for ``y``. Bilinear interpolation errs by ``h^2/8 (|f_uu| + |f_vv|)``; the
    linearly extrapolated half-cell border by ``3 h^2/8`` per axis, amplified up to 2x by the
    second axis' extrapolation, hence the constant ``3/4``. The centroid channel's curvature is
    at most the mean of the samples'. Returns ``inf`` when a sample maps part of the image
    behind the camera (``D <= 0``).
    """
    Kc = camera.K.copy()
    Kc[:2, 2] = 0.0
    Hm = Kc @ motion.rotations[0] @ np.linalg.inv(Kc)  # (n, 3, 3) in principal-point coordinates
    cx, cy = camera.K[0, 2], camera.K[1, 2]
    us = np.array([-cx, camera.width - 1 - cx, -cx, camera.width - 1 - cx])
    vs = np.array([-cy, -cy, camera.height - 1 - cy, camera.height - 1 - cy])
    corners = np.stack([us, vs, np.ones(4)])  # (3, 4)
    img = Hm @ corners  # (n, 3, 4)
    d_min = img[:, 2].min(axis=1)
    if np.any(d_min <= 0):
        return float("inf")
    g_u, g_v = np.abs(Hm[:, 2, 0]), np.abs(Hm[:, 2, 1])
    curv = []  # per sample: |f_uu| + |f_vv| bounds for the x and the y channel
    for k in (0, 1):
        c_max = np.abs(img[:, k] / img[:, 2]).max(axis=1)
        du = (np.abs(Hm[:, k, 0]) + c_max * g_u) / d_min
        dv = (np.abs(Hm[:, k, 1]) + c_max * g_v) / d_min
        curv.append(2.0 * (g_u * du + g_v * dv) / d_min)
    curv_arr = np.array(curv)  # (2, n)
    n = motion.n_samples
    worst = max(curv_arr[:, 0].max(), curv_arr[:, -1].max(), curv_arr.sum(axis=1).max() / n)
    return 0.75 * float(worst)


def _extrapolate_border(img: np.ndarray, first: float, last: float, axis: int) -> None:
    """Replace cv2.resize's clamped border (outside the first/last sample) by linear extrapolation.

    Inside the first cell the bilinear field is linear along ``axis``, so continuing the line
    through the first two pixels of that cell gives the extrapolated bilinear patch exactly.
    Done as a tiny matmul (two pixels -> the band) to avoid strided temporaries.
    """
    size = img.shape[axis]
    a, b = int(np.ceil(first)), int(np.floor(last))
    moved = np.moveaxis(img, axis, -1)  # a view: writes go to img
    if a > 0:
        d = np.arange(0, a, dtype=np.float32) - a
        weights = np.stack([1.0 - d, d]).astype(np.float32)  # (2, a)
        moved[..., :a] = moved[..., a : a + 2] @ weights
    if b < size - 1:
        d = np.arange(b + 1, size, dtype=np.float32) - b
        weights = np.stack([-d, 1.0 + d]).astype(np.float32)
        moved[..., b + 1 :] = moved[..., b - 1 : b + 1] @ weights


def _upsample(coarse: np.ndarray, width: int, height: int, out: np.ndarray) -> None:
    src = np.ascontiguousarray(coarse, dtype=np.float32)
    c, h, w = src.shape
    # One call for all channels stacked vertically: cv2.resize's row mapping for the stacked
    # image is exactly the per-channel one shifted by whole channels; only the half-cell bands
    # at each channel's top and bottom blend neighbouring channels, and those rows are
    # overwritten by the extrapolation below anyway.
    cv2.resize(
        src.reshape(c * h, w),
        (width, c * height),
        dst=out.reshape(c * height, width),
        interpolation=cv2.INTER_LINEAR,
    )
    xs, ys = _cell_centres(width, w), _cell_centres(height, h)
    _extrapolate_border(out, xs[0], xs[-1], axis=2)
    _extrapolate_border(out, ys[0], ys[-1], axis=1)


def _grid_cells(size: int, step: float) -> int:
    return max(int(np.ceil(size / step)), 2)


def _coarse(motion: FrameMotion, camera: CameraModel, step: float) -> np.ndarray:
    W, H = camera.width, camera.height
    w, h = _grid_cells(W, step), _grid_cells(H, step)
    return _evaluate(motion, camera, _cell_centres(W, w), _cell_centres(H, h))


@dataclass(frozen=True)
class CoarseMGV:
    """The MGV field sampled on a grid of cell centres: all it takes to rebuild the field.

    ``values`` (6, h, w) float32 are exact MGVs (channels: ``MGV_CHANNELS``) at the centres of
    a w x h division of the ``width`` x ``height`` image: pixel columns :attr:`xs`, rows
    :attr:`ys`, sample ``j`` at ``(j + .5) size/cells - .5``, which is where ``cv2.resize`` and
    ``F.interpolate(align_corners=False)`` map it. The full field is their bilinear
    interpolation with linear extrapolation over the half-cell border (:func:`upsample_mgv`).
    When ``exact``, the grid is every pixel and ``values`` already is the field. Carrying this
    instead of the full field keeps the per-frame host work O(grid): the upsample can run where
    the model runs.
    """

    values: np.ndarray
    width: int
    height: int
    #: Nominal grid step (px) it was built with (NaN when exact or unknown): a hint for the next
    #: frame's :func:`mgv_coarse` (``start_step``).
    step: float = math.nan

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or self.values.shape[0] != 6:
            raise ValueError(f"values must be (6, h, w), got {self.values.shape}")
        if not self.exact and min(self.values.shape[1:]) < 2:
            raise ValueError(f"a coarse grid needs >= 2 samples per axis, got {self.values.shape}")

    @property
    def xs(self) -> np.ndarray:
        return _cell_centres(self.width, self.values.shape[2])

    @property
    def ys(self) -> np.ndarray:
        return _cell_centres(self.height, self.values.shape[1])

    @property
    def exact(self) -> bool:
        return self.values.shape[1:] == (self.height, self.width)


def _exact(motion: FrameMotion, camera: CameraModel) -> CoarseMGV:
    xs, ys = np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64)
    return CoarseMGV(_evaluate(motion, camera, xs, ys), camera.width, camera.height)


def _grid(motion: FrameMotion, camera: CameraModel, step: float) -> CoarseMGV:
    W, H = camera.width, camera.height
    xs, ys = _cell_centres(W, _grid_cells(W, step)), _cell_centres(H, _grid_cells(H, step))
    return CoarseMGV(_evaluate(motion, camera, xs, ys), W, H, float(step))


def mgv_coarse(
    motion: FrameMotion,
    camera: CameraModel,
    *,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    grid_step: int | None = None,
    start_step: float | None = None,
) -> CoarseMGV:
    """The MGV field as a :class:`CoarseMGV`: the grid :func:`mgv_field` would upsample.

    Same arguments and the same grid choice as :func:`mgv_field` (which is
    ``upsample_mgv(mgv_coarse(...))``), so its error bound holds for any faithful upsampler.
    Costs O(grid) - a few hundred samples for moderate motion - instead of O(pixels).

    ``start_step`` (e.g. the previous frame's ``CoarseMGV.step``) replaces the 64 px probe for
    rolling-shutter or distorted fields: motion changes little between frames, so the grid is
    usually accepted after one evaluation instead of two. If its bound is far below the
    tolerance, the coarser step it predicts is tried once, so the grid can grow back as the
    motion calms down. The tolerance is verified either way; only the grid may differ from
    :func:`mgv_field`'s (finer or coarser, never less accurate than ``tolerance_px``).
    """
    W, H = camera.width, camera.height
    if grid_step is not None and not (grid_step == 1 or grid_step >= _MIN_STEP):
        raise ValueError(f"grid_step must be 1 (exact) or >= {_MIN_STEP}")
    if grid_step == 1 or (grid_step is None and min(W, H) < 4 * _MIN_STEP):
        return _exact(motion, camera)
    if grid_step is not None:
        return _grid(motion, camera, grid_step)
    step = float(min(_PROBE_STEP, min(W, H) // 4))
    if motion.is_global_shutter and not camera.is_distorted:
        # pinhole global shutter: the step follows from a rigorous bound, no probing needed
        coef = pinhole_error_coefficient(motion, camera)
        if coef > 0:
            step = min(step, float(np.sqrt(tolerance_px / coef)))
        if step < _MIN_STEP:
            return _exact(motion, camera)
        _LOG.debug("MGV grid step %.1f px, rigorous error bound %.4f px", step, coef * step * step)
        return _grid(motion, camera, step)
    # Otherwise probe on a very coarse grid (or the hint), predict the step from the h^2
    # scaling, verify.
    widest = step
    if start_step is not None and math.isfinite(start_step):
        step = min(widest, max(float(start_step), float(_MIN_STEP)))
    grid = _grid(motion, camera, step)
    bound = error_bound(grid.values)
    if start_step is not None and step < widest and bound < tolerance_px / 4:
        coarser = widest if bound <= 0 else min(widest, 0.9 * step * np.sqrt(tolerance_px / bound))
        if coarser > 1.25 * step:
            wide = _grid(motion, camera, coarser)
            wide_bound = error_bound(wide.values)
            if wide_bound <= tolerance_px:
                grid, bound, step = wide, wide_bound, coarser
    while bound > tolerance_px:
        step = min(0.9 * step * np.sqrt(tolerance_px / bound), 0.75 * step)
        if step < _MIN_STEP:
            return _exact(motion, camera)
        grid = _grid(motion, camera, step)
        bound = error_bound(grid.values)
    _LOG.debug("MGV grid step %.1f px, error bound %.4f px", step, bound)
    return grid


def upsample_mgv(coarse: CoarseMGV, out: np.ndarray | None = None) -> np.ndarray:
    """Full-resolution (6, H, W) float32 field from ``coarse`` (OpenCV bilinear + extrapolated border).

    ``out`` (6, H, W) float32 C-contiguous may be passed to reuse a buffer.
    """
    W, H = coarse.width, coarse.height
    if out is None:
        out = np.empty((6, H, W), dtype=np.float32)
    elif out.shape != (6, H, W) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(6, H, W)}")
    if coarse.exact:
        out[...] = coarse.values
    else:
        _upsample(coarse.values, W, H, out)
    return out


def mgv_field(
    motion: FrameMotion,
    camera: CameraModel,
    *,
    tolerance_px: float = DEFAULT_TOLERANCE_PX,
    grid_step: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The MGV field (6, H, W) float32 at ``camera``'s size; channels: ``MGV_CHANNELS``.

    ``grid_step=None`` picks a coarse grid (step >= 4 px) whose interpolation error bound is
    within ``tolerance_px``, else evaluates exactly; ``grid_step=1`` forces exact evaluation at
    every pixel, any other value (>= 4) forces that grid. ``out`` (6, H, W) float32
    C-contiguous may be passed to reuse a buffer. ``motion`` may come from a frame of another
    resolution: rows are matched through their normalised positions.
    """
    W, H = camera.width, camera.height
    if out is not None and (out.shape != (6, H, W) or out.dtype != np.float32 or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(6, H, W)}")
    coarse = mgv_coarse(motion, camera, tolerance_px=tolerance_px, grid_step=grid_step)
    if out is None and coarse.exact:
        return coarse.values  # already the field, freshly allocated
    return upsample_mgv(coarse, out)


def interpolation_weights(centres: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(len(positions), len(centres)) 1-D linear interpolation weights, extrapolating linearly.

    Row ``i`` reproduces, as a weighted sum of the samples at ``centres`` (increasing, >= 2),
    the value :func:`upsample_mgv`'s scheme gives at ``positions[i]``: linear between the two
    enclosing samples, and continuing the first/last segment's line outside them.
    """
    centres = np.asarray(centres, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    n = len(centres)
    if n < 2:
        raise ValueError("need at least two sample positions")
    i = np.clip(np.searchsorted(centres, positions, side="right") - 1, 0, n - 2)
    t = (positions - centres[i]) / (centres[i + 1] - centres[i])
    w = np.zeros((len(positions), n))
    rows = np.arange(len(positions))
    w[rows, i] = 1.0 - t
    w[rows, i + 1] = t
    return w


#: Most pixels :func:`blur_extent_coarse` evaluates (keeps it O(1) in the image size).
_EXTENT_POINTS = 4096


@functools.lru_cache(maxsize=32)
def _extent_weights(size: int, cells: int, stride: int) -> np.ndarray:
    """Interpolation weights from a ``cells`` grid to every ``stride``-th pixel (cached: the grid
    size changes only with the amount of motion, so consecutive frames mostly reuse them)."""
    w = interpolation_weights(_cell_centres(size, cells), np.arange(0, size, stride, dtype=np.float64))
    w.setflags(write=False)
    return w


def blur_extent_coarse(coarse: CoarseMGV, percentile: float = 95.0) -> float:
    """:func:`blur_extent_px` of ``upsample_mgv(coarse)`` without building the full field.

    The streak ``pro - pre`` is interpolated (the same bilinear scheme, as two small matmuls) at
    pixels on a regular grid of at most ~4096 points, and its length's percentile taken there.
    The field is smooth, so the sparser sampling moves the percentile by a fraction of a pixel
    (``test_motion_mgv`` bounds it against the full-field value on random motions, rolling
    shutter and distortion included); the cost no longer grows with the image.
    """
    if coarse.exact:
        return blur_extent_px(coarse.values, percentile)
    W, H = coarse.width, coarse.height
    stride = max(4, int(np.ceil(np.sqrt(W * H / _EXTENT_POINTS))))
    h, w = coarse.values.shape[1:]
    wx = _extent_weights(W, w, stride)  # (nx, w)
    wy = _extent_weights(H, h, stride)  # (ny, h)
    v = coarse.values.astype(np.float64)
    streak = v[2:4] - v[0:2]  # (2, h, w): interpolation is linear, so interpolate the difference
    sx, sy = (wy @ streak[k] @ wx.T for k in range(2))
    return _percentile(np.hypot(sx, sy).ravel(), percentile)


def _percentile(values: np.ndarray, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (linear method) by one partial sort: ~3x faster here.

    NaN propagates like np.percentile's (the processor turns it into a fallback).
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    if np.isnan(values).any():
        return math.nan
    k = (len(values) - 1) * percentile / 100.0
    lo = int(np.floor(k))
    hi = min(lo + 1, len(values) - 1)
    part = np.partition(values, [lo, hi])
    return float(part[lo] + (k - lo) * (part[hi] - part[lo]))


def blur_extent_px(mgv: np.ndarray, percentile: float = 95.0) -> float:
    """Robust maximum streak length (px): the 95th percentile of ``|pro - pre|`` over pixels.

    A percentile rather than the maximum so a few extreme corner pixels (strong roll) do not
    decide whether a frame is worth deblurring. The field is smooth, so every 4th pixel in each
    direction is enough and keeps this cheap on megapixel frames.
    """
    mgv = np.asarray(mgv)
    if mgv.ndim != 3 or mgv.shape[0] != 6:
        raise ValueError(f"expected an MGV field of shape (6, H, W), got {mgv.shape}")
    sub = mgv[:4, ::4, ::4]
    length = np.hypot(sub[2] - sub[0], sub[3] - sub[1])
    return float(np.percentile(length, percentile))
