"""Dataset items (shapes per mode, Bayer packing, half-resolution MGVs, seeding) and the fixed test set."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from eggnet_ros.config import MotionConfig
from eggnet_ros.data import SyntheticDeblurDataset, condition_config, fixed_test_set, observe_condition
from eggnet_ros.data.dataset import worker_init
from eggnet_ros.data.synth import SynthConfig
from eggnet_ros.data.testset import load_pair, save_pair
from eggnet_ros.motion import frame_motion, mgv_field

P = 32


@pytest.mark.parametrize("mode,channels,side", [("rgb", 3, P), ("mono", 1, P), ("bayer", 4, P // 2)])
def test_item_shapes_per_mode(mode: str, channels: int, side: int) -> None:
    ds = SyntheticDeblurDataset(patch=P, length=4, mode=mode, seed=1)
    item = ds[0]
    assert item["blurred"].shape == item["sharp"].shape == (channels, side, side)
    assert item["mgv"].shape == (6, side, side)
    assert all(item[k].dtype == torch.float32 for k in ("blurred", "sharp", "mgv", "blur_px"))
    assert item["blur_px"].ndim == 0
    assert float(item["blurred"].min()) >= 0.0 and float(item["blurred"].max()) <= 1.0


def test_bayer_packing_and_half_resolution_mgv() -> None:
    """Packed planes are the mosaic's 2x2 phases; MGVs match the field of the half-size camera."""
    synth = SynthConfig.train(corrupt_prob=0.0)
    ds = SyntheticDeblurDataset(patch=P, length=2, mode="bayer", seed=3, synth=synth)
    pair = ds.pair(1)
    item = ds[1]
    raw = pair.sharp[..., 0]
    # rggb: R at (0, 0), Gr at (0, 1), Gb at (1, 0), B at (1, 1); packed order (Gr, R, Gb, B)
    for plane, (r, c) in enumerate([(0, 1), (0, 0), (1, 0), (1, 1)]):
        np.testing.assert_array_equal(item["sharp"][plane].numpy(), raw[r::2, c::2])
    half_camera = pair.camera.resized(P // 2, P // 2)
    motion = frame_motion(pair.imu_clean, pair.stamp, P, MotionConfig(timing=pair.timing))
    reference = mgv_field(motion, half_camera, grid_step=1)
    np.testing.assert_allclose(item["mgv"].numpy(), reference, atol=0.03)


def test_items_are_seeded_by_index_epoch_and_split() -> None:
    ds = SyntheticDeblurDataset(patch=P, length=3, seed=5)
    first = ds[2]["blurred"]
    assert torch.equal(first, SyntheticDeblurDataset(patch=P, length=3, seed=5)[2]["blurred"])
    assert not torch.equal(first, ds[1]["blurred"])
    ds.set_epoch(1)
    assert not torch.equal(first, ds[2]["blurred"])
    test = SyntheticDeblurDataset(split="test", patch=P, length=3, seed=5)
    assert not torch.equal(first, test[2]["blurred"])
    with pytest.raises(IndexError):
        ds.pair(3)


def test_worker_processes_give_the_same_items() -> None:
    """Items depend only on (seed, split, epoch, index), not on the worker that makes them."""
    ds = SyntheticDeblurDataset(patch=16, length=4, seed=9)
    # spawn, as eggnet-train does: forking a process whose OpenCV/torch thread pools already ran
    # (earlier tests in the same session) can deadlock the children.
    loader = torch.utils.data.DataLoader(
        ds, batch_size=1, num_workers=2, worker_init_fn=worker_init, multiprocessing_context="spawn"
    )
    for index, batch in enumerate(loader):
        assert torch.equal(batch["blurred"][0], ds[index]["blurred"])
        assert torch.equal(batch["mgv"][0], ds[index]["mgv"])


def _digest(pairs) -> str:
    h = hashlib.sha256()
    for p in pairs:
        for a in (p.blurred, p.sharp, p.mgv, p.mgv_clean, p.imu.t, p.imu.omega):
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_fixed_test_set_is_bit_exact_and_cacheable(tmp_path) -> None:
    a = fixed_test_set(n=3, size=64, seed=11)
    b = fixed_test_set(n=3, size=64, seed=11)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(fixed_test_set(n=3, size=64, seed=12))
    cached = fixed_test_set(n=3, size=64, seed=11, cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.npz"))) == 3
    reloaded = fixed_test_set(n=3, size=64, seed=11, cache_dir=tmp_path)
    assert _digest(cached) == _digest(reloaded) == _digest(a)
    # one image cache serves every corruption condition, with the same MGVs as a fresh generation
    noisy = fixed_test_set(n=3, size=64, seed=11, mgv_noise=0.25, delay_fraction=0.2, cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.npz"))) == 3
    assert _digest(noisy) == _digest(
        fixed_test_set(n=3, size=64, seed=11, mgv_noise=0.25, delay_fraction=0.2)
    )


def test_conditions_share_images_and_differ_in_mgvs() -> None:
    clean = fixed_test_set(n=2, size=48, seed=11)
    noisy = fixed_test_set(n=2, size=48, seed=11, mgv_noise=1.0)
    delayed = fixed_test_set(n=2, size=48, seed=11, delay_fraction=0.5)
    for c, n, d in zip(clean, noisy, delayed, strict=True):
        np.testing.assert_array_equal(c.blurred, n.blurred)
        np.testing.assert_array_equal(c.blurred, d.blurred)
        np.testing.assert_array_equal(c.mgv, c.mgv_clean)
        assert np.std(n.mgv - c.mgv) == pytest.approx(1.0, rel=0.1)
        assert not np.allclose(d.mgv, c.mgv)


def test_raw_case_shares_images_and_gives_every_pair_an_imperfect_gyro(tmp_path) -> None:
    clean = fixed_test_set(n=4, size=48, seed=11)
    raw = fixed_test_set(n=4, size=48, seed=11, raw=True)
    for c, r in zip(clean, raw, strict=True):
        np.testing.assert_array_equal(c.blurred, r.blurred)
        np.testing.assert_array_equal(c.sharp, r.sharp)
        np.testing.assert_array_equal(r.mgv_clean, c.mgv)
        assert r.info["corrupted"] and 100.0 <= r.info["imu_rate_hz"] <= 400.0
        assert abs(r.info["delay_s"]) <= 0.5 * r.timing.exposure_time + 1e-12
        assert r.info["miscal_deg"] <= 1.0 + 1e-9
        assert len(r.imu.t) < len(c.imu.t)  # resampled from the dense 1 kHz true gyro
        assert not np.allclose(r.mgv, c.mgv)
    # the raw case is regenerable bit-exactly, and served from the same image cache
    cached = fixed_test_set(n=4, size=48, seed=11, raw=True, cache_dir=tmp_path)
    fixed_test_set(n=4, size=48, seed=11, cache_dir=tmp_path)
    assert len(list(tmp_path.rglob("*.npz"))) == 4
    assert _digest(cached) == _digest(raw)
    with pytest.raises(ValueError, match="raw case"):
        fixed_test_set(n=1, size=32, raw=True, mgv_noise=0.25)


def test_observe_condition_matches_generating_under_that_condition() -> None:
    """Evaluation derives every condition from one set of images instead of regenerating them."""
    clean = fixed_test_set(n=3, size=48, seed=11)
    for kwargs in ({"raw": True}, {"mgv_noise": 0.25, "delay_fraction": 0.2}, {}):
        derived = [observe_condition(p, condition_config(**kwargs)) for p in clean]
        assert _digest(derived) == _digest(fixed_test_set(n=3, size=48, seed=11, **kwargs))
        assert all(d.blurred is c.blurred for d, c in zip(derived, clean, strict=True))


def test_save_load_roundtrip(tmp_path) -> None:
    pair = fixed_test_set(n=1, size=32, seed=2, mode="bayer", mgv_noise=0.25)[0]
    save_pair(pair, tmp_path / "x.npz")
    back = load_pair(tmp_path / "x.npz", SynthConfig.eval(mode="bayer", mgv_noise=0.25))
    for name in ("blurred", "sharp", "mgv", "mgv_clean"):
        np.testing.assert_array_equal(getattr(back, name), getattr(pair, name))
    assert back.camera == pair.camera and back.timing == pair.timing and back.mode == "bayer"
