"""The fixed evaluation set: regenerable bit-exactly from its parameters, optionally cached.

Every evaluation table must score the same pairs, so the set is a pure function of
``(n, size, seed, preset, mgv_noise, delay_fraction, mode, sources)``: item ``i`` is generated
from the test-split stream ``item_rng(seed, "test", 0, i)`` with only the shipped, machine-
independent image sources. The MGV corruption draws from its own seed, taken after all pixel
randomness, so the conditions of section IV-C (different ``mgv_noise`` / ``delay_fraction``)
share identical blurred/sharp images and differ only in the network's MGVs.

Regenerating 100 pairs at 512x512 takes ~10 s of CPU, so ``cache_dir`` keeps the *images* (plus
gyro, camera, timing and the MGV seed) as uncompressed ``.npz`` files, ~4 MB per 512x512 RGB pair
(the 8-bit blurred input stored as its codes), under a key hashed from every parameter except the
MGV corruption and from ``CACHE_VERSION`` (bump it whenever the synthesis changes). The MGVs of
the requested condition are recomputed on load (a few ms), so one cache serves all conditions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from eggnet_ros.config import ExposureTiming
from eggnet_ros.data.seeding import item_rng
from eggnet_ros.data.sources import image_sources
from eggnet_ros.data.synth import BlurPair, Mode, SynthConfig, compute_mgv, generate_pair, observe_mgv
from eggnet_ros.motion import CameraModel, ImuSamples, blur_extent_px

_LOG = logging.getLogger(__name__)

#: Part of the cache key: bump when the synthesis output changes for the same parameters.
CACHE_VERSION = 1
DEFAULT_TEST_SEED = 20210607


def fixed_test_set(
    n: int = 100,
    size: int = 512,
    seed: int = DEFAULT_TEST_SEED,
    preset: str = "moderate",
    mgv_noise: float = 0.0,
    delay_fraction: float = 0.0,
    mode: Mode = "rgb",
    sources: str = "builtin",
    cache_dir: str | Path | None = None,
    raw: bool = False,
) -> list[BlurPair]:
    """``n`` test pairs of ``size`` x ``size`` under one exact evaluation condition.

    ``raw=True`` is the paper's raw case (:meth:`SynthConfig.eval_raw`): the same images, each
    with its own imperfect gyro, instead of one fixed ``mgv_noise`` / ``delay_fraction``.
    """
    if n < 1 or size < 2:
        raise ValueError(f"need n >= 1 and size >= 2, got n={n}, size={size}")
    cfg = condition_config(preset, mode, mgv_noise, delay_fraction, raw)
    folder = None
    if cache_dir is not None:
        # Keyed by the pixel-relevant settings only (those of the controlled case), so every
        # condition, the raw case included, shares one image cache.
        images_cfg = SynthConfig.eval(preset=preset, mode=mode)
        key = _cache_key(n=n, size=size, seed=seed, sources=sources, cfg=repr(images_cfg))
        folder = Path(cache_dir) / f"testset-{key[:20]}"
    source = None
    pairs = []
    for i in range(n):
        path = folder / f"{i:04d}.npz" if folder is not None else None
        if path is not None and path.is_file():
            pairs.append(load_pair(path, cfg))
            continue
        if source is None:
            source = image_sources(sources, split="test")
        pair = generate_pair(item_rng(seed, "test", 0, i), source, cfg, size, size)
        if path is not None:
            save_pair(pair, path)
        pairs.append(pair)
    return pairs


def condition_config(
    preset: str = "moderate",
    mode: Mode = "rgb",
    mgv_noise: float = 0.0,
    delay_fraction: float = 0.0,
    raw: bool = False,
) -> SynthConfig:
    """The synthesis settings of one evaluation condition (they differ only in the gyro)."""
    if raw and (mgv_noise or delay_fraction):
        raise ValueError("the raw case draws its own MGV noise and delay; keep mgv_noise, delay_fraction 0")
    if raw:
        return SynthConfig.eval_raw(preset=preset, mode=mode)
    return SynthConfig.eval(preset=preset, mgv_noise=mgv_noise, delay_fraction=delay_fraction, mode=mode)


def observe_condition(pair: BlurPair, cfg: SynthConfig) -> BlurPair:
    """``pair`` (its image arrays shared, not copied) with the gyro and MGVs of condition ``cfg``.

    Bit-identical to generating the pair under ``cfg``: the corruption draws only from the
    pair's ``mgv_seed``. Scoring several conditions this way skips regenerating the images.
    """
    mgv, imu, corruption = observe_mgv(
        pair.imu_clean, pair.stamp, pair.timing, pair.camera, pair.mgv_clean, int(pair.info["mgv_seed"]), cfg
    )
    return replace(pair, mgv=mgv, imu=imu, info={**pair.info, **corruption})


def _cache_key(**params: Any) -> str:
    text = json.dumps(dict(params, version=CACHE_VERSION), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_pair(pair: BlurPair, path: str | Path) -> None:
    """Write a pair's images, gyro and metadata to ``path`` (.npz), atomically.

    The MGVs are not stored: :func:`load_pair` recomputes them (for any corruption setting) from
    the clean gyro and ``info["mgv_seed"]``. An 8-bit quantised input is stored as its codes
    when that reproduces it exactly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codes = np.round(pair.blurred * 255.0).astype(np.uint8)
    blurred = (
        codes if np.array_equal(codes.astype(np.float32) / np.float32(255.0), pair.blurred) else pair.blurred
    )
    meta = dict(
        stamp=pair.stamp,
        timing=asdict(pair.timing),
        width=pair.camera.width,
        height=pair.camera.height,
        mode=pair.mode,
        info=pair.info,
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            blurred=blurred,
            sharp=pair.sharp,
            imu_clean_t=pair.imu_clean.t,
            imu_clean_omega=pair.imu_clean.omega,
            K=pair.camera.K,
            meta=np.frombuffer(json.dumps(meta, default=_json_default).encode(), dtype=np.uint8),
        )
    os.replace(tmp, path)


def load_pair(path: str | Path, cfg: SynthConfig) -> BlurPair:
    """Read a pair written by :func:`save_pair`, with the MGVs of ``cfg``'s corruption setting."""
    with np.load(path) as z:
        meta = json.loads(z["meta"].tobytes().decode())
        blurred = z["blurred"]
        if blurred.dtype == np.uint8:
            blurred = blurred.astype(np.float32) / np.float32(255.0)
        sharp, K = z["sharp"], z["K"]
        imu_clean = ImuSamples(z["imu_clean_t"], z["imu_clean_omega"])
    camera = CameraModel(meta["width"], meta["height"], K)
    timing = ExposureTiming(**meta["timing"])
    stamp = float(meta["stamp"])
    mgv_clean = compute_mgv(imu_clean, stamp, timing, camera, cfg.n_mgv_samples)
    clean = BlurPair(
        blurred=blurred,
        sharp=sharp,
        mgv=mgv_clean,
        mgv_clean=mgv_clean,
        imu=imu_clean,
        imu_clean=imu_clean,
        camera=camera,
        stamp=stamp,
        timing=timing,
        blur_px=blur_extent_px(mgv_clean),
        mode=meta["mode"],
        info=meta["info"],
    )
    return observe_condition(clean, cfg)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | np.ndarray):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in pair metadata")
