"""Coarse MGV grid -> full-resolution field on the model's device (torch).

The host computes the MGVs only on a coarse grid (:func:`eggnet_ros.motion.mgv.mgv_coarse`, a
few hundred samples); uploading those and upsampling next to the model moves the 24 MB-per-
megapixel field off the node's thread and off the PCIe bus. :func:`upsample_mgv_torch`
reproduces :func:`eggnet_ros.motion.mgv.upsample_mgv` (OpenCV bilinear with the half-cell border
extrapolated linearly) with ``F.interpolate(align_corners=False)``, which maps output pixel
``x`` to ``(x + .5) in/out - .5`` exactly like ``cv2.resize`` and clamps at the border the same
way; the clamped bands are then replaced by the same linear extrapolation. Float32 arithmetic
in a different order, so the two agree to ~1e-5 of the field's magnitude, not bit for bit.

On a CPU device the OpenCV version is several times faster than torch's single-threaded
interpolation, so :func:`mgv_tensor` uses it there; this module's torch path is for CUDA
(and tested on CPU tensors, the code being device-agnostic).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from eggnet_ros.motion.mgv import CoarseMGV, upsample_mgv


def _extrapolate_border(img: torch.Tensor, first: float, last: float, dim: int) -> None:
    """In place: replace the clamped bands outside samples ``first``/``last`` along ``dim``.

    The bilinear field is linear inside the first/last cell, so continuing the line through the
    two pixels just inside gives the extrapolated patch (the same formula as mgv.py's). Written
    as broadcast multiply-adds, not a matmul, so TF32 matmul settings (training enables them)
    cannot round it.
    """
    size = img.shape[dim]
    a, b = math.ceil(first), math.floor(last)
    moved = img.movedim(dim, -1)  # a view: writes go to img
    if a > 0:
        d = torch.arange(0, a, dtype=img.dtype, device=img.device) - a
        moved[..., :a] = moved[..., a : a + 1] * (1.0 - d) + moved[..., a + 1 : a + 2] * d
    if b < size - 1:
        d = torch.arange(b + 1, size, dtype=img.dtype, device=img.device) - b
        moved[..., b + 1 :] = moved[..., b : b + 1] * (1.0 + d) - moved[..., b - 1 : b] * d


def upsample_mgv_torch(coarse: CoarseMGV, device: torch.device | str = "cpu") -> torch.Tensor:
    """(6, H, W) float32 field on ``device`` from a coarse grid (uploads only the grid)."""
    values = torch.from_numpy(np.ascontiguousarray(coarse.values, dtype=np.float32))
    values = values.to(device, non_blocking=False)
    if coarse.exact:
        return values
    W, H = coarse.width, coarse.height
    out = F.interpolate(values.unsqueeze(0), size=(H, W), mode="bilinear", align_corners=False)[0]
    _extrapolate_border(out, float(coarse.xs[0]), float(coarse.xs[-1]), dim=2)
    _extrapolate_border(out, float(coarse.ys[0]), float(coarse.ys[-1]), dim=1)
    return out


def mgv_tensor(coarse: CoarseMGV, device: torch.device, out: np.ndarray | None = None) -> torch.Tensor:
    """The full field as a (6, H, W) tensor on ``device``, by the fastest upsampler there.

    CPU: OpenCV into ``out`` (a reused buffer; the tensor shares its memory). Elsewhere: torch,
    next to the model.
    """
    if device.type == "cpu":
        return torch.from_numpy(upsample_mgv(coarse, out))
    return upsample_mgv_torch(coarse, device)
