"""eggnet-deblur: files in, the processor's result out, defined exit codes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from eggnet_ros.cli.deblur import main
from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core import DeblurProcessor
from eggnet_ros.model import EggNet, EggNetConfig, save_weights
from eggnet_ros.motion import CameraModel, ImuSamples, write_imu_csv

H, W = 24, 32
FX = 40.0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    save_weights(EggNet(EggNetConfig.lite(width=4)), d / "m.safetensors", {}, half=False)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(d / "blurred.png"), rng.integers(0, 256, (H, W, 3)).astype(np.uint8))
    cv2.imwrite(str(d / "raw.png"), rng.integers(0, 256, (H, W)).astype(np.uint8))
    t = np.arange(4.5, 5.5, 1 / 400)
    write_imu_csv(d / "imu.csv", ImuSamples(t, np.tile([0.8, -0.5, 0.3], (len(t), 1))))
    calib = {"image_width": W, "image_height": H, "camera_name": "test",
             "camera_matrix": {"rows": 3, "cols": 3, "data": [FX, 0, W / 2, 0, FX, H / 2, 0, 0, 1]},
             "distortion_model": "plumb_bob",
             "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0] * 5}}
    (d / "camera.yaml").write_text(yaml.safe_dump(calib))
    return {"dir": d, "model": d / "m.safetensors", "image": d / "blurred.png", "raw": d / "raw.png",
            "imu": d / "imu.csv", "camera": d / "camera.yaml"}


def _args(files: dict[str, Path], out: Path, stamp: float = 5.0, *extra: str) -> list[str]:
    return ["--image", str(files["image"]), "--imu", str(files["imu"]), "--camera-info", str(files["camera"]),
            "--stamp", str(stamp), "--exposure-time", "0.02", "--model", str(files["model"]),
            "--device", "cpu", "--out", str(out), *extra]


def test_writes_the_processors_output(files, tmp_path, capsys) -> None:
    out = tmp_path / "sharp.png"
    assert main(_args(files, out, 5.0, "--rotation", "0,-1,0,1,0,0,0,0,1")) == 0
    assert "deblurred" in capsys.readouterr().out
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    # Independent of the CLI's plumbing: the processor on the same data (bgr8 as OpenCV reads it).
    motion = MotionConfig(timing=ExposureTiming(exposure_time=0.02),
                          rotation_cam_imu=(0, -1, 0, 1, 0, 0, 0, 0, 1))
    proc = DeblurProcessor(ProcessorConfig(motion=motion, model=str(files["model"]), device="cpu"))
    t = np.arange(4.5, 5.5, 1 / 400)
    imu = ImuSamples(t, np.tile([0.8, -0.5, 0.3], (len(t), 1)))
    cam = CameraModel(W, H, np.array([[FX, 0, W / 2], [0, FX, H / 2], [0, 0, 1]]))
    ref = proc.process(cv2.imread(str(files["image"])), "bgr8", 5.0, imu, cam)
    assert ref.status == "deblurred"
    np.testing.assert_array_equal(got, ref.image)


def test_bayer_file_keeps_its_layout(files, tmp_path) -> None:
    out = tmp_path / "raw_out.png"
    args = _args(files, out, 5.0, "--encoding", "bayer_rggb8")
    args[args.index(str(files["image"]))] = str(files["raw"])
    assert main(args) == 0
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == (H, W) and got.dtype == np.uint8


def test_uncovered_stamp_exits_2_and_passes_through(files, tmp_path, capsys) -> None:
    out = tmp_path / "o.png"
    assert main(_args(files, out, 9.0)) == 2
    assert "does not cover" in capsys.readouterr().err
    np.testing.assert_array_equal(cv2.imread(str(out)), cv2.imread(str(files["image"])))
    out2 = tmp_path / "dropped.png"
    assert main(_args(files, out2, 9.0, "--fallback", "drop")) == 2 and not out2.exists()


def test_bad_inputs_exit_1(files, tmp_path, capsys) -> None:
    args = _args(files, tmp_path / "x.png")
    args[args.index(str(files["model"]))] = str(tmp_path / "missing")
    assert main(args) == 1
    assert "not found" in capsys.readouterr().err
    args = _args(files, tmp_path / "x.png")
    args[args.index(str(files["imu"]))] = str(files["camera"])
    assert main(args) == 1
    assert "IMU CSV" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_args(files, tmp_path / "x.png", 5.0, "--rotation", "1,0,0"))
    with pytest.raises(SystemExit):  # an axis swap is a reflection, not a rotation
        main(_args(files, tmp_path / "x.png", 5.0, "--rotation", "0,1,0,1,0,0,0,0,1"))
    assert "det" in capsys.readouterr().err
