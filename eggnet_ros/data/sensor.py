"""Image-formation helpers: sRGB transfer curve, luminance, Bayer mosaic, sensor noise.

Blur is an average of *light*, so sub-exposure images are averaged in linear light (a bright
streak over a dark background stays bright, as in real photos; averaging gamma-encoded values
would darken it). Noise is added to the linear signal with the Poisson-Gaussian model of a real
sensor: shot noise whose variance grows with the signal, plus signal-independent read noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from eggnet_ros.data.seeding import fast_normal

#: Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMA_709 = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

_BAYER_LAYOUT = {
    # colour index (0=R, 1=G, 2=B) at (row % 2, col % 2)
    "rggb": ((0, 1), (1, 2)),
    "bggr": ((2, 1), (1, 0)),
    "grbg": ((1, 0), (2, 1)),
    "gbrg": ((1, 2), (0, 1)),
}


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB decode of values in [0, 1] (float32 out).

    ``cv2.pow`` and in-place operations: this runs on every training pair, and is ~3x faster
    than the obvious ``np.where(..., np.power(...))``.
    """
    x = np.asarray(x, dtype=np.float32)
    high = np.maximum(x, np.float32(0.04045)).reshape(x.shape[0] if x.ndim else 1, -1)
    high += np.float32(0.055)
    high *= np.float32(1.0 / 1.055)
    cv2.pow(high, 2.4, dst=high)
    high = high.reshape(x.shape)
    low = x <= np.float32(0.04045)
    high[low] = x[low] * np.float32(1.0 / 12.92)
    return high


def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB encode; input is clipped to [0, 1] first (sensor saturation)."""
    y = np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
    high = np.maximum(y, np.float32(0.0031308)).reshape(y.shape[0] if y.ndim else 1, -1)
    cv2.pow(high, 1.0 / 2.4, dst=high)
    high = high.reshape(y.shape)
    high *= np.float32(1.055)
    high -= np.float32(0.055)
    low = y <= np.float32(0.0031308)
    high[low] = y[low] * np.float32(12.92)
    return high


def luminance(rgb_linear: np.ndarray) -> np.ndarray:
    """(H, W, 3) linear RGB -> (H, W, 1) linear luminance (a mono sensor's response)."""
    return (rgb_linear @ LUMA_709)[..., None].astype(np.float32, copy=False)


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) -> (H, W, 1) colour-filter-array mosaic with the given 2x2 pattern."""
    if pattern not in _BAYER_LAYOUT:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; use one of {sorted(_BAYER_LAYOUT)}")
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"a Bayer mosaic needs even height and width, got {h}x{w}")
    raw = np.empty((h, w, 1), dtype=np.float32)
    for dr in (0, 1):
        for dc in (0, 1):
            raw[dr::2, dc::2, 0] = rgb[dr::2, dc::2, _BAYER_LAYOUT[pattern][dr][dc]]
    return raw


def add_sensor_noise(
    linear: np.ndarray, rng: np.random.Generator, photons_at_white: float, read_sigma: float
) -> np.ndarray:
    """Poisson-Gaussian noise on a linear image in [0, 1], clipped to [0, 1] like a real ADC.

    Shot noise is a Poisson count of ``photons_at_white * x`` electrons; it is drawn with the
    Gaussian approximation of equal variance (``x / photons_at_white``), which is accurate above
    ~10 electrons and several times faster than Poisson sampling on one core; ``read_sigma`` is the
    std of the read noise in the same [0, 1] units.
    """
    if photons_at_white <= 0 or read_sigma < 0:
        raise ValueError(
            f"need photons_at_white > 0 and read_sigma >= 0, got {photons_at_white}, {read_sigma}"
        )
    x = np.clip(linear, 0.0, 1.0).astype(np.float32, copy=False)
    std = x * np.float32(1.0 / photons_at_white)
    std += np.float32(read_sigma**2)
    np.sqrt(std, out=std)
    std *= fast_normal(rng, x.shape)
    std += x
    return np.clip(std, 0.0, 1.0, out=std)


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """Round [0, 1] values to ``bits``-bit codes (and back to floats), as a camera driver does."""
    levels = float(2**bits - 1)
    return (np.round(np.clip(x, 0.0, 1.0) * levels) / levels).astype(np.float32)
