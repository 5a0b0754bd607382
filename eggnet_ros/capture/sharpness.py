"""No-reference sharpness of real frames (there is no ground truth for a real blurred photo).

Two classic focus measures, evaluated only where the *input* has texture: mean gradient magnitude
(Tenengrad-like, in intensity units per pixel) and the variance of the Laplacian. Flat regions
(sky, walls) contribute noise and JPEG blocking but no sharpness, and a deblurred output can only
differ from its input where there was structure to restore, so both images are scored on the
same mask, computed from the input's local variance. The numbers compare input and output of the
same frame; they are not comparable across scenes, and ringing or amplified noise also raises
them, which is why the side-by-side image is part of every report.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Sharpness:
    """Focus measures over the textured mask (fraction ``coverage`` of the image)."""

    gradient: float
    laplacian_var: float
    coverage: float


def to_gray(image: np.ndarray) -> np.ndarray:
    """RGB/gray uint8/uint16/float image -> float64 gray in [0, 1] (Rec. 601 luma)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        f = img.astype(np.float64) / 255.0
    elif img.dtype == np.uint16:
        f = img.astype(np.float64) / 65535.0
    else:
        f = img.astype(np.float64)
    if f.ndim == 3:
        if f.shape[2] == 1:
            return f[..., 0]
        f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    elif f.ndim != 2:
        raise ValueError(f"expected (H, W) or (H, W, C), got {img.shape}")
    return f


def texture_mask(
    gray: np.ndarray, window: int = 15, quantile: float = 0.5, min_std: float = 0.02
) -> np.ndarray:
    """Pixels whose local standard deviation (box ``window``) is above the image's ``quantile``
    of it and above ``min_std`` (absolute, so a flat image has an empty mask)."""
    g = np.asarray(gray, dtype=np.float64)
    mean = cv2.blur(g, (window, window), borderType=cv2.BORDER_REFLECT)
    sq = cv2.blur(g * g, (window, window), borderType=cv2.BORDER_REFLECT)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    thr = max(float(np.quantile(std, quantile)), min_std)
    return std > thr


def sharpness(image: np.ndarray, mask: np.ndarray) -> Sharpness:
    """Mean |grad| (Sobel / 8, i.e. per pixel) and Laplacian variance of ``image`` inside ``mask``."""
    g = to_gray(image)
    if mask.shape != g.shape:
        raise ValueError(f"mask {mask.shape} does not match image {g.shape}")
    gx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT) / 8.0
    gy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT) / 8.0
    lap = cv2.Laplacian(g, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    m = mask.astype(bool)
    if not m.any():
        return Sharpness(float("nan"), float("nan"), 0.0)
    return Sharpness(
        gradient=float(np.mean(np.hypot(gx, gy)[m])),
        laplacian_var=float(np.var(lap[m])),
        coverage=float(m.mean()),
    )


def compare(blurred: np.ndarray, restored: np.ndarray) -> tuple[Sharpness, Sharpness]:
    """Sharpness of input and output on the input's texture mask."""
    mask = texture_mask(to_gray(blurred))
    return sharpness(blurred, mask), sharpness(restored, mask)
