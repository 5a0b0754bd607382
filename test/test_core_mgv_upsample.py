"""Torch MGV upsampling (the CUDA path, run here on CPU tensors) against mgv_field and float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.core.mgv_upsample import mgv_tensor, upsample_mgv_torch
from eggnet_ros.motion import CameraModel, ImuSamples, frame_motion, mgv_field
from eggnet_ros.motion.mgv import mgv_coarse


def _motion(height: int, readout: float, seed: int):
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 2.0, 1 / 200)
    base, amp = rng.normal(scale=2.0, size=3), rng.normal(scale=3.0, size=3)
    imu = ImuSamples(t, base + amp * np.sin(30 * t[:, None]))
    return frame_motion(imu, 1.0, height, MotionConfig(timing=ExposureTiming(0.02, "middle", 0.0, readout)))


def _camera(width: int, height: int, distorted: bool = False) -> CameraModel:
    K = np.array([[0.8 * width, 0, width / 2 + 3.3], [0, 0.8 * width, height / 2 - 1.7], [0, 0, 1]])
    return CameraModel(width, height, K, "plumb_bob", [-0.2, 0.04, 0, 0, 0]) if distorted else \
        CameraModel(width, height, K)


def _lerp_extrapolated(centres: np.ndarray, values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Float64 1-D linear interpolation along the last axis, lines continued outside (by hand)."""
    out = np.empty((*values.shape[:-1], len(pos)))
    for idx in np.ndindex(values.shape[:-1]):
        v = values[idx]
        y = np.interp(pos, centres, v)
        lo, hi = pos < centres[0], pos > centres[-1]
        y[lo] = v[0] + (pos[lo] - centres[0]) * (v[1] - v[0]) / (centres[1] - centres[0])
        y[hi] = v[-1] + (pos[hi] - centres[-1]) * (v[-1] - v[-2]) / (centres[-1] - centres[-2])
        out[idx] = y
    return out


@pytest.mark.parametrize(("size", "readout", "distorted", "step"), [
    ((640, 480), 0.0, False, None),
    ((641, 479), 0.03, False, None),
    ((333, 250), 0.02, True, None),
    ((320, 200), 0.0, False, 16),
])
def test_torch_upsample_reproduces_mgv_field(size, readout, distorted, step) -> None:
    W, H = size
    motion, cam = _motion(H, readout, seed=W + H), _camera(W, H, distorted)
    coarse = mgv_coarse(motion, cam, grid_step=step)
    assert not coarse.exact
    got = upsample_mgv_torch(coarse).numpy()
    ref = mgv_field(motion, cam, grid_step=step)
    assert got.shape == ref.shape == (6, H, W) and got.dtype == np.float32
    assert np.abs(ref).max() > 2.0  # a field worth comparing
    # inside the outermost samples both are float32 bilinear interpolation: ~1e-5 px apart
    x0, x1 = int(np.ceil(coarse.xs[0])), int(np.floor(coarse.xs[-1]))
    y0, y1 = int(np.ceil(coarse.ys[0])), int(np.floor(coarse.ys[-1]))
    inner = (slice(None), slice(y0, y1 + 1), slice(x0, x1 + 1))
    assert np.abs(got[inner] - ref[inner]).max() <= 1e-4
    # the extrapolated border amplifies float32 rounding by up to ~(half cell)^2; still << 0.02 px
    assert np.abs(got - ref).max() <= 1e-3
    # and both are that close to the same scheme evaluated by hand in float64
    exact = _lerp_extrapolated(coarse.ys, _lerp_extrapolated(coarse.xs, coarse.values.astype(float),
                                                             np.arange(W)).swapaxes(1, 2), np.arange(H))
    exact = exact.swapaxes(1, 2)
    assert np.abs(got - exact).max() <= 1e-3 and np.abs(ref - exact).max() <= 1e-3


def test_exact_grid_is_uploaded_as_is() -> None:
    motion, cam = _motion(12, 0.0, seed=1), _camera(14, 12)
    coarse = mgv_coarse(motion, cam)
    assert coarse.exact
    np.testing.assert_array_equal(upsample_mgv_torch(coarse).numpy(), mgv_field(motion, cam))


def test_cpu_device_uses_the_given_buffer() -> None:
    motion, cam = _motion(120, 0.0, seed=2), _camera(160, 120)
    buf = np.empty((6, 120, 160), np.float32)
    t = mgv_tensor(mgv_coarse(motion, cam), torch.device("cpu"), out=buf)
    assert t.data_ptr() == buf.ctypes.data  # no copy
    np.testing.assert_array_equal(buf, mgv_field(motion, cam))
