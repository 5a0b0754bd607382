"""Benchmark: latency through the real node over DDS, and the node's overhead beyond the model.

Usage: ``python bench/node.py [--frames 15] [--lite]``. Starts DeblurNode in-process on a random
ROS domain, publishes frames one at a time (the next after the previous came back, so nothing
queues) with IMU covering them, and measures per frame:

- e2e: tester publish -> tester receive (two DDS hops, message (de)serialisation);
- in-node: image callback -> output published (what the node adds to the camera's latency);
- the processor's own timings: ``motion`` (exposure window, gyro integration, MGV field, blur
  estimate), ``convert`` (encoding in/out), ``model`` (the network alone);
- overhead = in-node - model: everything the node does besides the network (decode, queue,
  worker hand-off, MGVs, conversions, encode, publish).

The model is an identity callable (isolates the overhead; goal <= 2 ms at 1 MP); ``--lite`` adds
an untrained EggNet-lite row at 640x480 for scale. A second table times the processor's stages
at 1 MP without DDS, in wall and thread-CPU time (on a shared machine the difference is time
spent waiting for a core). torch/BLAS pools are pinned to one thread, as on a robot computer
whose other cores run the rest of the stack.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))

import argparse  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, Imu  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig  # noqa: E402
from eggnet_ros.core import DeblurProcessor, FrameResult  # noqa: E402
from eggnet_ros.ros.convert import array_to_image, sec_to_stamp, stamp_to_sec  # noqa: E402
from eggnet_ros.ros.node import DeblurNode  # noqa: E402

IMU_RATE = 200.0
EXPOSURE = 0.02
FRAME_DT = 0.1


class TimedProcessor(DeblurProcessor):
    """Keeps every FrameResult's timings."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.results: dict[float, FrameResult] = {}

    def process(self, image, encoding, stamp, imu, camera, **kw) -> FrameResult:
        res = super().process(image, encoding, stamp, imu, camera, **kw)
        self.results[stamp] = res
        return res


