"""The device-side conversion path (torch kernels, used on CUDA) against the CPU path, on CPU tensors.

The processor uploads a frame's integers as they are and converts next to the model; on a GPU
that is the torch branch of Conversion.prepare/finish, which this machine can only run on CPU
tensors (``backend="torch"``). The references are the numpy/OpenCV path (itself checked against
hand-made mosaics and OpenCV in test_core_encodings) and hand computations.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eggnet_ros.core.encodings import SUPPORTED_ENCODINGS, encoding_info, plan_conversion

RNG = np.random.default_rng(3)
H, W = 10, 14
LEGAL = [(e, m) for e in SUPPORTED_ENCODINGS for m in ("rgb", "mono", "bayer")
         if not (m == "bayer" and not e.startswith("bayer"))]


def _image(encoding: str) -> np.ndarray:
    info = encoding_info(encoding)
    hi = 256 if info.dtype == np.uint8 else 65536
    shape = (H, W) if info.channels == 1 else (H, W, info.channels)
    return RNG.integers(0, hi, shape).astype(info.dtype)


@pytest.mark.parametrize(("encoding", "mode"), LEGAL)
def test_upload_ships_the_integers_unconverted(encoding: str, mode: str) -> None:
    conv = plan_conversion(encoding, mode)
    img = _image(encoding)
    raw = conv.upload(img, "cpu")
    assert raw.dtype == {np.uint8: torch.uint8, np.uint16: torch.uint16}[img.dtype.type]
    if encoding.startswith("bayer") and mode == "rgb":
        assert raw.shape == (H, W, 3)  # demosaiced on the host: the one host-side pixel op
    else:
        assert raw.data_ptr() == img.ctypes.data  # zero-copy view of the camera's buffer


@pytest.mark.parametrize(("encoding", "mode"), LEGAL)
def test_torch_prepare_equals_the_cpu_path(encoding: str, mode: str) -> None:
    conv = plan_conversion(encoding, mode)
    img = _image(encoding)
    raw = conv.upload(img, "cpu")
    ref = conv.prepare(raw)  # numpy/OpenCV
    got = conv.prepare(raw, backend="torch")
    assert got.shape == ref.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-7)
    if img.dtype == np.uint16:  # CUDA receives 16-bit frames as int16 bits: unwrapped on device
        bits = torch.from_numpy(raw.numpy().view(np.int16))
        torch.testing.assert_close(conv.prepare(bits, backend="torch"), ref, rtol=0, atol=1e-7)


@pytest.mark.parametrize(("encoding", "mode"), LEGAL)
def test_torch_finish_equals_the_cpu_path_and_round_trips(encoding: str, mode: str) -> None:
    conv = plan_conversion(encoding, mode)
    img = _image(encoding)
    x = conv.to_model(img)
    # identity model: bit-exact back through the device path too
    np.testing.assert_array_equal(conv.download(conv.finish(x.clone(), backend="torch")), img)
    y = x * 1.3 - 0.1  # out of range both ways: clamp, scale, round, cast
    ref = conv.from_model(y)
    got = conv.download(conv.finish(y, backend="torch"))
    assert got.dtype == ref.dtype == img.dtype and got.shape == ref.shape == img.shape
    # float32 ties may round one step apart between OpenCV and torch
    assert np.abs(got.astype(np.int64) - ref.astype(np.int64)).max() <= 1
    maxv = encoding_info(encoding).max_value
    assert got.min() == 0 and got.max() == maxv


def test_rgb_output_is_interleaved_on_the_device() -> None:
    conv = plan_conversion("bgr8", "rgb")
    y = torch.zeros(1, 3, 2, 3)
    y[0, 0] = 1.0  # red plane of the model's RGB output
    q = conv.finish(y, backend="torch")
    assert q.shape == (2, 3, 3) and q.is_contiguous() and q.dtype == torch.uint8
    assert q[..., 2].eq(255).all() and q[..., :2].eq(0).all()  # BGR: red is the last byte


def test_backend_is_validated() -> None:
    conv = plan_conversion("mono8", "mono")
    raw = conv.upload(_image("mono8"))
    with pytest.raises(ValueError, match="backend"):
        conv.prepare(raw, backend="cuda")


def test_read_only_frames_are_viewed_without_a_warning() -> None:
    import warnings

    img = _image("rgb8")
    frozen = np.frombuffer(img.tobytes(), np.uint8).reshape(img.shape)  # what bag readers hand out
    assert not frozen.flags.writeable
    conv = plan_conversion("rgb8", "rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = conv.to_model(frozen)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), img / 255.0, atol=1e-7)
