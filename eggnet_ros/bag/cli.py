"""``eggnet-bag``: synthesise, evaluate, replay and record rosbag2 files.

    eggnet-bag synth OUT [--storage mcap|sqlite3] [--frames 30] [--readout-time 0.02] ...
    eggnet-bag eval BAG [--out DIR] [--model PATH] [--image-topic ...] [timing options]
    eggnet-bag play BAG [--rate 1] [--loop] [--start-offset S] [--topics T ...]
    eggnet-bag record OUT --topics T [T ...] [--duration S] [--idle-timeout S]
    eggnet-bag info BAG

Argument defaults come from :mod:`eggnet_ros.config` (the one place defaults live). Bad input
(missing topic, missing model, existing output) ends with one clear line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections import Counter
from pathlib import Path

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig

_LOG = logging.getLogger("eggnet-bag")
_T = ExposureTiming()
_P = ProcessorConfig()
#: The source checkout's shipped models (``make demo`` / ``eggnet-bag`` from a clone).
REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


def _add_synth(sub: argparse._SubParsersAction) -> None:
    from eggnet_ros.bag.synth import BagSynthConfig

    d = BagSynthConfig()
    p = sub.add_parser("synth", help="write a synthetic bag (blurred + sharp images, camera_info, IMU)")
    p.add_argument("out", type=Path)
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--frames", type=int, default=d.frames)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--fps", type=float, default=d.fps)
    p.add_argument("--hfov-deg", type=float, default=d.hfov_deg)
    p.add_argument("--exposure-time", type=float, default=d.exposure_time)
    p.add_argument("--readout-time", type=float, default=d.readout_time, help="rolling shutter; 0 = global")
    p.add_argument("--stamp-convention", choices=("start", "middle", "end"), default=d.stamp_convention)
    p.add_argument("--time-offset", type=float, default=d.time_offset, help="Kalibr: t_imu = t_cam + offset")
    p.add_argument("--rotation-cam-imu", type=float, nargs=9, default=None, metavar="R")
    p.add_argument("--imu-rate", type=float, default=d.imu_rate_hz)
    p.add_argument("--gyro-noise", type=float, default=d.gyro_noise)
    p.add_argument("--shake", default=d.shake_preset, choices=("gentle", "moderate", "strong", "vehicle"))
    p.add_argument("--intensity", type=float, default=d.shake_intensity)
    p.add_argument("--pan-rate", type=float, default=d.pan_rate)
    p.add_argument("--encoding", choices=("rgb8", "mono8", "bayer_rggb8"), default=d.encoding)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-sharp", action="store_true", help="omit the ground-truth topic")


def _add_processing(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("processing (defaults: the bag's eggnet_synth.json if present, else config.py)")
    g.add_argument("--model", default=_P.model)
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default=_P.device)
    g.add_argument("--exposure-time", type=float, default=None, help=f"s (default {_T.exposure_time})")
    g.add_argument("--stamp-convention", choices=("start", "middle", "end"), default=None)
    g.add_argument("--time-offset", type=float, default=None, help="Kalibr: t_imu = t_cam + offset")
    g.add_argument("--readout-time", type=float, default=None)
    g.add_argument("--rotation-cam-imu", type=float, nargs=9, default=None, metavar="R")
    g.add_argument("--min-blur-px", type=float, default=_P.min_blur_px)
    g.add_argument("--fallback", choices=("passthrough", "drop"), default=_P.fallback)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="replay a bag offline through the processing core and write a report")
    p.add_argument("bag", type=Path)
    p.add_argument("--out", type=Path, default=None, help="report directory (default: <bag>_eval)")
    p.add_argument("--output-bag", type=Path, default=None, help="default: <out>/deblurred_bag")
    p.add_argument("--no-output-bag", action="store_true")
    p.add_argument("--image-topic", default="/camera/image_raw")
    p.add_argument("--camera-info-topic", default="/camera/camera_info")
    p.add_argument("--imu-topic", default="/imu")
    p.add_argument("--sharp-topic", default="/camera/image_sharp", help="ground truth; '' = none")
    p.add_argument("--output-topic", default="/camera/image_deblurred")
    p.add_argument("--no-progress", action="store_true")
    _add_processing(p)


def _add_play(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="replay a bag over DDS with its original timing")
    p.add_argument("bag", type=Path)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--loop", action="store_true")
    p.add_argument("--start-offset", type=float, default=0.0, help="seconds into the bag")
    p.add_argument("--topics", nargs="+", default=None)
    p.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO")
    p.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S")


def _add_record(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record DDS topics into a bag")
    p.add_argument("out", type=Path)
    p.add_argument("--topics", nargs="+", required=True)
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--duration", type=float, default=None)
    p.add_argument("--idle-timeout", type=float, default=None)
    p.add_argument("--discovery-timeout", type=float, default=10.0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eggnet-bag", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_eval(sub)
    _add_play(sub)
    _add_record(sub)
    info = sub.add_parser("info", help="list a bag's topics")
    info.add_argument("bag", type=Path)
    return parser


def processor_config(args: argparse.Namespace, bag: Path) -> tuple[ProcessorConfig, list[str]]:
    """ProcessorConfig from the options, filling unset timing from the bag's sidecar."""
    from eggnet_ros.bag.evaluate import read_sidecar

    notes: list[str] = []
    sidecar = read_sidecar(bag) or {}
    truth = sidecar.get("timing", {})
    timing = {}
    for name in ("exposure_time", "stamp_convention", "time_offset", "readout_time"):
        given = getattr(args, name)
        if given is not None:
            timing[name] = given
        elif name in truth:
            timing[name] = truth[name]
            notes.append(f"{name}={truth[name]} taken from the bag's eggnet_synth.json")
    rotation = args.rotation_cam_imu or sidecar.get("rotation_cam_imu") or MotionConfig().rotation_cam_imu
    motion = MotionConfig(timing=ExposureTiming(**timing), rotation_cam_imu=tuple(float(v) for v in rotation))
    cfg = ProcessorConfig(motion=motion, model=args.model, device=args.device, min_blur_px=args.min_blur_px,
                          fallback=args.fallback)
    return cfg, notes


