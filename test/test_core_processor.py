"""DeblurProcessor: what reaches the model, what comes back, and every defined fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core import (
    CudaUnavailableError,
    DeblurProcessor,
    ModelNotFoundError,
    resolve_model_path,
    select_device,
)
from eggnet_ros.model import EggNet, EggNetConfig, WeightsError, save_weights
from eggnet_ros.motion import CameraModel, ImuSamples, frame_motion, mgv_field

H, W = 24, 32
CAM = CameraModel(W, H, np.array([[40.0, 0, W / 2], [0, 40.0, H / 2], [0, 0, 1]]))
TIMING = ExposureTiming(exposure_time=0.02, stamp_convention="middle")
STAMP = 1.0


def _imu(rate: float = 400.0, omega=(0.8, -0.5, 0.3), t0: float = 0.5, t1: float = 1.5) -> ImuSamples:
    t = np.arange(t0, t1, 1.0 / rate)
    return ImuSamples(t, np.tile(np.asarray(omega, float), (len(t), 1)))


class Recorder:
    """A 'model' that halves the image and remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, x: torch.Tensor, mgv: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.clone(), mgv.clone()))
        return x * 0.5


def _proc(model=None, input_mode="rgb", **kw) -> DeblurProcessor:
    cfg = ProcessorConfig(motion=MotionConfig(timing=TIMING), device="cpu", **kw)
    return DeblurProcessor(cfg, model=model or Recorder(), input_mode=input_mode)


def _rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3)).astype(np.uint8)


def test_deblurs_with_the_motion_packages_mgv() -> None:
    model = Recorder()
    p = _proc(model)
    img = _rgb()
    res = p.process(img, "rgb8", STAMP, _imu(), CAM)
    assert res.status == "deblurred" and not res.fallback and res.imu_covered
    assert res.image.dtype == np.uint8 and res.image.shape == img.shape
    assert np.abs(res.image.astype(float) - img / 2.0).max() <= 0.5 + 1e-3  # halved, rounded
    (x, mgv), = model.calls
    ref = mgv_field(frame_motion(_imu(), STAMP, H, MotionConfig(timing=TIMING)), CAM)
    np.testing.assert_allclose(mgv[0].numpy(), ref, atol=1e-5)
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), img / 255.0, atol=1e-6)
    assert res.blur_px > 0.5
    assert {"motion", "model", "convert", "total"} <= set(res.timings)


