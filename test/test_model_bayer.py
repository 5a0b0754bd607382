"""Bayer packing against mosaics built by hand from the pattern string (R/G/B per 2×2 cell)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eggnet_ros.model import pack_bayer, unpack_bayer

CODE = {"R": 1.0, "Gr": 2.0, "Gb": 3.0, "B": 4.0}


def _labelled_mosaic(pattern: str, h: int = 6, w: int = 8) -> np.ndarray:
    """Each pixel holds the code of its colour; a G is Gr on the row that contains R, else Gb."""
    cell = [[pattern[0].upper(), pattern[1].upper()], [pattern[2].upper(), pattern[3].upper()]]
    labels = [[None, None], [None, None]]
    for r in range(2):
        for c in range(2):
            colour = cell[r][c]
            labels[r][c] = ("Gr" if "R" in cell[r] else "Gb") if colour == "G" else colour
    mosaic = np.zeros((h, w), np.float32)
    for r in range(2):
        for c in range(2):
            mosaic[r::2, c::2] = CODE[labels[r][c]]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "grbg", "gbrg"])
def test_pack_orders_channels_gr_r_gb_b(pattern: str) -> None:
    packed = pack_bayer(_labelled_mosaic(pattern), pattern)
    assert packed.shape == (4, 3, 4)
    for i, name in enumerate(("Gr", "R", "Gb", "B")):
        assert np.all(packed[i] == CODE[name]), (pattern, name)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "grbg", "gbrg"])
def test_round_trip_numpy_and_torch_with_batch_dims(pattern: str) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4096, size=(2, 3, 6, 10)).astype(np.uint16)
    packed = pack_bayer(raw, pattern)
    assert packed.shape == (2, 3, 4, 3, 5) and packed.dtype == np.uint16
    np.testing.assert_array_equal(unpack_bayer(packed, pattern), raw)
    t = torch.from_numpy(raw.astype(np.float32))
    tp = pack_bayer(t, pattern.upper())
    assert isinstance(tp, torch.Tensor)
    np.testing.assert_array_equal(tp.numpy(), packed.astype(np.float32))
    assert torch.equal(unpack_bayer(tp, pattern), t)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="even"):
        pack_bayer(np.zeros((5, 6)), "rggb")
    with pytest.raises(ValueError, match="unknown Bayer pattern"):
        pack_bayer(np.zeros((4, 6)), "rgbg")
    with pytest.raises(ValueError, match="4, h, w"):
        unpack_bayer(np.zeros((3, 2, 2)), "rggb")