def resolve_model(model: str) -> str:
    """An absolute weights path when ``model`` names a file here or in the checkout's ``models/``.

    Otherwise ``model`` unchanged, for the core's own search (installed share directory) and its
    error message listing every place searched.
    """
    given = Path(model).expanduser()
    for cand in (given, given.with_suffix(".safetensors"), REPO_MODELS / given,
                 REPO_MODELS / (given.name + ".safetensors")):
        if cand.is_file():
            return str(cand.resolve())
    return model


def _cmd_synth(args: argparse.Namespace) -> int:
    from eggnet_ros.bag.synth import BagSynthConfig, synthesize_bag

    d = BagSynthConfig()
    topics = dict(d.topics)
    if args.no_sharp:
        topics.pop("sharp")
    cfg = BagSynthConfig(frames=args.frames, width=args.width, height=args.height, fps=args.fps,
                         hfov_deg=args.hfov_deg, exposure_time=args.exposure_time,
                         readout_time=args.readout_time,
                         stamp_convention=args.stamp_convention, time_offset=args.time_offset,
                         rotation_cam_imu=tuple(args.rotation_cam_imu or d.rotation_cam_imu),
                         imu_rate_hz=args.imu_rate, gyro_noise=args.gyro_noise, shake_preset=args.shake,
                         shake_intensity=args.intensity, pan_rate=args.pan_rate, encoding=args.encoding,
                         seed=args.seed, topics=topics)
    summary = synthesize_bag(args.out, cfg, storage=args.storage)
    median = sorted(summary.blur_px)[len(summary.blur_px) // 2]
    print(f"wrote {summary.path} ({args.storage}): {summary.frames} frames, {summary.imu_samples} IMU "
          f"samples, {summary.duration_s:.2f} s; blur extent median {median:.1f} px")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from eggnet_ros.bag.evaluate import EvalTopics, evaluate_bag
    from eggnet_ros.bag.io import IMAGE_TYPES, BagReader
    from eggnet_ros.bag.report import write_report
    from eggnet_ros.core import DeblurProcessor

    out = args.out or args.bag.with_name(args.bag.name + "_eval")
    output_bag = None if args.no_output_bag else (args.output_bag or out / "deblurred_bag")
    cfg, notes = processor_config(args, args.bag)
    topics = EvalTopics(image=args.image_topic, camera_info=args.camera_info_topic, imu=args.imu_topic,
                        sharp=args.sharp_topic or None, output=args.output_topic)
    with BagReader(args.bag) as reader:  # fail on a missing image topic before loading the model
        reader.require(topics.image, IMAGE_TYPES, "image")
    try:
        processor = DeblurProcessor(dataclasses.replace(cfg, model=resolve_model(cfg.model)))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        # e.g. the ament index lookup of an installed share/ directory failing outside ROS
        raise FileNotFoundError(f"model {cfg.model!r} not found in {REPO_MODELS} ({exc}); "
                                "pass --model PATH.safetensors") from exc
    _LOG.info("%s", processor.describe())
    out.mkdir(parents=True, exist_ok=True)
    result = evaluate_bag(args.bag, processor, topics, output_bag=output_bag, progress=not args.no_progress)
    result.notes[:0] = notes
    report = write_report(result, out)
    s = result.summary()
    print(f"report: {report}")
    print(f"frames {s['frames']}: {s['deblurred']} deblurred, {s['passthrough']} passthrough, "
          f"{s['dropped']} dropped, {s['skipped']} skipped")
    for note in result.notes:
        print(f"note: {note}")
    reasons = Counter(f.reason for f in result.frames if f.status != "deblurred")
    for reason, count in reasons.most_common(3):
        print(f"fallback x{count}: {reason}")
    if s["psnr_in"] == s["psnr_in"]:  # not NaN
        print(f"PSNR {s['psnr_in']:.2f} -> {s['psnr_out']:.2f} dB, "
              f"SSIM {s['ssim_in']:.3f} -> {s['ssim_out']:.3f}")
    for name, vo in s["vo"].items():
        print(f"VO {name:9s}: tracked {vo['tracked']:.1f}/pair, inliers {vo['inliers']:.1f}, "
              f"ratio {vo['inlier_ratio']:.3f}")
    return 0


def _cmd_play(args: argparse.Namespace) -> int:
    import rclpy

    from eggnet_ros.bag.play import PlayOptions, play_bag

    remap = {}
    for item in args.remap:
        src, sep, dst = item.partition(":=")
        if not sep:
            raise ValueError(f"--remap takes FROM:=TO, got {item!r}")
        remap["/" + src.lstrip("/")] = dst
    opts = PlayOptions(rate=args.rate, start_offset=args.start_offset, loop=args.loop,
                       topics=tuple(args.topics) if args.topics else None, remap=remap,
                       wait_for_subscribers=args.wait_for_subscribers)
    rclpy.init()
    try:
        stats = play_bag(args.bag, opts)
    except KeyboardInterrupt:
        return 0
    finally:
        rclpy.try_shutdown()
    total = sum(stats.published.values())
    print(f"published {total} messages in {stats.wall_s:.2f} s ({stats.loops} pass(es))")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    import threading

    import rclpy

    from eggnet_ros.bag.record import RecordOptions, record_bag

    opts = RecordOptions(topics=tuple(args.topics), storage=args.storage, duration=args.duration,
                         idle_timeout=args.idle_timeout, discovery_timeout=args.discovery_timeout)
    rclpy.init()
    stop = threading.Event()
    try:
        stats = record_bag(args.out, opts, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return 0
    finally:
        rclpy.try_shutdown()
    missing = f"; missing: {stats.missing}" if stats.missing else ""
    print(f"recorded {stats.received} into {args.out}{missing}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from eggnet_ros.bag.io import BagReader

    with BagReader(args.bag) as r:
        print(f"{args.bag} ({r.storage}), {(r.end_ns - r.start_ns) * 1e-9:.3f} s")
        for t in r.topics.values():
            print(f"  {t.topic:32s} {t.msgtype:36s} {t.count}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    commands = {"synth": _cmd_synth, "eval": _cmd_eval, "play": _cmd_play, "record": _cmd_record,
                "info": _cmd_info}
    try:
        return commands[args.command](args)
    except (ValueError, OSError, TimeoutError) as exc:
        # BagError, ModelNotFoundError, bad options: one line, no traceback.
        print(f"eggnet-bag {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

