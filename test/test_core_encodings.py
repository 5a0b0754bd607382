"""ROS encodings <-> model tensors, checked against hand-made mosaics and OpenCV references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from eggnet_ros.core.encodings import (
    SUPPORTED_ENCODINGS,
    UnsupportedConversionError,
    UnsupportedEncodingError,
    check_image,
    encoding_info,
    plan_conversion,
    remosaic,
)

RNG = np.random.default_rng(7)
H, W = 12, 16

#: Hand-written colour at (row % 2, col % 2) for each ROS pattern name.
PATTERN_SITES = {
    "rggb": {(0, 0): "R", (0, 1): "G", (1, 0): "G", (1, 1): "B"},
    "bggr": {(0, 0): "B", (0, 1): "G", (1, 0): "G", (1, 1): "R"},
    "gbrg": {(0, 0): "G", (0, 1): "B", (1, 0): "R", (1, 1): "G"},
    "grbg": {(0, 0): "G", (0, 1): "R", (1, 0): "B", (1, 1): "G"},
}


def _image(encoding: str) -> np.ndarray:
    info = encoding_info(encoding)
    hi = 256 if info.dtype == np.uint8 else 65536
    shape = (H, W) if info.channels == 1 else (H, W, info.channels)
    return RNG.integers(0, hi, shape).astype(info.dtype)


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    idx = {"R": 0, "G": 1, "B": 2}
    raw = np.empty(rgb.shape[:2], rgb.dtype)
    for (r, c), colour in PATTERN_SITES[pattern].items():
        raw[r::2, c::2] = rgb[r::2, c::2, idx[colour]]
    return raw


LEGAL = [(e, m) for e in SUPPORTED_ENCODINGS for m in ("rgb", "mono", "bayer")
         if not (m == "bayer" and not e.startswith("bayer"))]


@pytest.mark.parametrize(("encoding", "mode"), LEGAL)
def test_identity_model_round_trips_every_encoding_exactly(encoding: str, mode: str) -> None:
    # An identity network must give back the camera image bit for bit, whatever conversion sits
    # in between (including demosaic -> remosaic and replicate -> luminance).
    conv = plan_conversion(encoding, mode)
    img = _image(encoding)
    x = conv.to_model(img)
    assert x.dtype == torch.float32 and x.shape[1] == {"rgb": 3, "mono": 1, "bayer": 4}[mode]
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    out = conv.from_model(x.clone())
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, img)


def test_bayer_model_on_non_bayer_is_refused() -> None:
    for enc in ("mono8", "rgb8", "bgr8", "mono16"):
        with pytest.raises(UnsupportedConversionError):
            plan_conversion(enc, "bayer")


def test_unsupported_encoding_names_the_supported_list() -> None:
    with pytest.raises(UnsupportedEncodingError, match=r"yuv422.*mono8.*bayer_gbrg16"):
        encoding_info("yuv422")


def test_bgr8_reaches_an_rgb_model_as_rgb_and_scaled() -> None:
    img = _image("bgr8")
    x = plan_conversion("bgr8", "rgb").to_model(img)[0].numpy()
    np.testing.assert_allclose(x[0], img[..., 2] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(x[2], img[..., 0] / 255.0, rtol=1e-6)


def test_mono16_scaling() -> None:
    img = np.array([[0, 32768], [65535, 1]], np.uint16)
    x = plan_conversion("mono16", "mono").to_model(img)[0, 0].numpy()
    np.testing.assert_allclose(x, img / 65535.0, rtol=1e-6)


def test_rgb_model_on_mono_outputs_opencv_luminance() -> None:
    img = _image("mono8")
    conv = plan_conversion("mono8", "rgb")
    gains = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)
    out = conv.from_model(conv.to_model(img) * gains)
    rgb = np.stack([img * 1.0, img * 0.5, img * 0.25], axis=-1).astype(np.float32) / 255.0
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) * 255.0  # OpenCV's BT.601 weights
    assert np.abs(out.astype(float) - ref).max() <= 0.51


def test_mono_model_on_rgb_processes_each_channel() -> None:
    img = _image("rgb8")
    conv = plan_conversion("rgb8", "mono")
    x = conv.to_model(img)
    assert x.shape == (3, 1, H, W)
    np.testing.assert_array_equal(conv.from_model(1.0 - x), 255 - img)


@pytest.mark.parametrize("pattern", sorted(PATTERN_SITES))
@pytest.mark.parametrize("bits", [8, 16])
def test_demosaic_of_a_flat_colour_recovers_it(pattern: str, bits: int) -> None:
    # Hand-made mosaic of a uniform colour: a correct demosaic (right OpenCV code for the ROS
    # pattern name) returns that colour everywhere away from the border.
    dtype = np.uint8 if bits == 8 else np.uint16
    colour = np.array([200, 100, 50]) * (1 if bits == 8 else 257)
    rgb = np.broadcast_to(colour.astype(dtype), (H, W, 3)).copy()
    raw = _mosaic(rgb, pattern)
    enc = f"bayer_{pattern}{bits}"
    x = plan_conversion(enc, "rgb").to_model(raw)[0].permute(1, 2, 0).numpy()
    want = np.broadcast_to(colour / (255 if bits == 8 else 65535), (H - 4, W - 4, 3))
    np.testing.assert_allclose(x[2:-2, 2:-2], want, atol=1e-6)


@pytest.mark.parametrize("pattern", sorted(PATTERN_SITES))
def test_packed_planes_follow_gr_r_gb_b(pattern: str) -> None:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    raw = _mosaic(rgb, pattern)
    # Tell the two greens apart: +1 on green pixels of red rows.
    red_row = next(r for (r, _), c in PATTERN_SITES[pattern].items() if c == "R")
    for (r, c), colour in PATTERN_SITES[pattern].items():
        if colour == "G" and r == red_row:
            raw[r::2, c::2] += 1
    x = plan_conversion(f"bayer_{pattern}8", "bayer").to_model(raw)[0].numpy() * 255
    np.testing.assert_allclose(x.reshape(4, -1).mean(1), [21, 10, 20, 30], atol=1e-4)


def test_remosaic_inverts_demosaic_sites() -> None:
    rgb = _image("rgb8")
    for pattern in PATTERN_SITES:
        np.testing.assert_array_equal(remosaic(rgb, pattern), _mosaic(rgb, pattern))


def test_check_image_rejects_wrong_layouts() -> None:
    with pytest.raises(ValueError, match="uint8"):
        check_image(np.zeros((4, 4), np.uint16), encoding_info("mono8"))
    with pytest.raises(ValueError, match="shape"):
        check_image(np.zeros((4, 4), np.uint8), encoding_info("rgb8"))
    with pytest.raises(ValueError, match="even"):
        check_image(np.zeros((5, 4), np.uint8), encoding_info("bayer_rggb8"))


def test_bayer_halves_resolution_only_for_packed_modes() -> None:
    assert plan_conversion("bayer_rggb8", "bayer").downscale == 2
    assert plan_conversion("bayer_rggb8", "mono").downscale == 2
    assert plan_conversion("bayer_rggb8", "rgb").downscale == 1
    assert plan_conversion("rgb8", "rgb").native and not plan_conversion("mono8", "rgb").native


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "bayer_rggb8"])
def test_out_of_range_model_output_is_clipped_and_rounded(encoding: str) -> None:
    mode = "bayer" if encoding.startswith("bayer") else "rgb" if encoding == "rgb8" else "mono"
    conv = plan_conversion(encoding, mode)
    img = _image(encoding)
    x = conv.to_model(img)
    y = x * 3.0 - 1.0  # spans [-1, 2]
    maxv = 255.0 if img.dtype == np.uint8 else 65535.0
    expected = np.clip(np.rint((img.astype(np.float64) / maxv * 3.0 - 1.0) * maxv), 0, maxv)
    got = conv.from_model(y).astype(np.float64)
    assert np.abs(got - expected).max() <= 1.0  # float32 vs float64 ties may differ by one step
    assert got.min() == 0 and got.max() == maxv


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16", "bayer_gbrg16"])
def test_gpu_and_cpu_conversion_paths_agree(encoding: str) -> None:
    # The torch path (used on CUDA) run on CPU tensors must equal the numpy/OpenCV CPU path.
    from eggnet_ros.core import encodings as enc

    info = encoding_info(encoding)
    img = _image(encoding)
    hwc = img.ndim == 3
    a = enc._chw_float_numpy(img, info.max_value, hwc, info.kind == "bgr")
    b = enc._chw_float_torch(img, info.max_value, "cpu", hwc, info.kind == "bgr")
    torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    y = a * 1.3 - 0.1
    for pa, pb in zip(enc._planes_opencv(y, info), enc._planes_torch(y, info), strict=True):
        assert np.abs(pa.astype(int) - pb.astype(int)).max() <= 1 and pa.dtype == pb.dtype == info.dtype