class TimedNode(DeblurNode):
    """Records callback-arrival -> published time per frame."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.in_node: dict[float, float] = {}

    def _publish(self, msg, result, frame) -> None:
        super()._publish(msg, result, frame)
        self.in_node[frame.stamp] = (time.monotonic() - frame.arrival) * 1e3


def identity(x: torch.Tensor, mgv: torch.Tensor) -> torch.Tensor:
    return x


def run_case(ctx, width: int, height: int, encoding: str, model, input_mode: str, n_frames: int) -> dict:
    motion = MotionConfig(timing=ExposureTiming(exposure_time=EXPOSURE), max_imu_gap=1.0)
    cfg = ProcessorConfig(motion=motion, device="cpu", min_blur_px=0.0)
    proc = TimedProcessor(cfg, model=model, input_mode=input_mode)
    ns = f"/bench{width}x{height}{encoding}"
    overrides = [Parameter("imu_buffer_seconds", value=60.0), Parameter("max_wait", value=1.0),
                 Parameter("queue_size", value=4), Parameter("exposure_time", value=EXPOSURE)]
    node = TimedNode(context=ctx, namespace=ns, processor=proc, parameter_overrides=overrides)
    tester = rclpy.create_node("bench_tester", context=ctx, namespace=ns)
    pub_img = tester.create_publisher(Image, "image_raw", qos_profile_sensor_data)
    pub_info = tester.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    pub_imu = tester.create_publisher(Imu, "imu", qos_profile_sensor_data)
    received: dict[float, float] = {}
    def on_image(m: Image) -> None:
        received.setdefault(stamp_to_sec(m.header.stamp), time.perf_counter())

    tester.create_subscription(Image, "image_deblurred", on_image, 5)
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    ex.add_node(node)
    ex.add_node(tester)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 10
        pubs = (pub_img, pub_imu, node.pub_image)
        while time.monotonic() < deadline and not all(p.get_subscription_count() for p in pubs):
            time.sleep(0.01)
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=[0.8 * width, 0.0, width / 2, 0.0, 0.8 * width, height / 2, 0.0, 0.0, 1.0])
        pub_info.publish(info)
        t_end = 1.0 + (n_frames + 1) * FRAME_DT
        for t in np.arange(0.5, t_end, 1.0 / IMU_RATE):
            m = Imu()
            m.header.stamp = sec_to_stamp(float(t))
            m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = 0.6, -0.4, 0.2
            pub_imu.publish(m)
            time.sleep(0.0003)
        while node.imu.latest_time is None or node.imu.latest_time < t_end - 0.1:
            time.sleep(0.01)
        rng = np.random.default_rng(0)
        shape = (height, width, 3) if encoding in ("rgb8", "bgr8") else (height, width)
        img = rng.integers(0, 256, shape).astype(np.uint8)
        sent: dict[float, float] = {}
        for i in range(n_frames):
            stamp = 1.0 + i * FRAME_DT
            msg = array_to_image(img, Header(stamp=sec_to_stamp(stamp), frame_id="cam"), encoding)
            sent[stamp] = time.perf_counter()
            pub_img.publish(msg)
            deadline = time.monotonic() + 30
            while stamp not in received and time.monotonic() < deadline:
                time.sleep(0.0005)
        warm = sorted(sent)[min(3, n_frames // 3):]
        keys = [s for s in warm if s in received and s in node.in_node and s in proc.results]
        med = lambda v: statistics.median(v) if v else float("nan")  # noqa: E731
        timings = [proc.results[s].timings for s in keys]
        row = {
            "e2e": med([(received[s] - sent[s]) * 1e3 for s in keys]),
            "in_node": med([node.in_node[s] for s in keys]),
            "model": med([t.get("model", 0.0) for t in timings]),
            "motion": med([t.get("motion", 0.0) for t in timings]),
            "convert": med([t.get("convert", 0.0) for t in timings]),
            "n": len(keys),
            "status": ",".join(sorted({proc.results[s].status for s in keys})),
        }
        row["overhead"] = med([node.in_node[s] - proc.results[s].timings.get("model", 0.0) for s in keys])
        return row
    finally:
        ex.shutdown(timeout_sec=5)
        node.destroy_node()
        tester.destroy_node()
        th.join(timeout=5)


def stage_costs(width: int, height: int, encoding: str, repeat: int = 15) -> dict[str, tuple[float, float]]:
    """Median wall and thread-CPU ms of the processor's own stages (no DDS), identity model.

    CPU time is what the stage costs on an idle core; wall time also counts waiting for a core,
    which on a shared 2-core machine can dominate.
    """
    from eggnet_ros.core.encodings import plan_conversion
    from eggnet_ros.motion import CameraModel, ImuSamples, blur_extent_px, frame_motion, mgv_field
    from eggnet_ros.ros.convert import image_to_array

    rng = np.random.default_rng(0)
    shape = (height, width, 3) if encoding in ("rgb8", "bgr8") else (height, width)
    img = rng.integers(0, 256, shape).astype(np.uint8)
    f = 0.8 * width
    cam = CameraModel(width, height, np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]))
    t = np.arange(0.0, 2.0, 1.0 / IMU_RATE)
    imu = ImuSamples(t, np.tile([0.6, -0.4, 0.2], (len(t), 1)))
    motion_cfg = MotionConfig(timing=ExposureTiming(exposure_time=EXPOSURE))
    conv = plan_conversion(encoding, "rgb" if encoding in ("rgb8", "bgr8") else "mono")
    buf = np.empty(conv.chw_shape(height, width), np.float32)
    mgv_buf = np.empty((6, height, width), np.float32)
    hdr = Header(stamp=sec_to_stamp(1.0), frame_id="cam")
    msg = array_to_image(img, hdr, encoding)
    stages: dict[str, Callable[[], object]] = {
        "decode (rosbags-image)": lambda: image_to_array(msg),
        "motion: frame_motion": lambda: frame_motion(imu, 1.0, height, motion_cfg),
    }
    fm = frame_motion(imu, 1.0, height, motion_cfg)
    stages["motion: mgv_field"] = lambda: mgv_field(fm, cam, out=mgv_buf)
    stages["motion: blur_extent_px"] = lambda: blur_extent_px(mgv_buf)
    stages["convert in"] = lambda: conv.to_model(img, "cpu", out=buf)
    x = conv.to_model(img, "cpu", out=buf)
    stages["convert out"] = lambda: conv.from_model(x)
    stages["encode (array_to_image)"] = lambda: array_to_image(img, hdr, encoding)
    out = {}
    for name, fn in stages.items():
        walls, cpus = [], []
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.thread_time()
            fn()
            cpus.append((time.thread_time() - c0) * 1e3)
            walls.append((time.perf_counter() - w0) * 1e3)
        out[name] = (statistics.median(walls), statistics.median(cpus))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=15)
    ap.add_argument("--lite", action="store_true", help="add an EggNet-lite row at 640x480")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    cases = [(w, h, enc, identity, "rgb" if enc == "rgb8" else "mono", "identity")
             for w, h in ((640, 480), (1280, 800)) for enc in ("mono8", "rgb8")]
    if args.lite:
        from eggnet_ros.model import EggNet, EggNetConfig

        cases.append((640, 480, "rgb8", EggNet(EggNetConfig.lite()).eval(), "rgb", "eggnet-lite"))
    print(f"eggnet_deblur_node latency, CPU ({torch.get_num_threads()} torch thread), median of the frames "
          "after warm-up, ms")
    print("| size | encoding | model | frames | e2e | in-node | model | motion+MGV | convert "
          "| overhead (in-node - model) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for w, h, enc, model, mode, name in cases:
            n = args.frames if name == "identity" else max(4, args.frames // 3)
            r = run_case(ctx, w, h, enc, model, mode, n)
            print(f"| {w}x{h} | {enc} | {name} | {r['n']} ({r['status']}) | {r['e2e']:.1f} | "
                  f"{r['in_node']:.1f} | {r['model']:.1f} | {r['motion']:.1f} | {r['convert']:.1f} | "
                  f"{r['overhead']:.1f} |", flush=True)
    finally:
        rclpy.try_shutdown(context=ctx)
    for w, h in ((1280, 800),):
        for enc in ("mono8", "rgb8"):
            costs = stage_costs(w, h, enc)
            print(f"\nprocessor stages at {w}x{h} {enc} (no DDS), median ms: wall / thread CPU")
            print("| stage | wall | CPU |\n| --- | --- | --- |")
            for name, (wall, cpu) in costs.items():
                print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
            tot_w = sum(v[0] for v in costs.values())
            tot_c = sum(v[1] for v in costs.values())
            print(f"| **total** | {tot_w:.2f} | {tot_c:.2f} |")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