def test_bayer_model_gets_half_resolution_mgv() -> None:
    model = Recorder()
    p = _proc(model, input_mode="bayer")
    raw = np.random.default_rng(1).integers(0, 256, (H, W)).astype(np.uint8)
    res = p.process(raw, "bayer_grbg8", STAMP, _imu(), CAM)
    assert res.status == "deblurred" and res.image.shape == raw.shape
    (x, mgv), = model.calls
    assert x.shape == (1, 4, H // 2, W // 2)
    ref = mgv_field(frame_motion(_imu(), STAMP, H, MotionConfig(timing=TIMING)), CAM.resized(W // 2, H // 2))
    np.testing.assert_allclose(mgv[0].numpy(), ref, atol=1e-5)


def test_small_blur_skips_the_network() -> None:
    model = Recorder()
    p = _proc(model, min_blur_px=0.5)
    img = _rgb()
    res = p.process(img, "rgb8", STAMP, _imu(omega=(0.0, 0.0, 0.0)), CAM)
    assert res.status == "passthrough" and not res.fallback and res.image is img
    assert res.blur_px == pytest.approx(0.0, abs=1e-6) and "min_blur_px" in res.reason
    assert not model.calls


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no_camera", "no camera_info"),
        ("size_mismatch", "camera_info size 64x48 != image size 32x24"),
        ("no_coverage", "does not cover"),
        ("gap", "gap"),
        ("encoding", "unsupported image encoding 'yuv422'"),
        ("wrong_dtype", "must be uint8"),
        ("nan_model", "not finite"),
    ],
)
@pytest.mark.parametrize("policy", ["passthrough", "drop"])
def test_bad_input_falls_back_with_reason(case: str, reason: str, policy: str) -> None:
    model = (lambda x, m: x * math.nan) if case == "nan_model" else Recorder()
    p = _proc(model, fallback=policy)
    img, enc, imu, cam = _rgb(), "rgb8", _imu(), CAM
    if case == "no_camera":
        cam = None
    elif case == "size_mismatch":
        cam = CAM.resized(2 * W, 2 * H)
    elif case == "no_coverage":
        imu = _imu(t1=STAMP + 0.005)  # ends inside the exposure [0.99, 1.01]
    elif case == "gap":
        t = np.concatenate([np.arange(0.5, 0.98, 0.0025), np.arange(1.04, 1.5, 0.0025)])
        imu = ImuSamples(t, np.ones((len(t), 3)))
    elif case == "encoding":
        enc = "yuv422"
    elif case == "wrong_dtype":
        img = img.astype(np.uint16)
    res = p.process(img, enc, STAMP, imu, cam)
    assert res.fallback and reason in res.reason
    if policy == "drop":
        assert res.status == "dropped" and res.image is None
    else:
        assert res.status == "passthrough" and res.image is img


def test_exposure_time_override_moves_the_window() -> None:
    p = _proc()
    imu = _imu(t1=1.02)  # covers [.., 1.02): a 20 ms exposure (ends 1.01) but not a 60 ms one (1.03)
    assert p.process(_rgb(), "rgb8", STAMP, imu, CAM).status == "deblurred"
    res = p.process(_rgb(), "rgb8", STAMP, imu, CAM, exposure_time=0.06)
    assert res.fallback and "does not cover" in res.reason


def test_update_changes_timing_and_rotation_but_not_the_model() -> None:
    p = _proc()
    p.update(exposure_time=0.03, rotation_cam_imu=(0, -1, 0, 1, 0, 0, 0, 0, 1), min_blur_px=2.0)
    assert p.config.motion.timing.exposure_time == 0.03
    assert p.config.motion.rotation_cam_imu[1] == -1 and p.config.min_blur_px == 2.0
    with pytest.raises(ValueError, match="restart"):
        p.update(model="other")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_gpu() -> None:
    with pytest.raises(CudaUnavailableError, match="require_cuda"):
        select_device("cuda", require_cuda=True)
    assert select_device("cuda", require_cuda=False).type == "cpu"
    assert select_device("auto", require_cuda=False).type == "cpu"


def test_loads_saved_weights_and_matches_the_network(tmp_path) -> None:
    torch.manual_seed(0)
    net = EggNet(EggNetConfig.lite(width=4)).eval()
    path = tmp_path / "tiny.safetensors"
    save_weights(net, path, {"training_data": "untrained test model"}, half=False)
    p = DeblurProcessor(ProcessorConfig(motion=MotionConfig(timing=TIMING), device="cpu", model=str(path)))
    assert p.input_mode == "rgb" and p.model_card is not None
    img = _rgb()
    res = p.process(img, "rgb8", STAMP, _imu(), CAM)
    assert res.status == "deblurred"
    mgv = mgv_field(frame_motion(_imu(), STAMP, H, MotionConfig(timing=TIMING)), CAM)
    with torch.inference_mode():
        y = net(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, torch.from_numpy(mgv)[None])
    ref = np.clip(np.round(y[0].permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
    assert np.abs(res.image.astype(int) - ref.astype(int)).max() <= 1
    # Name without suffix resolves to the same file.
    assert resolve_model_path(str(tmp_path / "tiny")) == path



def test_auto_model_is_the_full_model_on_cuda_and_the_lite_one_on_cpu(tmp_path, monkeypatch) -> None:
    """Only names in $EGGNET_MODELS_DIR (searched first) decide here, so the shipped models/ do not."""
    from eggnet_ros.core import auto_model_name

    for name in ("eggnet_full", "eggnet_lite"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    monkeypatch.setenv("EGGNET_MODELS_DIR", str(tmp_path))
    assert auto_model_name("cuda") == "eggnet_full"
    assert auto_model_name("cpu") == "eggnet_lite"
    assert auto_model_name("mps") == "eggnet_lite"  # unknown device types get the CPU choice


def test_auto_model_falls_back_to_lite_on_cuda_and_names_what_was_searched(tmp_path, monkeypatch) -> None:
    from eggnet_ros.core import auto_model_name, model_paths

    monkeypatch.setattr(model_paths, "AUTO_MODELS", {"cuda": ("no_full_here", "eggnet_lite"), "cpu": ("x",)})
    assert auto_model_name("cuda") == "eggnet_lite"
    with pytest.raises(ModelNotFoundError, match="model 'auto' on cpu: none of x"):
        auto_model_name("cpu")


def test_processor_resolves_auto_and_reports_the_model_it_loaded() -> None:
    p = DeblurProcessor(ProcessorConfig(motion=MotionConfig(timing=TIMING), device="cpu"))
    assert p.config.model == "auto" and p.model_name == "eggnet_lite"
    assert "model=eggnet_lite " in p.describe()
    assert p.model_card is not None and p.model_card.config.width == 16

def test_missing_and_corrupt_models_fail_at_construction(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="searched"):
        DeblurProcessor(ProcessorConfig(device="cpu", model=str(tmp_path / "nope")))
    net = EggNet(EggNetConfig.lite(width=4))
    path = tmp_path / "bad.safetensors"
    save_weights(net, path, {})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(WeightsError):
        DeblurProcessor(ProcessorConfig(device="cpu", model=str(path)))


def test_warmup_runs_the_network_once_at_the_given_size() -> None:
    model = Recorder()
    p = _proc(model, input_mode="bayer")
    assert p.warmup(12, 16) >= 0.0
    (x, mgv), = model.calls
    assert x.shape == (1, 4, 12, 16) and mgv.shape == (1, 6, 12, 16)


def test_timings_separate_host_and_device_stages() -> None:
    res = _proc().process(_rgb(), "rgb8", STAMP, _imu(), CAM)
    t = res.timings
    host, device = ("motion", "upload", "download"), ("prepare", "model", "finish")
    assert set(host + device + ("host", "host_cpu", "convert", "total")) <= set(t)
    assert t["host"] == pytest.approx(sum(t[k] for k in host))
    assert 0.0 < t["host_cpu"] <= t["host"] + 0.5  # thread CPU cannot exceed wall (clock granularity)
    assert t["convert"] == pytest.approx(t["upload"] + t["prepare"] + t["finish"] + t["download"])
    assert t["total"] >= t["host"] + t["prepare"] + t["model"] + t["finish"] - 1e-6


def test_blur_estimate_from_the_grid_is_the_full_field_extent() -> None:
    # min_blur_px is decided before the model runs, from the coarse MGV grid alone
    from eggnet_ros.motion import blur_extent_px

    h, w = 120, 160
    cam = CameraModel(w, h, np.array([[150.0, 0, w / 2], [0, 150.0, h / 2], [0, 0, 1]]))
    img = np.zeros((h, w), np.uint8)
    res = _proc(input_mode="mono").process(img, "mono8", STAMP, _imu(omega=(0.5, -1.0, 2.0)), cam)
    full = blur_extent_px(mgv_field(frame_motion(_imu(omega=(0.5, -1.0, 2.0)), STAMP, h,
                                                 MotionConfig(timing=TIMING)), cam))
    assert full > 1.0 and res.blur_px == pytest.approx(full, rel=0.02, abs=0.05)
