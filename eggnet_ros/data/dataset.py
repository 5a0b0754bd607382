"""torch ``Dataset`` that synthesises blurred/sharp/MGV training pairs on the fly.

Pairs are made on the CPU workers while the GPU trains, so there is no dataset on disk and
every epoch sees new pairs. Item ``i`` of epoch ``e`` is a pure function of
``(seed, split, e, i)`` (:func:`eggnet_ros.data.seeding.item_rng`): results do not depend on
which worker makes an item or in what order. Call :meth:`SyntheticDeblurDataset.set_epoch` before
each epoch (with non-persistent workers, which copy the dataset when the epoch's iterator starts).

Tensor layout per mode (C, H, W float32):

- ``rgb``: blurred/sharp 3 x P x P (sRGB), mgv 6 x P x P;
- ``mono``: 1 x P x P (sRGB-encoded luminance), mgv 6 x P x P;
- ``bayer``: the linear raw mosaic packed to 4 x P/2 x P/2 planes (Gr, R, Gb, B) with
  ``eggnet_ros.model.pack_bayer``; the MGVs are then in half-resolution pixels: area-averaged
  over each 2x2 cell and scaled by 0.5.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from eggnet_ros.data.seeding import item_rng
from eggnet_ros.data.sources import ImageSource, image_sources
from eggnet_ros.data.synth import MODES, BlurPair, Mode, SynthConfig, generate_pair

_LOG = logging.getLogger(__name__)


def _pack(raw: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 1) mosaic -> (4, H/2, W/2) planes (Gr, R, Gb, B)."""
    from eggnet_ros.model import pack_bayer  # the model defines the packed layout it consumes

    return np.ascontiguousarray(pack_bayer(raw[..., 0], pattern))


def half_resolution_mgv(mgv: np.ndarray) -> np.ndarray:
    """(6, H, W) MGVs in full-resolution px -> (6, H/2, W/2) in half-resolution px.

    Area averaging puts each value at the centre of its 2x2 cell (where the packed Bayer pixel
    sits) and the 0.5 factor converts pixel units; equal to evaluating the field for the camera
    resized by 1/2 up to the field's (tiny) curvature within a cell.
    """
    c, h, w = mgv.shape
    out = np.empty((c, h // 2, w // 2), dtype=np.float32)
    for k in range(c):
        out[k] = cv2.resize(mgv[k], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    out *= np.float32(0.5)
    return out


def pair_to_tensors(pair: BlurPair) -> dict[str, torch.Tensor]:
    """A :class:`BlurPair` as the network's CHW float32 tensors (see module docstring)."""
    if pair.mode == "bayer":
        pattern = pair.info["bayer_pattern"]
        blurred, sharp = _pack(pair.blurred, pattern), _pack(pair.sharp, pattern)
        mgv = half_resolution_mgv(pair.mgv)
    else:
        blurred = np.ascontiguousarray(pair.blurred.transpose(2, 0, 1))
        sharp = np.ascontiguousarray(pair.sharp.transpose(2, 0, 1))
        mgv = pair.mgv
    return dict(
        blurred=torch.from_numpy(blurred),
        sharp=torch.from_numpy(sharp),
        mgv=torch.from_numpy(np.ascontiguousarray(mgv, dtype=np.float32)),
        blur_px=torch.tensor(pair.blur_px, dtype=torch.float32),
    )


class SyntheticDeblurDataset(Dataset):
    """On-the-fly synthetic pairs: ``dict(blurred, sharp, mgv, blur_px)`` per item.

    Args:
        split: "train" or "test" (disjoint random streams and disjoint photo files).
        patch: output side in pixels (even for bayer mode).
        seed: base seed of all items.
        length: items per epoch.
        mode: "rgb", "mono" or "bayer" (overrides ``synth.mode``).
        synth: synthesis settings; default :meth:`SynthConfig.train` with ``preset``.
        sources: an image-source spec for :func:`image_sources` or a ready source.
        preset: shake preset used when ``synth`` is not given.
    """

    def __init__(
        self,
        split: str = "train",
        patch: int = 256,
        seed: int = 0,
        length: int = 10_000,
        mode: Mode = "rgb",
        synth: SynthConfig | None = None,
        sources: str | ImageSource = "builtin",
        preset: str = "moderate",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if patch < 8 or (mode == "bayer" and patch % 2):
            raise ValueError(f"patch must be >= 8 (and even for bayer), got {patch}")
        if length < 1:
            raise ValueError("length must be >= 1")
        self.split = split
        self.patch = int(patch)
        self.seed = int(seed)
        self.length = int(length)
        self.mode = mode
        self.synth = replace(synth if synth is not None else SynthConfig.train(preset), mode=mode)
        self.source = image_sources(sources, split) if isinstance(sources, str) else sources
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose pairs ``__getitem__`` returns."""
        if epoch < 0:
            raise ValueError("epoch must be >= 0")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def pair(self, index: int) -> BlurPair:
        """The full :class:`BlurPair` of item ``index`` (for inspection and debugging)."""
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        rng = item_rng(self.seed, self.split, self.epoch, index)
        return generate_pair(rng, self.source, self.synth, self.patch, self.patch)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return pair_to_tensors(self.pair(index))


def worker_init(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=...)``: one thread per worker for OpenCV and torch.

    Each worker already is one process per core; letting OpenCV and torch spawn their own
    thread pools inside every worker oversubscribes the (2-core) machine.
    """
    del worker_id
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
