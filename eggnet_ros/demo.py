"""``make demo``: synthesise a bag, run the live node on it over DDS, record, evaluate, report.

What a new user sees in a few minutes on a laptop CPU, end to end through the same pieces they
will use on their robot: ``eggnet-bag synth`` writes a rosbag2 of a shaking camera (with the
ground truth), the real ``eggnet_deblur_node`` runs in this process with its parameters set from
the bag's timing, ``eggnet-bag play`` publishes the bag over DDS with its original timing,
``eggnet-bag record`` records what the node publishes, and ``eggnet-bag eval --recorded``-style
evaluation judges the recording against the ground truth (PSNR/SSIM, VO feature survival).

If DDS cannot start (no rclpy, a sandbox without network interfaces...), the same frames go
through the processing core offline and the output says so. Sizes default to 20 QVGA frames so
that the CPU model finishes in about a minute on two cores; ``--width/--height/--frames`` scale up.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig

_LOG = logging.getLogger("eggnet_ros.demo")

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
IMAGE, INFO, IMU, OUTPUT = "/camera/image_raw", "/camera/camera_info", "/imu", "/camera/image_deblurred"


class DdsUnavailableError(RuntimeError):
    """The live path could not run; the demo falls back to offline processing."""


def find_model(model: str) -> Path:
    """The weights to use: ``model`` (path or shipped name), else a gyro model in ``models/``.

    ``auto`` means what the node's ``model: auto`` runs on the CPU, where the demo runs it
    (``eggnet_lite``). Why it matters: before this, ``auto`` matched no file and the fallback
    took the alphabetically first lite model, the no-gyro ``base_deform_lite``, so ``make demo``
    showed an ablation instead of EggNet. The fallback now prefers EggNet weights for the same
    reason.
    """
    from eggnet_ros.bag.cli import resolve_model
    from eggnet_ros.core.model_paths import AUTO_MODEL, ModelNotFoundError, auto_model_name

    if model == AUTO_MODEL:
        with contextlib.suppress(ModelNotFoundError):
            model = auto_model_name("cpu")
    resolved = Path(resolve_model(model))
    if resolved.is_file():
        return resolved
    others = sorted(
        REPO_MODELS.glob("*.safetensors"),
        key=lambda p: (not p.name.startswith("eggnet"), "lite" not in p.name, p.name),
    )
    if others:
        _LOG.warning("model %r not found; using %s instead", model, others[0])
        return others[0]
    raise FileNotFoundError(
        f"no model weights: expected {REPO_MODELS / 'eggnet_lite.safetensors'} (the shipped model) or "
        f"--model PATH to a .safetensors file with its .json card beside it")


def _node_parameters(model: Path, timing: ExposureTiming, n_frames: int) -> list[Any]:
    from rclpy.parameter import Parameter

    values = {"model": str(model), "device": "cpu", "exposure_time": timing.exposure_time,
              "stamp_convention": timing.stamp_convention, "time_offset": timing.time_offset,
              "readout_time": timing.readout_time, "queue_size": min(max(n_frames, 5), 100),
              "max_wait": 2.0, "imu_buffer_seconds": 60.0, "use_tf": False}
    return [Parameter(k, value=v) for k, v in values.items()]


def run_live(bag: Path, recorded: Path, model: Path, timing: ExposureTiming, n_frames: int, rate: float,
             timeout: float) -> dict[str, Any]:
    """Node + player + recorder in one process, on a private DDS domain. Returns statistics."""
    try:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        from eggnet_ros.bag.play import PlayOptions, play_bag
        from eggnet_ros.bag.record import RecordOptions, record_bag
        from eggnet_ros.ros.node import DeblurNode
    except ImportError as exc:
        raise DdsUnavailableError(f"ROS 2 Python packages not importable ({exc})") from exc

    domain = int(os.environ.get("ROS_DOMAIN_ID", random.randint(100, 200)))
    ctx = Context()
    try:
        rclpy.init(context=ctx, domain_id=domain)
    except Exception as exc:  # rclpy raises RCLError subclasses not exported uniformly
        raise DdsUnavailableError(f"rclpy.init failed: {exc}") from exc
    threads: list[threading.Thread] = []
    executor = None
    stop = threading.Event()
    try:
        node = DeblurNode(context=ctx, namespace="camera", cli_args=["--ros-args", "-r", "imu:=/imu"],
                          parameter_overrides=_node_parameters(model, timing, n_frames))
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        threads.append(threading.Thread(target=executor.spin, name="node", daemon=True))
        rec_node = rclpy.create_node("eggnet_demo_recorder", context=ctx)
        ready = threading.Event()
        rec_stats: dict[str, Any] = {}
        opts = RecordOptions(topics=(OUTPUT,), expected={OUTPUT: n_frames}, duration=timeout,
                             idle_timeout=60.0)

        def record() -> None:
            rec_stats["stats"] = record_bag(recorded, opts, node=rec_node, stop=stop,
                                            types={OUTPUT: "sensor_msgs/msg/Image"}, ready=ready)

        threads.append(threading.Thread(target=record, name="recorder", daemon=True))
        for t in threads:
            t.start()
        ready.wait(15.0)
        player = rclpy.create_node("eggnet_demo_player", context=ctx)
        _LOG.info("playing %s over DDS (domain %d, rate %.2f)", bag, domain, rate)
        played = play_bag(bag, PlayOptions(rate=rate, topics=(IMAGE, INFO, IMU), wait_for_subscribers=10.0),
                          node=player, stop=stop)
        threads[1].join(timeout=timeout)
        stop.set()
        node_stats = node.stats.snapshot()
        stats = rec_stats.get("stats")
        received = stats.received.get(OUTPUT, 0) if stats else 0
        if received == 0:
            raise DdsUnavailableError(f"the node published nothing on {OUTPUT} within {timeout:.0f} s "
                                 f"(played {played.published})")
        reasons = dict(node.stats.reasons.most_common(5))
        return {"domain": domain, "played": played.published, "received": received, "node": node_stats,
                "reasons": reasons}
    except DdsUnavailableError:
        raise
    except Exception as exc:  # any DDS/node start failure -> offline path, with the reason printed
        raise DdsUnavailableError(f"{type(exc).__name__}: {exc}") from exc
    finally:
        stop.set()
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        for t in threads:
            t.join(timeout=10.0)
        rclpy.try_shutdown(context=ctx)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eggnet_ros.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("demo_output"))
    parser.add_argument("--model", default=ProcessorConfig().model)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--rate", type=float, default=0.25, help="playback speed factor (slow: see README)")
    parser.add_argument("--offline", action="store_true", help="skip DDS: run the processing core directly")
    parser.add_argument("--timeout", type=float, default=240.0, help="longest wait for the node's output (s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t_start = time.monotonic()

    from eggnet_ros.bag.evaluate import evaluate_bag
    from eggnet_ros.bag.report import write_report
    from eggnet_ros.bag.synth import BagSynthConfig, synthesize_bag

    try:
        model = find_model(args.model)
    except FileNotFoundError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    out = args.out
    bag, recorded, report_dir = out / "input_bag", out / "recorded_bag", out / "report"
    for p in (bag, recorded, report_dir, out / "deblurred_bag"):
        shutil.rmtree(p, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    # A phone-like camera: rolling shutter, stamps at the start of the frame, IMU clock 4 ms ahead.
    synth_cfg = BagSynthConfig(frames=args.frames, width=args.width, height=args.height, hfov_deg=60.0,
                               exposure_time=0.025, readout_time=0.015, stamp_convention="start",
                               time_offset=0.004, shake_intensity=1.2, seed=7)
    summary = synthesize_bag(bag, synth_cfg, storage=args.storage)
    timing = synth_cfg.timing
    cfg = ProcessorConfig(motion=MotionConfig(timing=timing), model=str(model), device="cpu")

    mode, live = "offline", None
    if not args.offline:
        try:
            live = run_live(bag, recorded, model, timing, args.frames, args.rate, args.timeout)
            mode = "dds"
        except DdsUnavailableError as exc:
            print(f"demo: DDS path unavailable ({exc}); processing offline instead")
    if mode == "dds":
        result = evaluate_bag(bag, SimpleNamespace(config=cfg, model_name=cfg.model), recorded=recorded,
                              progress=False)
        result.notes.append(f"live node over DDS (domain {live['domain']}); output recorded in {recorded}")
        counts = {k: v for k, v in live["node"].items() if isinstance(v, int) and v}
        result.notes.append(f"node counters: {counts}")
        for reason, n in live["reasons"].items():
            result.notes.append(f"node fallback x{n}: {reason}")
    else:
        from eggnet_ros.core import DeblurProcessor

        try:
            processor = DeblurProcessor(dataclasses.replace(cfg, model=str(model)))
        except (OSError, ValueError, RuntimeError) as exc:  # missing card, corrupt weights...
            print(f"demo: cannot load the model {model}: {exc}", file=sys.stderr)
            return 1
        result = evaluate_bag(bag, processor, output_bag=out / "deblurred_bag", progress=True)
        result.notes.append("offline: frames went through DeblurProcessor directly (no DDS)")
    report = write_report(result, report_dir)
    s = result.summary()
    wall = time.monotonic() - t_start
    print()
    print(f"EggNet demo ({mode}, model {model.name}): {s['frames']} frames {args.width}x{args.height}, "
          f"blur extent median {s['blur_px_median']:.1f} px (max {s['blur_px_max']:.1f})")
    print(f"  frames: {s['deblurred']} deblurred, {s['passthrough']} passthrough, {s['dropped']} dropped")
    print(f"  PSNR  blurred {s['psnr_in']:.2f} dB -> deblurred {s['psnr_out']:.2f} dB "
          f"(SSIM {s['ssim_in']:.3f} -> {s['ssim_out']:.3f})")
    for name, vo in s["vo"].items():
        print(f"  VO {name:9s}: {vo['tracked']:.1f} tracked features/pair, "
              f"inlier ratio {vo['inlier_ratio']:.3f}")
    print(f"  report: {report}  (bag: {bag}, {summary.imu_samples} IMU samples)")
    print(f"  wall time: {wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
