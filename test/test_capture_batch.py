"""Batch deblurring of a capture folder through the node's core, residual scaling, sharpness."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import torch

from eggnet_ros.capture.batch import _add_residual, deblur_folder, side_by_side
from eggnet_ros.capture.layout import CameraCalibration, RigParams, read_capture, write_capture
from eggnet_ros.capture.sharpness import compare, sharpness, texture_mask, to_gray
from eggnet_ros.capture.synthetic import synth_capture, turning_shake
from eggnet_ros.config import ProcessorConfig
from eggnet_ros.motion import ImuSamples

W, H = 96, 64


@pytest.fixture
def capture_folder(tmp_path):
    rng = np.random.default_rng(0)
    sharp = cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 1.0)
    cam = CameraCalibration(W, H, np.array([[90.0, 0, (W - 1) / 2], [0, 90.0, (H - 1) / 2], [0, 0, 1]]))
    t = np.arange(0.0, 0.5, 0.005)
    rig = RigParams((1, 0, 0, 0, 1, 0, 0, 0, 1), 0.0, 0.01, "start")
    imu = ImuSamples(t, turning_shake(t, 3.0, 5.0))
    synth_capture(tmp_path, sharp, imu, [0.1, 0.2, 0.34], 0.02, cam, rig)
    # cut the gyro log so the last frame's exposure runs past its end -> fallback (passthrough)
    cap = read_capture(tmp_path)
    keep = cap.imu_t < 0.35
    write_capture(tmp_path, list(cap.frames), cap.imu_t[keep], cap.imu_omega[keep], cap.camera, cap.rig)
    return tmp_path


def _processor():
    from eggnet_ros.core import DeblurProcessor
    from eggnet_ros.model import EggNet, EggNetConfig

    torch.manual_seed(0)
    model = EggNet(EggNetConfig.lite())
    return DeblurProcessor(ProcessorConfig(device="cpu", min_blur_px=0.5), model=model)


def test_deblur_folder_writes_frames_and_a_report(capture_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    reports = deblur_folder(capture_folder, out, scale=1.0, processor=_processor(), side_by_side_frames=True)
    assert [r.status for r in reports] == ["deblurred", "deblurred", "passthrough"]
    assert "IMU does not cover" in reports[2].reason
    for r in reports:
        stem = r.file.split(".")[0]
        written = cv2.imread(str(out / f"{stem}.png"))
        assert written.shape == (H, W, 3)
        assert (out / f"{stem}_side.png").is_file()
    # passthrough writes the input unchanged (lossless PNG round trip)
    np.testing.assert_array_equal(
        cv2.imread(str(out / "0002.png")), cv2.imread(str(capture_folder / "0002.png"))
    )
    # the blur the core measured is the gyro-predicted one (~ rate * exposure * f at most)
    assert 0.5 < reports[0].blur_px_processed < 3.9 * 0.02 * 90.0 * 1.5
    with (out / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["file"] for r in rows] == ["0000.png", "0001.png", "0002.png"]
    assert float(rows[0]["grad_in"]) > 0


def test_deblur_folder_at_half_scale_keeps_full_resolution(capture_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("half")
    reports = deblur_folder(capture_folder, out, scale=0.5, processor=_processor(), frames=[0])
    assert reports[0].status == "deblurred" and reports[0].scale == 0.5
    assert cv2.imread(str(out / "0000.png")).shape == (H, W, 3)


def test_residual_upscaling_by_hand():
    full = np.full((8, 10, 3), 100, np.uint8)
    full[2, 3] = 7  # full-resolution detail the network never saw
    small_in = np.full((4, 5, 3), 100, np.uint8)
    np.testing.assert_array_equal(_add_residual(full, small_in, small_in), full)  # no change -> exact input
    small_out = np.full((4, 5, 3), 110, np.uint8)
    expected = full.astype(int) + 10
    np.testing.assert_array_equal(_add_residual(full, small_in, small_out), expected)
    assert side_by_side(full, full).shape == (8, 20, 3)


def test_sharpness_measures_by_hand():
    x = np.arange(64, dtype=np.float64)
    ramp = np.tile(x * 0.01, (48, 1))  # slope 0.01 per pixel, zero Laplacian
    mask = np.zeros((48, 64), bool)
    mask[4:-4, 4:-4] = True
    s = sharpness(ramp, mask)
    assert s.gradient == pytest.approx(0.01, rel=1e-9)
    assert s.laplacian_var == pytest.approx(0.0, abs=1e-20)
    assert s.coverage == pytest.approx(mask.mean())
    # checkerboard of 0/1 pixels: Laplacian (4-neighbour) is -4 or +4 -> variance 16
    checker = (np.indices((32, 32)).sum(0) % 2).astype(np.float64)
    inner = np.zeros((32, 32), bool)
    inner[2:-2, 2:-2] = True
    assert sharpness(checker, inner).laplacian_var == pytest.approx(16.0)
    # flat image: nothing is textured
    assert not texture_mask(np.full((32, 32), 0.5)).any()
    # uint8 RGB -> gray in [0, 1] with Rec. 601 weights
    assert to_gray(np.array([[[255, 0, 0]]], np.uint8))[0, 0] == pytest.approx(0.299)


def test_blur_lowers_both_measures_on_the_same_mask():
    rng = np.random.default_rng(1)
    img = (cv2.GaussianBlur(rng.random((64, 64)), (0, 0), 1.5) * 255).astype(np.uint8)
    blurred = cv2.blur(img, (9, 1))
    s_blur, s_sharp = compare(blurred, img)
    assert s_sharp.gradient > s_blur.gradient and s_sharp.laplacian_var > s_blur.laplacian_var


def test_cli_deblur_with_a_weights_file(capture_folder, tmp_path_factory, capsys):
    from eggnet_ros.capture.cli import main
    from eggnet_ros.model import EggNet, EggNetConfig, save_weights

    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(EggNet(EggNetConfig.lite()), weights, {"training_data": "none (random init)"})
    out = tmp_path_factory.mktemp("cli")
    argv = ["deblur", str(capture_folder), "--out-dir", str(out), "--model", str(weights), "--device", "cpu"]
    argv += ["--side-by-side", "--crop", "8", "4", "40", "30"]
    assert main([*argv, "--scale", "auto", "--frames", "0"]) == 0
    printed = capsys.readouterr().out
    assert "0000.png" in printed and "deblurred" in printed
    assert (out / "0000.png").is_file() and (out / "report.csv").is_file()
    assert cv2.imread(str(out / "0000_side.png")).shape == (30, 80, 3)


def test_long_blur_at_full_scale_is_reported_with_numbers(caplog):
    from eggnet_ros.capture.batch import TRAINING_BLUR_PX, check_blur_range, training_blur_range

    assert training_blur_range(None) == TRAINING_BLUR_PX
    with caplog.at_level("WARNING"):
        check_blur_range(130.0, 0.5)  # SHIELD-like: 65 px seen by the network
        check_blur_range(130.0, 0.15)  # 19.5 px: in range, silent
    assert len(caplog.records) == 1 and "130 px (65 px at scale 0.5)" in caplog.records[0].getMessage()


def test_eggnet_deblur_folder_mode(capture_folder, tmp_path_factory, capsys):
    """`eggnet-deblur --folder` is the capture batch mode, through the same processor."""
    from eggnet_ros.cli.deblur import main
    from eggnet_ros.model import EggNet, EggNetConfig, save_weights

    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_weights(EggNet(EggNetConfig(width=4)), weights, {"training_data": "none (random init)"})
    out = tmp_path_factory.mktemp("folder")
    argv = [
        "--folder",
        str(capture_folder),
        "--out-dir",
        str(out),
        "--model",
        str(weights),
        "--device",
        "cpu",
    ]
    assert main([*argv, "--scale", "1.0"]) == 0
    printed = capsys.readouterr().out
    assert "deblurred" in printed and "passthrough" in printed
    assert sorted(p.name for p in out.glob("*.png")) == ["0000.png", "0001.png", "0002.png"]
    assert main(["--folder", str(capture_folder)]) == 1  # --out-dir missing: one clear line
    assert "--folder needs --out-dir" in capsys.readouterr().err
    assert main(["--image", "x.png"]) == 1
    assert "single-image mode needs --imu" in capsys.readouterr().err
