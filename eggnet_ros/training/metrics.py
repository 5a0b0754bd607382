"""Image-quality metrics used by every table: PSNR and SSIM.

Implemented here in numpy (no scikit-image at run time) with the standard definitions (SSIM:
Wang et al. 2004, 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1), so that
our numbers are comparable with the paper's and with scikit-image, which the tests use as the
independent reference.
"""

from __future__ import annotations

import cv2
import numpy as np


def psnr(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    if estimate.shape != reference.shape:
        raise ValueError(f"shape mismatch: {estimate.shape} vs {reference.shape}")
    mse = float(np.mean((estimate.astype(np.float64) - reference.astype(np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def _gaussian_filter(image: np.ndarray, sigma: float) -> np.ndarray:
    # 11x11 window, truncate at 3.5 sigma like scikit-image's gaussian_weights=True path.
    return cv2.GaussianBlur(image, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)


def ssim(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity; multi-channel images average the per-channel SSIM.

    Accepts (H, W) or (H, W, C). The border of half a window is excluded from the mean, as
    scikit-image does, so values match `skimage.metrics.structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=...)`.
    """
    if estimate.shape != reference.shape:
        raise ValueError(f"shape mismatch: {estimate.shape} vs {reference.shape}")
    x = estimate.astype(np.float64)
    y = reference.astype(np.float64)
    if x.ndim == 3:
        return float(np.mean([ssim(x[..., c], y[..., c], data_range) for c in range(x.shape[2])]))
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    sigma = 1.5
    mu_x = _gaussian_filter(x, sigma)
    mu_y = _gaussian_filter(y, sigma)
    sxx = _gaussian_filter(x * x, sigma) - mu_x**2
    syy = _gaussian_filter(y * y, sigma) - mu_y**2
    sxy = _gaussian_filter(x * y, sigma) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    ssim_map = num / den
    pad = 5
    return float(ssim_map[pad:-pad, pad:-pad].mean())
