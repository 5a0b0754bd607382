"""The real node over real DDS: frames + IMU + camera_info in, deblurred frames out.

Each test starts its own DeblurNode in a unique namespace inside one rclpy context on a
per-session random ROS_DOMAIN_ID (no cross-talk with other suites running concurrently), talks
to it from a tester node through real publishers/subscriptions, and checks what comes back
against an independent DeblurProcessor loaded from the same weights file.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, Imu  # noqa: E402

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig  # noqa: E402
from eggnet_ros.core import DeblurProcessor  # noqa: E402
from eggnet_ros.model import EggNet, EggNetConfig, save_weights  # noqa: E402
from eggnet_ros.motion import CameraModel, ImuSamples  # noqa: E402
from eggnet_ros.ros.convert import array_to_image, image_to_array, sec_to_stamp, stamp_to_sec  # noqa: E402
from eggnet_ros.ros.node import DeblurNode  # noqa: E402

pytestmark = pytest.mark.ros

H, W = 24, 32
K = (40.0, 0.0, W / 2, 0.0, 40.0, H / 2, 0.0, 0.0, 1.0)
EXPOSURE = 0.02
IMU_RATE = 200.0
OMEGA = (0.8, -0.5, 0.3)
TIMEOUT = 10.0
_ns_counter = itertools.count()


@pytest.fixture(scope="module")
def ros_context() -> Iterator[rclpy.context.Context]:
    domain = random.randint(1, 200)
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=domain)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "untrained_lite.safetensors"
    save_weights(EggNet(EggNetConfig.lite(width=4)), path, {"training_data": "untrained (test)"}, half=False)
    return path


class Harness:
    """A DeblurNode plus a tester node on one executor thread."""

    def __init__(self, ctx, model_path: Path, processor: DeblurProcessor | None = None, **params) -> None:
        self.ns = f"/t{os.getpid()}_{next(_ns_counter)}"
        overrides = {"model": str(model_path), "device": "cpu", "exposure_time": EXPOSURE, "max_wait": 0.3,
                     "queue_size": 10, **params}
        self.node = DeblurNode(context=ctx, namespace=self.ns, processor=processor,
                               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        self.tester = rclpy.create_node(f"tester{next(_ns_counter)}", context=ctx)
        self.pub_image = self.tester.create_publisher(Image, f"{self.ns}/image_raw", qos_profile_sensor_data)
        qos = qos_profile_sensor_data
        self.pub_info = self.tester.create_publisher(CameraInfo, f"{self.ns}/camera_info", qos)
        self.pub_imu = self.tester.create_publisher(Imu, f"{self.ns}/imu", qos_profile_sensor_data)
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.diags: list[DiagnosticArray] = []
        self.tester.create_subscription(Image, f"{self.ns}/image_deblurred", self.images.append, 50)
        self.tester.create_subscription(CameraInfo, f"{self.ns}/camera_info_deblurred", self.infos.append, 50)
        self.tester.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 50)
        self.executor = MultiThreadedExecutor(num_threads=2, context=ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.tester)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.wait_for(lambda: all(p.get_subscription_count() > 0
                                  for p in (self.pub_image, self.pub_info, self.pub_imu))
                      and self.node.pub_image.get_subscription_count() > 0)

    def wait_for(self, cond: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            time.sleep(0.01)
        return False

    def camera_info(self, width: int = W, height: int = H) -> None:
        msg = CameraInfo()
        msg.header.frame_id = "camera_optical"
        msg.width, msg.height = width, height
        msg.k = list(K)
        msg.distortion_model = "plumb_bob"
        msg.d = [0.0] * 5
        msg.p = [K[0], 0.0, K[2], 0.0, 0.0, K[4], K[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        self.pub_info.publish(msg)
        self.wait_for(lambda: self.node._camera_info is not None)

    def imu(self, t0: float, t1: float, omega=OMEGA, nan_at: float | None = None) -> None:
        for t in np.arange(t0, t1, 1.0 / IMU_RATE):
            msg = Imu()
            msg.header.stamp = sec_to_stamp(float(t))
            msg.header.frame_id = "imu"
            w = (np.nan, 0.0, 0.0) if nan_at is not None and abs(t - nan_at) < 0.5 / IMU_RATE else omega
            msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in w)
            self.pub_imu.publish(msg)
            time.sleep(0.001)  # best effort: do not outrun the node on a busy 2-core machine

    def frame(self, stamp: float, image: np.ndarray, encoding: str = "rgb8") -> Image:
        msg = array_to_image(image, _header(stamp), encoding)
        self.pub_image.publish(msg)
        return msg

    def stats(self) -> dict[str, float | int | str]:
        return self.node.stats.snapshot()

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5)
        self.node.destroy_node()
        self.tester.destroy_node()
        self.thread.join(timeout=5)


def _header(stamp: float):
    from std_msgs.msg import Header

    return Header(stamp=sec_to_stamp(stamp), frame_id="camera_optical")


def _frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3)).astype(np.uint8) for _ in range(n)]


@pytest.fixture
def harness(ros_context, model_path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(processor: DeblurProcessor | None = None, **params) -> Harness:
        h = Harness(ros_context, model_path, processor, **params)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def _reference(model_path: Path) -> DeblurProcessor:
    cfg = ProcessorConfig(motion=MotionConfig(timing=ExposureTiming(exposure_time=EXPOSURE)), device="cpu",
                          model=str(model_path))
    return DeblurProcessor(cfg)


def _ref_imu(t0: float, t1: float) -> ImuSamples:
    t = np.arange(t0, t1, 1.0 / IMU_RATE)
    return ImuSamples(t, np.tile(OMEGA, (len(t), 1)))


CAMERA = CameraModel(W, H, np.array(K).reshape(3, 3))


def test_deblurs_frames_with_headers_preserved(harness, model_path) -> None:
    h = harness()
    h.camera_info()
    h.imu(99.0, 101.0)
    h.wait_for(lambda: h.node.imu.latest_time is not None and h.node.imu.latest_time > 100.99)
    stamps = [100.0 + 0.05 * i for i in range(4)]
    frames = _frames(len(stamps))
    for s, f in zip(stamps, frames, strict=True):
        h.frame(s, f)
        time.sleep(0.02)
    assert h.wait_for(lambda: len(h.images) == len(stamps) and len(h.infos) == len(stamps))
    ref = _reference(model_path)
    for msg, s, f in zip(h.images, stamps, frames, strict=True):
        assert stamp_to_sec(msg.header.stamp) == pytest.approx(s, abs=1e-9)
        assert msg.header.frame_id == "camera_optical" and msg.encoding == "rgb8"
        out = image_to_array(msg)
        expected = ref.process(f, "rgb8", s, _ref_imu(99.0, 101.0), CAMERA)
        assert expected.status == "deblurred"
        np.testing.assert_array_equal(out, expected.image)
        assert not np.array_equal(out, f)  # the network really ran
    for info, s in zip(h.infos, stamps, strict=True):
        assert stamp_to_sec(info.header.stamp) == pytest.approx(s, abs=1e-9) and info.width == W
    snap = h.stats()
    assert snap["deblurred"] == len(stamps) and snap["imu_coverage_fraction"] == 1.0


def test_frames_wait_for_late_imu_and_keep_stamp_order(harness) -> None:
    h = harness(max_wait=5.0)
    h.camera_info()
    # The frames' wait clock starts on arrival; keep the model's first-call warm-up (seconds on a
    # loaded CI box) out of it, so only the late IMU decides when they are released.
    assert h.wait_for(lambda: h.node._warmed is not None and h.node._warmed == h.node._warm_key())
    h.imu(9.5, 9.95)  # the gyro stream is alive but lags behind the camera
    stamps = [10.0, 10.05, 10.1]
    for s, f in zip(stamps, _frames(3, seed=1), strict=True):
        h.frame(s, f)
    time.sleep(0.2)
    assert not h.images  # waiting for IMU, not passed through
    h.imu(9.95, 10.5)
    assert h.wait_for(lambda: len(h.images) == 3)
    assert [stamp_to_sec(m.header.stamp) for m in h.images] == pytest.approx(stamps)
    assert h.stats()["deblurred"] == 3


def test_no_imu_times_out_to_passthrough_then_drop_after_live_change(harness) -> None:
    h = harness(max_wait=0.1)
    h.camera_info()
    frames = _frames(2, seed=2)
    sent = h.frame(20.0, frames[0])
    assert h.wait_for(lambda: len(h.images) == 1)
    assert bytes(h.images[0].data) == bytes(sent.data) and h.images[0].header.stamp == sent.header.stamp
    assert h.stats()["imu_wait_timeout"] == 1 and h.stats()["fallback_passthrough"] == 1

    bad = h.node.set_parameters([Parameter("max_wait", value=-1.0)])[0]
    assert not bad.successful and "max_wait" in bad.reason
    not_a_rotation = [2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    bad = h.node.set_parameters([Parameter("rotation_cam_imu", value=not_a_rotation)])[0]
    assert not bad.successful and "rotation" in bad.reason
    ok = h.node.set_parameters([Parameter("fallback", value="drop")])[0]
    assert ok.successful
    h.frame(20.1, frames[1])
    assert h.wait_for(lambda: h.stats().get("fallback_dropped", 0) == 1)
    time.sleep(0.1)
    assert len(h.images) == 1


@pytest.mark.parametrize("case", ["no_camera_info", "size_mismatch", "unsupported_encoding", "imu_gap"])
def test_bad_input_passes_through_unchanged(harness, case: str) -> None:
    h = harness()
    if case != "no_camera_info":
        h.camera_info(width=2 * W if case == "size_mismatch" else W)
    if case == "imu_gap":
        h.imu(29.5, 29.98)
        h.imu(30.05, 30.5)
    else:
        h.imu(29.5, 30.5)
    img, enc = _frames(1, seed=3)[0], "rgb8"
    if case == "unsupported_encoding":
        img, enc = img[..., :2].copy(), "yuv422"
    sent = h.frame(30.0, img, enc)
    assert h.wait_for(lambda: len(h.images) == 1)
    out = h.images[0]
    assert bytes(out.data) == bytes(sent.data) and out.encoding == enc
    assert out.header.stamp == sent.header.stamp
    snap = h.stats()
    assert snap["fallback_passthrough"] == 1
    if case == "imu_gap":
        assert snap["imu_coverage_fraction"] == 0.0


def test_frame_before_first_camera_info_waits_for_it(harness) -> None:
    # Drivers often publish the first image a moment before its camera_info: within max_wait
    # the frame must be deblurred, not passed through for lack of intrinsics.
    h = harness(max_wait=5.0)
    h.imu(39.5, 40.5)
    h.frame(40.0, _frames(1, seed=4)[0])
    time.sleep(0.3)
    assert not h.images
    h.camera_info()
    assert h.wait_for(lambda: len(h.images) == 1)
    assert stamp_to_sec(h.images[0].header.stamp) == pytest.approx(40.0)
    assert h.stats()["deblurred"] == 1
    assert h.wait_for(lambda: len(h.infos) == 1)


def test_nan_and_out_of_order_imu_are_cleaned(harness, model_path) -> None:
    h = harness()
    h.camera_info()
    h.imu(39.5, 40.5, nan_at=40.0)
    late = Imu()
    late.header.stamp = sec_to_stamp(40.2 + 0.3 / IMU_RATE)  # in between, after newer ones
    late.angular_velocity.x, late.angular_velocity.y, late.angular_velocity.z = OMEGA
    h.pub_imu.publish(late)
    h.wait_for(lambda: h.stats().get("imu_out_of_order", 0) == 1)
    f = _frames(1, seed=4)[0]
    h.frame(40.0, f)
    assert h.wait_for(lambda: len(h.images) == 1)
    snap = h.stats()
    assert snap["imu_nonfinite"] == 1 and snap["imu_out_of_order"] == 1 and snap["deblurred"] == 1


def test_time_jump_backwards_resets_and_recovers(harness) -> None:
    h = harness()
    h.camera_info()
    h.imu(49.5, 50.5)
    h.frame(50.0, _frames(1)[0])
    assert h.wait_for(lambda: len(h.images) == 1)
    h.imu(4.5, 5.5)  # bag looped
    h.frame(5.0, _frames(1)[0])
    assert h.wait_for(lambda: len(h.images) == 2)
    snap = h.stats()
    assert snap["imu_time_reset"] == 1 and snap["image_time_reset"] == 1 and snap["deblurred"] == 2


def test_diagnostics_report_rates_and_coverage(harness) -> None:
    h = harness()
    h.camera_info()
    h.imu(59.5, 60.5)
    h.frame(60.0, _frames(1)[0])

    def mine() -> list:
        return [s for a in list(h.diags) for s in a.status if h.ns in s.name]

    assert h.wait_for(lambda: any(dict((kv.key, kv.value) for kv in s.values).get("deblurred") == "1"
                                  for s in mine()), timeout=5)
    values = {kv.key: kv.value for kv in mine()[-1].values}
    for key in ("input_rate_hz", "output_rate_hz", "imu_rate_hz", "latency_mean_ms", "imu_coverage_fraction",
                "model_mean_ms"):
        assert key in values
    assert float(values["imu_coverage_fraction"]) == 1.0


def test_node_shuts_down_cleanly(ros_context, model_path) -> None:
    h = Harness(ros_context, model_path)
    worker = h.node._worker
    h.close()
    assert not worker.is_alive()


def test_exposure_time_topic_sets_the_window(harness) -> None:
    from std_msgs.msg import Float64

    h = harness(exposure_time_topic="exposure", max_wait=0.2)
    pub = h.tester.create_publisher(Float64, f"{h.ns}/exposure", 10)
    h.wait_for(lambda: pub.get_subscription_count() > 0)
    h.camera_info()
    h.imu(69.5, 70.02)  # covers a 20 ms exposure around 70.0 (ends 70.01) but not a 60 ms one (70.03)
    # Under load the first frame could overtake camera_info (best effort): wait until it arrived.
    assert h.wait_for(lambda: h.node._camera_info is not None)
    h.frame(70.0, _frames(1)[0])
    assert h.wait_for(lambda: len(h.images) == 1)
    pub.publish(Float64(data=0.06))
    h.wait_for(lambda: h.node._exposure_override == 0.06)
    h.frame(70.001, _frames(1)[0])
    assert h.wait_for(lambda: len(h.images) == 2)
    snap = h.stats()
    assert snap["deblurred"] == 1 and snap["fallback_passthrough"] == 1 and snap["imu_wait_timeout"] == 1


class SlowModel:
    """Stands in for a network slower than the camera."""

    def __call__(self, x, mgv):
        time.sleep(0.25)
        return x


def test_slow_model_newest_frame_wins_in_stamp_order(harness) -> None:
    cfg = ProcessorConfig(motion=MotionConfig(timing=ExposureTiming(exposure_time=EXPOSURE)), device="cpu")
    h = harness(processor=DeblurProcessor(cfg, model=SlowModel(), input_mode="rgb"), queue_size=1)
    h.camera_info()
    h.imu(79.5, 81.0)
    h.wait_for(lambda: h.node.imu.latest_time is not None and h.node.imu.latest_time > 80.9)
    stamps = [80.0 + 0.033 * i for i in range(8)]
    for s, f in zip(stamps, _frames(len(stamps), seed=5), strict=True):
        h.frame(s, f)
        time.sleep(0.03)  # ~30 fps camera, 4 fps model
    assert h.wait_for(lambda: stamps[-1] in [stamp_to_sec(m.header.stamp) for m in h.images])
    time.sleep(0.3)
    out = [stamp_to_sec(m.header.stamp) for m in h.images]
    assert out == sorted(out) and len(out) < len(stamps)
    snap = h.stats()
    assert snap["dropped_queue"] == len(stamps) - len(out) and snap["deblurred"] == len(out)


SHIPPED = Path(__file__).resolve().parents[1] / "models" / "eggnet_lite.safetensors"
SHIPPED_NAME = "eggnet_lite"  # resolved by the node like a user's `model: eggnet_lite`


@pytest.mark.skipif(not SHIPPED.exists(), reason="trained models/eggnet_lite.safetensors not present yet")
def test_shipped_model_improves_psnr_over_dds(ros_context, model_path) -> None:
    from eggnet_ros.data import fixed_test_set

    pairs = fixed_test_set(n=4, size=128)
    h = Harness(ros_context, model_path, model=SHIPPED_NAME, min_blur_px=0.0, max_wait=1.0)
    try:
        if h.node.processor.input_mode != "rgb":
            pytest.skip("shipped model is not an RGB model")
        gains = []
        for i, p in enumerate(pairs):
            shift = 100.0 + 10.0 * i
            ok = h.node.set_parameters([
                Parameter("exposure_time", value=float(p.timing.exposure_time)),
                Parameter("readout_time", value=float(p.timing.readout_time)),
                Parameter("stamp_convention", value=p.timing.stamp_convention),
                Parameter("time_offset", value=float(p.timing.time_offset)),
                Parameter("n_samples", value=int(p.info["n_mgv_samples"])),
            ])
            assert all(r.successful for r in ok)
            info = CameraInfo(width=p.camera.width, height=p.camera.height, distortion_model="plumb_bob",
                              k=p.camera.K.reshape(-1).tolist(), d=[0.0] * 5)
            h.pub_info.publish(info)
            for t, w in zip(p.imu.t, p.imu.omega, strict=True):
                m = Imu()
                m.header.stamp = sec_to_stamp(float(t) + shift)
                m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = (float(v) for v in w)
                h.pub_imu.publish(m)
                time.sleep(0.001)
            blurred = np.clip(np.round(p.blurred * 255), 0, 255).astype(np.uint8)
            h.frame(p.stamp + shift, blurred)
            assert h.wait_for(lambda n=i + 1: len(h.images) == n, timeout=30)
            out = image_to_array(h.images[-1]).astype(np.float64) / 255

            def psnr(a: np.ndarray, ref: np.ndarray = p.sharp) -> float:
                return float(10 * np.log10(1.0 / np.mean((a - ref) ** 2)))

            gains.append(psnr(out) - psnr(blurred / 255.0))
        assert h.stats()["deblurred"] == len(pairs)
        assert np.mean(gains) > 0.0, gains
    finally:
        h.close()


def test_silent_imu_passes_every_frame_through_without_waiting(harness) -> None:
    # With the gyro gone silent, waiting max_wait per frame would overflow the queue at camera
    # rate and drop frames; the node must notice the stall and pass each frame through at once.
    h = harness(max_wait=0.5, queue_size=2)
    h.camera_info()
    # The first-call warm-up took 4.2 s once in a fresh-clone CI run: frames sent meanwhile
    # overflow the 2-frame queue, which is not what this test is about.
    assert h.wait_for(lambda: h.node._warmed is not None and h.node._warmed == h.node._warm_key())
    h.imu(89.0, 89.5)
    time.sleep(0.6)
    stamps = [90.0 + 0.033 * i for i in range(6)]
    for s, f in zip(stamps, _frames(len(stamps), seed=6), strict=True):
        h.frame(s, f)
        time.sleep(0.033)
    assert h.wait_for(lambda: len(h.images) == len(stamps))
    assert [stamp_to_sec(m.header.stamp) for m in h.images] == pytest.approx(stamps)
    assert h.stats().get("dropped_queue", 0) == 0


@pytest.mark.parametrize("encoding", ["mono8", "bayer_grbg8", "bgr8"])
def test_other_encodings_round_trip_through_an_rgb_model(harness, model_path, encoding: str) -> None:
    h = harness()
    h.camera_info()
    h.imu(109.5, 110.5)
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (H, W, 3) if encoding == "bgr8" else (H, W)).astype(np.uint8)
    h.frame(110.0, img, encoding)
    assert h.wait_for(lambda: len(h.images) == 1)
    out = h.images[0]
    assert out.encoding == encoding and h.stats()["deblurred"] == 1
    expected = _reference(model_path).process(img, encoding, 110.0, _ref_imu(109.5, 110.5), CAMERA)
    np.testing.assert_array_equal(image_to_array(out), expected.image)
