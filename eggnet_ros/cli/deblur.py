"""``eggnet-deblur``: deblur one image file with a gyro log, through the node's DeblurProcessor.

    eggnet-deblur --image blurred.png --imu imu.csv --camera-info camera.yaml \\
        --stamp T --exposure-time E [--stamp-convention middle] [--time-offset 0] \\
        [--rotation r00,r01,...,r22] [--readout-time 0] [--model PATH] --out sharp.png

The IMU CSV has the header ``t,wx,wy,wz`` (seconds in the IMU clock, rad/s in the IMU frame);
the camera YAML is a ROS ``camera_calibration`` file. Defaults come from
:mod:`eggnet_ros.config`, exactly as for the node. Exit status: 0 = deblurred (or passed through
because the blur is below ``--min-blur-px``), 2 = could not deblur (reason on stderr; the input is
written unchanged unless ``--fallback drop``), 1 = bad arguments or model.

Batch mode over a capture folder (the layout of ``docs/captures.md``: frames, ``frames.csv``,
``imu.csv``, ``camera.yaml``, ``rig.yaml``; the rig overrides the timing arguments)::

    eggnet-deblur --folder CAPTURE --out-dir OUT [--scale auto] [--model PATH]

Both modes go through the same :class:`DeblurProcessor` as the node.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from eggnet_ros.config import ExposureTiming, MotionConfig, ProcessorConfig
from eggnet_ros.core import SUPPORTED_ENCODINGS, DeblurProcessor, FrameResult
from eggnet_ros.core.validation import rotation_problem
from eggnet_ros.motion import CameraModel, ImuSamples, read_imu_csv

_LOG = logging.getLogger("eggnet-deblur")


class CliError(Exception):
    """Bad input file or argument: reported as one line, exit status 1."""


def _floats(text: str, n: int) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated numbers, got {text!r}") from None
    if len(values) != n:
        raise argparse.ArgumentTypeError(f"expected {n} comma-separated numbers, got {len(values)}")
    return values


def _rotation(text: str) -> tuple[float, ...]:
    values = _floats(text, 9)
    problem = rotation_problem(values)
    if problem:
        raise argparse.ArgumentTypeError(f"--rotation {problem}")
    return values


def build_parser() -> argparse.ArgumentParser:
    timing, motion, proc = ExposureTiming(), MotionConfig(), ProcessorConfig()
    p = argparse.ArgumentParser(prog="eggnet-deblur", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--image", default=None, type=Path, help="blurred input image (PNG/JPEG/TIFF)")
    p.add_argument("--imu", default=None, type=Path, help="gyro CSV with header t,wx,wy,wz")
    p.add_argument("--camera-info", default=None, type=Path, help="ROS camera_calibration YAML")
    p.add_argument("--stamp", default=None, type=float, help="image stamp (s, camera clock)")
    p.add_argument("--exposure-time", type=float, default=timing.exposure_time, help="exposure time (s)")
    p.add_argument("--stamp-convention", choices=("start", "middle", "end"), default=timing.stamp_convention,
                   help="which instant of the exposure span the stamp marks")
    p.add_argument("--time-offset", type=float, default=timing.time_offset, help="t_imu = t_cam + offset (s)")
    p.add_argument("--readout-time", type=float, default=timing.readout_time,
                   help="rolling-shutter readout (s), 0 = global shutter")
    p.add_argument("--rotation", type=_rotation, default=motion.rotation_cam_imu,
                   help="camera<-IMU rotation, 9 row-major numbers r00,r01,...,r22")
    p.add_argument("--max-imu-gap", type=float, default=motion.max_imu_gap,
                   help="largest tolerated IMU gap (s)")
    p.add_argument("--model", default=proc.model, help="model name or .safetensors path")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=proc.device)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default=proc.precision)
    p.add_argument("--min-blur-px", type=float, default=proc.min_blur_px,
                   help="pass the image through below this predicted blur (px)")
    p.add_argument("--fallback", choices=("passthrough", "drop"), default=proc.fallback,
                   help="what to write when the image cannot be deblurred")
    p.add_argument("--encoding", choices=SUPPORTED_ENCODINGS, default=None,
                   help="how to interpret the file (default: mono8/mono16/bgr8 from its layout; "
                        "give bayer_* for raw mosaics saved as single-channel images)")
    p.add_argument("--out", default=None, type=Path, help="output image path")
    batch = p.add_argument_group("batch mode over a capture folder (docs/captures.md)")
    batch.add_argument("--folder", type=Path, default=None,
                       help="capture folder; replaces --image/--imu/...")
    batch.add_argument("--out-dir", type=Path, default=None, help="where deblurred frames + report.csv go")
    batch.add_argument("--scale", default="auto",
                       help="processing scale: a float, or auto = shrink until the blur is in the "
                       "model's range")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _check_mode(args: argparse.Namespace) -> None:
    if args.folder is not None:
        if args.out_dir is None:
            raise CliError("--folder needs --out-dir")
        return
    missing = [flag for flag, value in (("--image", args.image), ("--imu", args.imu),
               ("--camera-info", args.camera_info), ("--stamp", args.stamp), ("--out", args.out))
               if value is None]
    if missing:
        raise CliError(f"single-image mode needs {', '.join(missing)} (or use --folder)")


def run_folder(args: argparse.Namespace) -> int:
    """Batch mode: every frame of a capture folder, rig calibration from its rig.yaml."""
    from eggnet_ros.capture.batch import deblur_folder, format_table

    scale: float | str = args.scale if args.scale == "auto" else float(args.scale)
    reports = deblur_folder(args.folder, args.out_dir, config_from_args(args), scale=scale)
    print(format_table(reports))
    return 0


def config_from_args(args: argparse.Namespace) -> ProcessorConfig:
    timing = ExposureTiming(exposure_time=args.exposure_time, stamp_convention=args.stamp_convention,
                            time_offset=args.time_offset, readout_time=args.readout_time)
    motion = MotionConfig(timing=timing, rotation_cam_imu=tuple(args.rotation), max_imu_gap=args.max_imu_gap)
    return ProcessorConfig(motion=motion, model=args.model, device=args.device, precision=args.precision,
                           min_blur_px=args.min_blur_px, fallback=args.fallback)


def read_image(path: Path, encoding: str | None = None) -> tuple[np.ndarray, str]:
    """Image file -> (array, ROS encoding); OpenCV's BGR order maps to ``bgr8``."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise CliError(f"cannot read image {path}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if encoding is None:
        if img.ndim == 2:
            encoding = "mono8" if img.dtype == np.uint8 else "mono16" if img.dtype == np.uint16 else ""
        elif img.dtype == np.uint8:
            encoding = "bgr8"
        if not encoding:
            raise CliError(f"{path}: {img.dtype} image with shape {img.shape} has no supported encoding "
                           f"({', '.join(SUPPORTED_ENCODINGS)})")
    return img, encoding


