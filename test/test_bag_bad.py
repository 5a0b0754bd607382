"""Bad bags: a clear message or a per-frame fallback recorded in the report, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eggnet_ros.bag.cli import main as cli_main
from eggnet_ros.bag.evaluate import EvalTopics, evaluate_bag
from eggnet_ros.bag.io import BagError, BagWriter, _header, typestore
from eggnet_ros.bag.report import write_report
from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core import DeblurProcessor
from eggnet_ros.motion import CameraModel

W, H = 48, 32
K = np.array([[50.0, 0.0, 23.5], [0.0, 50.0, 15.5], [0.0, 0.0, 1.0]])
FRAME_NS = 50_000_000  # 20 fps
T0_NS = 1_700_000_000_000_000_000


def identity_model(image, mgv):
    return image


def _processor() -> DeblurProcessor:
    timing = ExposureTiming(exposure_time=0.02, stamp_convention="middle")
    return DeblurProcessor(ProcessorConfig(motion=MotionConfig(timing=timing), device="cpu", min_blur_px=0.0),
                           model=identity_model, input_mode="rgb")


def _bag(path: Path, n_frames: int = 4, imu_until_s: float | None = None, imu: bool = True,
         bad_encoding_at: int | None = None) -> Path:
    """Frames at 20 fps with a 400 Hz gyro rotating about y (so every frame has blur)."""
    rng = np.random.default_rng(0)
    Image = typestore().types["sensor_msgs/msg/Image"]
    end_s = n_frames * FRAME_NS * 1e-9 + 0.05 if imu_until_s is None else imu_until_s
    with BagWriter(path, storage="mcap") as w:
        if imu:
            for k in range(int(end_s * 400)):
                t = T0_NS + k * 2_500_000
                w.write_imu("/imu", t, "imu", (0.0, 0.8, 0.0), log_time_ns=t)
        for i in range(n_frames):
            stamp = T0_NS + (i + 1) * FRAME_NS
            w.write_camera_info("/camera/camera_info", stamp, "cam", CameraModel(W, H, K))
            img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            if i == bad_encoding_at:
                msg = Image(header=_header(stamp, "cam"), height=H, width=W, encoding="yuv420_exotic",
                            is_bigendian=0, step=W * 3, data=img.reshape(-1))
                w.write_message("/camera/image_raw", msg, stamp)
            else:
                w.write_image("/camera/image_raw", stamp, "cam", img, "rgb8")
    return path


def test_missing_image_topic_is_a_clear_error_listing_the_topics(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag", n_frames=1)
    expected = r"image topic '/cam/left' is not in .*/camera/image_raw \[sensor_msgs"
    with pytest.raises(BagError, match=expected):
        evaluate_bag(bag, _processor(), EvalTopics(image="/cam/left"), progress=False)


def test_cli_reports_missing_topic_in_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    bag = _bag(tmp_path / "bag", n_frames=1)
    code = cli_main(["eval", str(bag), "--image-topic", "/cam/left", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert "image topic '/cam/left' is not in" in err and "Traceback" not in err


def test_bag_without_imu_falls_back_per_frame_and_says_why(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag", imu=False)
    result = evaluate_bag(bag, _processor(), EvalTopics(sharp=None), progress=False)
    assert [f.status for f in result.frames] == ["passthrough"] * 4
    assert all("IMU" in f.reason for f in result.frames)
    assert any("IMU topic /imu is missing" in n for n in result.notes)
    text = write_report(result, tmp_path / "report").read_text()
    assert "Frames not deblurred (fallback)" in text and "IMU topic /imu is missing" in text


def test_frames_after_the_imu_stops_fall_back_the_others_are_processed(tmp_path: Path) -> None:
    # gyro until 0.125 s: frames at 0.05 and 0.10 s are covered (+-10 ms), 0.15 and 0.20 s are not
    bag = _bag(tmp_path / "bag", imu_until_s=0.125)
    result = evaluate_bag(bag, _processor(), EvalTopics(sharp=None), progress=False)
    assert [f.status for f in result.frames] == ["deblurred", "deblurred", "passthrough", "passthrough"]
    assert "IMU does not cover" in result.frames[2].reason
    text = write_report(result, tmp_path / "report").read_text()
    assert "| 2 | " in text and "IMU does not cover" in text


def test_unknown_encoding_skips_that_frame_only(tmp_path: Path) -> None:
    bag = _bag(tmp_path / "bag", bad_encoding_at=1)
    result = evaluate_bag(bag, _processor(), EvalTopics(sharp=None), output_bag=tmp_path / "out",
                          progress=False)
    assert [f.status for f in result.frames] == ["deblurred", "skipped", "deblurred", "deblurred"]
    assert "unsupported image encoding 'yuv420_exotic'" in result.frames[1].reason
    assert np.isfinite(result.frames[1].blur_px)  # the IMU still says how blurred it was
    text = write_report(result, tmp_path / "report").read_text()
    assert "skipped" in text and "yuv420_exotic" in text
