"""Bag round trips (write -> read -> eval) in both storage formats.

References are independent of our reader: rosbags' AnyReader + rosbags-image for the decoded
messages, scikit-image for PSNR, the synthesiser's own ground-truth blur for the IMU timing.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.image import message_to_cvimage
from skimage.metrics import peak_signal_noise_ratio

from eggnet_ros.bag.evaluate import EvalTopics, evaluate_bag, read_sidecar
from eggnet_ros.bag.io import BagReader, BagWriter, decode_image, typestore
from eggnet_ros.bag.report import write_report
from eggnet_ros.bag.synth import BagSynthConfig, synthesize_bag
from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core import DeblurProcessor
from eggnet_ros.motion import CameraModel

STORAGES = ("mcap", "sqlite3")
K = np.array([[40.0, 0.0, 15.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])


def identity_model(image, mgv):
    """A model that changes nothing: isolates the bag plumbing from the network."""
    return image


def _write_small(path: Path, storage: str) -> dict:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    mono16 = rng.integers(0, 65536, (24, 32), dtype=np.uint16)
    jpeg = cv2.imencode(".jpg", rgb[..., ::-1].copy())[1].tobytes()
    with BagWriter(path, storage=storage) as w:
        w.write_image("/cam/rgb", 1_000_000_123, "cam", rgb, "rgb8")
        w.write_image("/cam/mono16", 1_000_000_123, "cam", mono16, "mono16")
        w.write_compressed_image("/cam/jpeg", 1_000_000_123, "cam", jpeg)
        w.write_camera_info("/cam/info", 1_000_000_123, "cam", CameraModel(32, 24, K))
        for i in range(5):
            w.write_imu("/imu", 1_000_000_000 + i * 2_500_000, "imu", (0.1 * i, -0.2, 0.3), (0.0, -9.81, 0.0))
    return {"rgb": rgb, "mono16": mono16, "jpeg": jpeg}


@pytest.mark.parametrize("storage", STORAGES)
def test_writer_output_reads_back_with_an_independent_reader(tmp_path: Path, storage: str) -> None:
    data = _write_small(tmp_path / "bag", storage)
    seen = {}
    with AnyReader([tmp_path / "bag"], default_typestore=typestore()) as reader:
        topics = {c.topic for c in reader.connections}
        assert topics == {"/cam/rgb", "/cam/mono16", "/cam/jpeg", "/cam/info", "/imu"}
        for conn, _, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            seen.setdefault(conn.topic, []).append(msg)
    np.testing.assert_array_equal(message_to_cvimage(seen["/cam/rgb"][0]), data["rgb"])
    np.testing.assert_array_equal(message_to_cvimage(seen["/cam/mono16"][0]), data["mono16"])
    np.testing.assert_array_equal(message_to_cvimage(seen["/cam/jpeg"][0]),
                                  cv2.imdecode(np.frombuffer(data["jpeg"], np.uint8), cv2.IMREAD_COLOR))
    info = seen["/cam/info"][0]
    np.testing.assert_array_equal(np.asarray(info.k).reshape(3, 3), K)
    assert (info.width, info.height, info.distortion_model) == (32, 24, "plumb_bob")
    imu = seen["/imu"]
    assert [m.header.stamp.nanosec for m in imu] == [i * 2_500_000 for i in range(5)]
    assert imu[3].angular_velocity.x == pytest.approx(0.3)
    assert imu[0].orientation_covariance[0] == -1.0  # REP 145: orientation not provided
    assert seen["/cam/rgb"][0].header.stamp.sec == 1 and seen["/cam/rgb"][0].header.stamp.nanosec == 123


@pytest.mark.parametrize("storage", STORAGES)
def test_reader_decodes_what_the_writer_wrote(tmp_path: Path, storage: str) -> None:
    data = _write_small(tmp_path / "bag", storage)
    with BagReader(tmp_path / "bag") as r:
        assert r.storage == storage
        frames = list(r.frames("/cam/rgb", "/cam/info", "/imu", imu_margin=1.0))
        assert len(frames) == 1
        fr = frames[0]
        np.testing.assert_array_equal(fr.image, data["rgb"])
        assert fr.encoding == "rgb8" and fr.stamp_ns == 1_000_000_123 and fr.frame_id == "cam"
        np.testing.assert_array_equal(fr.camera.K, K)
        np.testing.assert_allclose(fr.imu.t, 1.0 + np.arange(5) * 0.0025)
        np.testing.assert_allclose(fr.imu.omega[:, 0], 0.1 * np.arange(5))
        jpeg = next(r.frames("/cam/jpeg", None, None))
        assert jpeg.encoding == "bgr8"
        np.testing.assert_array_equal(jpeg.image, cv2.imdecode(np.frombuffer(data["jpeg"], np.uint8), 1))


def test_decode_handles_row_padding_and_big_endian() -> None:
    Image = typestore().types["sensor_msgs/msg/Image"]
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    padded = np.zeros((3, 12), np.uint8)  # step 12 bytes for 8 bytes of pixels per row
    padded[:, :8] = arr.astype(">u2").view(np.uint8).reshape(3, 8)
    msg = Image(header=typestore().types["std_msgs/msg/Header"](
        stamp=typestore().types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id=""),
        height=3, width=4, encoding="mono16", is_bigendian=1, step=12, data=padded.reshape(-1))
    out, enc = decode_image(msg)
    assert enc == "mono16" and out.dtype == np.uint16
    np.testing.assert_array_equal(out, arr)


@pytest.fixture(scope="module", params=STORAGES)
def small_synthetic_bag(request, tmp_path_factory) -> tuple[Path, object]:
    path = tmp_path_factory.mktemp(f"synth_{request.param}") / "bag"
    cfg = BagSynthConfig(frames=4, width=96, height=72, readout_time=0.01, stamp_convention="end",
                         time_offset=0.007, shake_intensity=1.5, seed=3)
    return path, synthesize_bag(path, cfg, storage=request.param)


def test_synthetic_bag_has_realistic_streams(small_synthetic_bag) -> None:
    path, _ = small_synthetic_bag
    with BagReader(path) as r:
        topics = r.topics
        assert topics["/camera/image_raw"].count == topics["/camera/image_sharp"].count == 4
        assert topics["/camera/camera_info"].count == 4
        imu, report = r.imu_samples("/imu")
        assert report.clean
        assert 1.0 / np.median(np.diff(imu.t)) >= 200.0
        # log times are receive times: every image is logged after its own header stamp
        for fr in r.frames("/camera/image_raw", "/camera/camera_info", "/imu"):
            assert fr.log_time_ns > fr.stamp_ns
            assert fr.problems == []


def test_eval_round_trip_output_bag_metrics_and_report(small_synthetic_bag, tmp_path: Path) -> None:
    path, summary = small_synthetic_bag
    timing = ExposureTiming(**read_sidecar(path)["timing"])
    processor = DeblurProcessor(ProcessorConfig(motion=MotionConfig(timing=timing), device="cpu"),
                                model=identity_model, input_mode="rgb")
    result = evaluate_bag(path, processor, EvalTopics(), output_bag=tmp_path / "out", progress=False)
    assert [f.status for f in result.frames] == ["deblurred"] * 4
    # IMU-derived blur from the bag (camera clock, end stamps, offset) matches the synthesis truth
    measured = [f.blur_px for f in result.frames]
    np.testing.assert_allclose(measured, summary.blur_px, atol=0.1 * max(summary.blur_px))
    with BagReader(path) as r:
        frames = list(r.frames("/camera/image_raw", None, None, "/camera/image_sharp"))
    for f, fr in zip(result.frames, frames, strict=True):
        ref = peak_signal_noise_ratio(fr.sharp, fr.image, data_range=255)
        assert f.psnr_in == pytest.approx(ref, abs=1e-6)
        assert f.psnr_out == pytest.approx(ref, abs=1e-6)  # identity model
    with BagReader(tmp_path / "out") as out:
        assert out.storage == r.storage
        topics = out.topics
        assert topics["/camera/image_deblurred"].count == 4
        assert topics["/imu"].count == summary.imu_samples
        outs = list(out.frames("/camera/image_deblurred", None, None))
    for o, fr in zip(outs, frames, strict=True):
        assert o.stamp_ns == fr.stamp_ns
        np.testing.assert_array_equal(o.image, fr.image)
    md = write_report(result, tmp_path / "report")
    text = md.read_text()
    assert "| 4 | 4 | 0 | 0 | 0 |" in text
    assert (tmp_path / "report" / "crops.png").exists() and (tmp_path / "report" / "results.json").exists()


def test_wrong_time_offset_changes_the_measured_blur(small_synthetic_bag) -> None:
    """The stamps really are in the camera clock: ignoring the 7 ms offset measures other motion."""
    path, summary = small_synthetic_bag
    timing = ExposureTiming(**{**read_sidecar(path)["timing"], "time_offset": -0.05})
    processor = DeblurProcessor(ProcessorConfig(motion=MotionConfig(timing=timing), device="cpu"),
                                model=identity_model, input_mode="rgb")
    result = evaluate_bag(path, processor, EvalTopics(sharp=None), progress=False)
    errors = [abs(f.blur_px - b) for f, b in zip(result.frames, summary.blur_px, strict=True)
              if math.isfinite(f.blur_px)]
    assert max(errors) > 0.2 * max(summary.blur_px)


def test_compressed_image_bags_are_evaluated(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    t0 = 1_700_000_000_000_000_000
    with BagWriter(tmp_path / "bag", storage="mcap") as w:
        for k in range(120):
            w.write_imu("/imu", t0 + k * 2_500_000, "imu", (0.5, 0.3, 0.0))
        for i in range(2):
            stamp = t0 + (i + 1) * 100_000_000
            img = cv2.GaussianBlur(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (3, 3), 1.0)
            w.write_compressed_image("/camera/image_raw/compressed", stamp, "cam",
                                     cv2.imencode(".jpg", img)[1].tobytes())
            w.write_camera_info("/camera/camera_info", stamp, "cam", CameraModel(32, 24, K))
    processor = DeblurProcessor(ProcessorConfig(device="cpu", min_blur_px=0.0), model=identity_model,
                                input_mode="rgb")
    topics = EvalTopics(image="/camera/image_raw/compressed", sharp=None)
    result = evaluate_bag(tmp_path / "bag", processor, topics,
                          output_bag=tmp_path / "out", progress=False)
    assert [f.status for f in result.frames] == ["deblurred", "deblurred"]
    assert result.encoding == "bgr8"
    with BagReader(tmp_path / "out") as r:
        assert r.topics["/camera/image_deblurred"].msgtype == "sensor_msgs/msg/Image"
