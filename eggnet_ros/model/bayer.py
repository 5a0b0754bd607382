"""Bayer mosaic <-> the 4-channel (Gr, R, Gb, B) planes EggNet reads (paper Sec. IV-A-1).

"Gr" is the green on the red rows, "Gb" the green on the blue rows. Packing to a fixed channel
order whatever the sensor's pattern lets one network serve all four Bayer orders. Works on numpy
arrays and torch tensors alike, with any leading batch dimensions: ``(..., H, W)`` <->
``(..., 4, H/2, W/2)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Position (row, col) inside the 2×2 cell of each packed channel (Gr, R, Gb, B), per pattern.
BAYER_LAYOUTS: dict[str, tuple[tuple[int, int], ...]] = {
    #            Gr      R       Gb      B
    "rggb": ((0, 1), (0, 0), (1, 0), (1, 1)),
    "bggr": ((1, 0), (1, 1), (0, 1), (0, 0)),
    "grbg": ((0, 0), (0, 1), (1, 1), (1, 0)),
    "gbrg": ((1, 1), (1, 0), (0, 0), (0, 1)),
}
PACKED_ORDER = ("Gr", "R", "Gb", "B")


def _layout(pattern: str) -> tuple[tuple[int, int], ...]:
    key = pattern.lower()
    if key not in BAYER_LAYOUTS:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; expected one of {sorted(BAYER_LAYOUTS)}")
    return BAYER_LAYOUTS[key]


def _stack(parts: list[Any], axis: int) -> Any:
    if isinstance(parts[0], np.ndarray):
        return np.stack(parts, axis=axis)
    import torch  # only when torch tensors are passed

    return torch.stack(parts, dim=axis)


def pack_bayer(raw: Any, pattern: str) -> Any:
    """``(..., H, W)`` mosaic -> ``(..., 4, H/2, W/2)`` planes ordered (Gr, R, Gb, B)."""
    layout = _layout(pattern)
    if raw.ndim < 2:
        raise ValueError(f"raw must be at least 2-D, got shape {tuple(raw.shape)}")
    h, w = raw.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"Bayer mosaic must have even height and width, got {h}x{w}")
    return _stack([raw[..., r::2, c::2] for r, c in layout], axis=-3)


def unpack_bayer(planes: Any, pattern: str) -> Any:
    """Inverse of :func:`pack_bayer`: ``(..., 4, h, w)`` -> ``(..., 2h, 2w)`` mosaic."""
    layout = _layout(pattern)
    if planes.ndim < 3 or planes.shape[-3] != 4:
        raise ValueError(f"planes must be (..., 4, h, w), got shape {tuple(planes.shape)}")
    *lead, _, h, w = planes.shape
    if isinstance(planes, np.ndarray):
        raw = np.empty((*lead, 2 * h, 2 * w), dtype=planes.dtype)
    else:
        raw = planes.new_empty((*lead, 2 * h, 2 * w))
    for i, (r, c) in enumerate(layout):
        raw[..., r::2, c::2] = planes[..., i, :, :]
    return raw
