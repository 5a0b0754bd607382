"""``eggnet-capture``: real captures (frames + gyro + calibration) -> layout, bag, diagnostics, deblurring.

Subcommands::

    from-shield SRC OUT            SHIELD tablet recording (shared/realdata/shield_tablet) -> layout
    from-galaxy SRC OUT            Galaxy Nexus photo (shared/realdata/galaxy_nexus) -> layout
    import FOLDER --out BAG        layout -> rosbag2 (+ BAG.params.yaml with the node parameters)
    overlay FOLDER --out PNG       gyro-predicted blur paths drawn on a frame
    sweep-offset FOLDER --csv CSV  score candidate time offsets; best offset and optimum width
    check-axes FOLDER              score candidate camera<-IMU rotations at the rig's offset
    deblur FOLDER --out-dir DIR    batch deblurring through the node's core + sharpness report
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from .layout import LayoutError, read_capture

_LOG = logging.getLogger("eggnet-capture")


def _scale_arg(text: str) -> float | str:
    if text == "auto":
        return text
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"scale must be in (0, 1] or 'auto', got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eggnet-capture", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("from-shield", help="SHIELD tablet recording -> capture layout")
    s.add_argument("src", type=Path)
    s.add_argument("out", type=Path)

    s = sub.add_parser("from-galaxy", help="Galaxy Nexus photo + gyro -> capture layout")
    s.add_argument("src", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument(
        "--exposure",
        type=float,
        default=None,
        help="exposure time (s); default 0.06 (EXIF; the source program uses 0.04999)",
    )

    s = sub.add_parser("import", help="capture layout -> rosbag2 + node parameters YAML")
    s.add_argument("folder", type=Path)
    s.add_argument("--out", type=Path, required=True, help="rosbag2 directory to create")
    s.add_argument("--scale", type=float, default=1.0, help="store frames (and camera_info) resized by this")
    s.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")

    s = sub.add_parser("overlay", help="draw the gyro-predicted blur paths on a frame")
    s.add_argument("folder", type=Path)
    s.add_argument("--frame", type=int, default=None, help="frame index (default: the middle frame)")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--scale", type=float, default=1.0)
    s.add_argument("--gain", type=float, default=1.0, help="magnify streaks about their centre (mild blur)")
    s.add_argument("--cols", type=int, default=12, help="grid columns")
    s.add_argument("--offset-ms", type=float, default=None, help="override rig.yaml's time offset")

    s = sub.add_parser("sweep-offset", help="score candidate camera-IMU time offsets")
    s.add_argument("folder", type=Path)
    s.add_argument("--from-ms", type=float, default=None, help="default: rig offset - 40 ms")
    s.add_argument("--to-ms", type=float, default=None, help="default: rig offset + 40 ms")
    s.add_argument("--step-ms", type=float, default=1.0)
    s.add_argument("--frames", type=int, nargs="*", default=None)
    s.add_argument("--scale", type=float, default=0.5)
    s.add_argument("--tile", type=int, default=24)
    s.add_argument("--rel-tol", type=float, default=0.1)
    s.add_argument("--abs-tol", type=float, default=0.05, help="score differences treated as noise")
    s.add_argument("--csv", type=Path, required=True)
    s.add_argument("--png", type=Path, default=None)
    s.add_argument("--reference-ms", type=float, default=None, help="mark this offset (default: rig.yaml's)")

    s = sub.add_parser("check-axes", help="score candidate camera<-IMU rotations")
    s.add_argument("folder", type=Path)
    s.add_argument("--scale", type=float, default=0.5)

    s = sub.add_parser("deblur", help="batch deblurring of a capture folder")
    add_deblur_arguments(s)
    return p


def add_deblur_arguments(s: argparse.ArgumentParser) -> None:
    """Arguments of the batch mode (shared with ``eggnet-deblur --folder``)."""
    s.add_argument("folder", type=Path)
    s.add_argument("--out-dir", type=Path, required=True)
    s.add_argument(
        "--scale",
        type=_scale_arg,
        default="auto",
        help="process at this scale (frame and K); 'auto' = blur within the training range",
    )
    s.add_argument("--target-blur-px", type=float, default=20.0, help="blur targeted by --scale auto")
    s.add_argument("--model", default=None, help="weights path or shipped model name")
    s.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    s.add_argument("--frames", type=int, nargs="*", default=None)
    s.add_argument("--side-by-side", action="store_true", help="also write <frame>_side.png")
    s.add_argument(
        "--crop",
        type=int,
        nargs=4,
        default=None,
        metavar=("X", "Y", "W", "H"),
        help="side-by-side of this full-resolution region only",
    )


def run_deblur(args: argparse.Namespace) -> int:
    import dataclasses

    from eggnet_ros.config import ProcessorConfig

    from .batch import deblur_folder, format_table

    cfg = ProcessorConfig()
    if args.model:
        cfg = dataclasses.replace(cfg, model=args.model)
    if args.device:
        cfg = dataclasses.replace(cfg, device=args.device)
    reports = deblur_folder(
        args.folder,
        args.out_dir,
        cfg,
        scale=args.scale,
        frames=args.frames,
        target_blur_px=args.target_blur_px,
        side_by_side_frames=args.side_by_side,
        crop=None if args.crop is None else tuple(args.crop),
    )
    print(format_table(reports))
    print(f"wrote {len(reports)} frames and report.csv to {args.out_dir}")
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.command == "from-shield":
        from .adapters import from_shield

        print(f"wrote {from_shield(args.src, args.out)}")
    elif args.command == "from-galaxy":
        from .adapters import GALAXY_EXPOSURE_EXIF, from_galaxy

        print(f"wrote {from_galaxy(args.src, args.out, exposure=args.exposure or GALAXY_EXPOSURE_EXIF)}")
    elif args.command == "import":
        from .importer import import_capture

        params = import_capture(args.folder, args.out, scale=args.scale, storage=args.storage)
        print(f"wrote rosbag2 {args.out}; node parameters ({params}):\n")
        print(params.read_text())
    elif args.command == "overlay":
        from .overlay import write_overlay

        capture = read_capture(args.folder)
        index = len(capture) // 2 if args.frame is None else args.frame
        offset = None if args.offset_ms is None else args.offset_ms * 1e-3
        out = write_overlay(
            capture, index, args.out, scale=args.scale, gain=args.gain, cols=args.cols, time_offset=offset
        )
        print(f"wrote {out}")
    elif args.command == "sweep-offset":
        from .offset_sweep import sweep_offset, write_sweep

        capture = read_capture(args.folder)
        rig_ms = capture.rig.time_offset * 1e3
        lo = rig_ms - 40 if args.from_ms is None else args.from_ms
        hi = rig_ms + 40 if args.to_ms is None else args.to_ms
        offsets = np.arange(lo, hi + 0.5 * args.step_ms, args.step_ms) * 1e-3
        res = sweep_offset(
            capture,
            offsets,
            frames=args.frames,
            scale=args.scale,
            tile=args.tile,
            rel_tol=args.rel_tol,
            abs_tol=args.abs_tol,
        )
        ref = (rig_ms if args.reference_ms is None else args.reference_ms) * 1e-3
        write_sweep(res, args.csv, args.png, reference=ref, title=args.folder.name)
        span = float(np.max(res.scores) - np.min(res.scores))
        print(f"frames used: {list(res.frames)}")
        print(
            f"best offset {res.best * 1e3:.2f} ms; optimum [{res.low * 1e3:.1f}, {res.high * 1e3:.1f}] ms "
            f"(width {res.width * 1e3:.1f} ms); score range over the sweep {span:.4f}"
        )
        print(f"reference {ref * 1e3:.2f} ms is {'inside' if res.contains(ref) else 'OUTSIDE'} the optimum")
        if res.low <= offsets[0] and res.high >= offsets[-1]:
            print("the curve is flat over the whole sweep: the offset is not observable from these frames")
    elif args.command == "check-axes":
        from .offset_sweep import sweep_offset

        capture = read_capture(args.folder)
        for name, rot in axis_candidates(capture.rig.rotation_matrix).items():
            res = sweep_offset(capture, np.array([capture.rig.time_offset]), scale=args.scale, rotation=rot)
            print(f"{name:<32}score {res.scores[0]:+.4f}")
    elif args.command == "deblur":
        return run_deblur(args)
    return 0


def axis_candidates(rig: np.ndarray) -> dict[str, np.ndarray]:
    """The rig rotation and the usual mistakes: roll sign flipped, x/y not swapped, identity."""
    return {
        "rig.yaml": rig,
        "rig, roll sign flipped": np.diag([-1.0, -1.0, 1.0]) @ rig,
        "rig, x<->y swapped (z negated)": np.array([[0, 1.0, 0], [1.0, 0, 0], [0, 0, -1.0]]) @ rig,
        "identity": np.eye(3),
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(args)
    except (LayoutError, FileNotFoundError, FileExistsError, ValueError) as exc:
        _LOG.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