@dataclass
class Inputs:
    """What stays fixed across the images of one run (one gyro log, one camera)."""

    imu: ImuSamples
    camera: CameraModel


def load_inputs(imu_path: Path, camera_path: Path, max_gap: float) -> Inputs:
    try:
        imu = read_imu_csv(imu_path, max_gap=max_gap)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read IMU CSV {imu_path}: {exc}") from exc
    try:
        camera = CameraModel.from_calibration_yaml(camera_path)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read camera YAML {camera_path}: {exc}") from exc
    return Inputs(imu, camera)


def deblur_file(processor: DeblurProcessor, image_path: Path, out_path: Path, stamp: float, inputs: Inputs,
                encoding: str | None = None) -> FrameResult:
    """Deblur one file into ``out_path`` (written unless the result is dropped)."""
    image, enc = read_image(image_path, encoding)
    result = processor.process(image, enc, stamp, inputs.imu, inputs.camera)
    if result.image is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(out_path), result.image):
            raise CliError(f"cannot write {out_path}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(message)s")
    try:
        _check_mode(args)
        if args.folder is not None:
            return run_folder(args)
        inputs = load_inputs(args.imu, args.camera_info, args.max_imu_gap)
        processor = DeblurProcessor(config_from_args(args))
        result = deblur_file(processor, args.image, args.out, args.stamp, inputs, args.encoding)
    except CliError as exc:
        print(f"eggnet-deblur: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError) as exc:  # model missing/corrupt, CUDA required...
        print(f"eggnet-deblur: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    timings = " ".join(f"{k}={v:.1f}ms" for k, v in result.timings.items())
    written = str(args.out) if result.image is not None else "nothing written"
    print(f"{result.status}: blur {result.blur_px:.2f} px, {timings} -> {written}")
    if result.fallback:
        print(f"eggnet-deblur: not deblurred: {result.reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
