"""Benchmark: models side by side on synthetic rosbag2 recordings with robot-length blur.

Why: the fixed test set (`eggnet-eval`) has short blur (median 9.8 px), where the image path
alone does most of the work, and its shake mixes directions. A robot's camera sees longer
streaks and yaw pans. This script writes two recordings with `eggnet-bag synth` ("shake":
moderate hand shake; "pan": gentle shake on a 0.6 rad/s yaw, a horizontal streak), runs each
model through `eggnet-bag eval` (the node's processing core, offline), and prints PSNR/SSIM and
the visual-odometry front end's tracked features and inliers per frame pair in one table.

Usage: ``python bench/bag_models.py [--frames 40] [--width 640] [--height 480] [--out DIR] MODEL...``
(MODEL: a shipped name such as ``eggnet_lite`` or a .safetensors path). The recordings (~70 MB
each at the default size) are kept in ``--out`` (default ``results/bag_models``, git-ignored) and
reused when present, so adding a model later only evaluates that model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eggnet_ros.bag.cli import main as bag_main

#: A phone-like rolling-shutter camera, stamped at the start of the frame, IMU clock 5 ms ahead.
TIMING = ["--exposure-time", "0.025", "--readout-time", "0.015", "--stamp-convention", "start",
          "--time-offset", "0.005"]
CASES: dict[str, list[str]] = {
    "shake": ["--shake", "moderate", "--seed", "7"],
    "pan": ["--shake", "gentle", "--pan-rate", "0.6", "--seed", "8"],
}


def synth_bag(bag: Path, frames: int, width: int, height: int, extra: list[str]) -> None:
    if bag.exists():
        return
    code = bag_main(["synth", str(bag), "--frames", str(frames), "--width", str(width), "--height",
                     str(height), "--hfov-deg", "60", *TIMING, *extra])
    if code != 0:
        raise RuntimeError(f"eggnet-bag synth {bag} failed ({code})")


def evaluate(bag: Path, model: str, out: Path, device: str) -> dict:
    # the timing comes from the recording's eggnet_synth.json sidecar (`eggnet-bag eval` reads it)
    code = bag_main(["eval", str(bag), "--out", str(out), "--no-output-bag", "--no-progress",
                     "--model", model, "--device", device])
    if code != 0:
        raise RuntimeError(f"eggnet-bag eval {bag} --model {model} failed ({code})")
    return json.loads((out / "results.json").read_text())["summary"]


def _vo(summary: dict, which: str) -> str:
    v = summary["vo"][which]
    return f"{v['tracked']:.1f} / {v['inliers']:.1f}"


def format_table(rows: dict[str, dict[str, dict]]) -> str:
    """``rows[case][label]`` = a results summary; one line per model, two columns per case.

    The blurred input and the sharp ground truth are the same for every model of a case, so
    they are read from the case's first summary.
    """
    cases = list(rows)
    ref = {c: next(iter(rows[c].values())) for c in cases}

    def cell(summary: dict, which: str) -> str:
        psnr, ssim = (summary["psnr_in"], summary["ssim_in"]) if which == "blurred" else (
            summary["psnr_out"], summary["ssim_out"])
        return f"{psnr:.2f} / {ssim:.3f} | {_vo(summary, which)}"

    lines = [
        "| model | " + " | ".join(f"{c}: PSNR / SSIM | {c}: VO tracked / inliers" for c in cases) + " |",
        "| --- |" + " ---: | ---: |" * len(cases),
        "| blurred input | " + " | ".join(cell(ref[c], "blurred") for c in cases) + " |",
    ]
    for label in rows[cases[0]]:
        lines.append(f"| {label} | " + " | ".join(cell(rows[c][label], "deblurred") for c in cases) + " |")
    lines.append("| sharp ground truth | " + " | ".join(f"– | {_vo(ref[c], 'sharp')}" for c in cases) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("results/bag_models"))
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, dict]] = {}
    for case, extra in CASES.items():
        bag = args.out / f"{case}_{args.width}x{args.height}_{args.frames}"
        synth_bag(bag, args.frames, args.width, args.height, extra)
        rows[case] = {}
        for model in args.models:
            label = Path(model).stem
            rows[case][label] = evaluate(bag, model, args.out / "eval" / f"{bag.name}_{label}", args.device)
    blur = ", ".join(f"{case}: {next(iter(r.values()))['blur_px_mean']:.1f} px" for case, r in rows.items())
    print(f"\n{args.frames} frames {args.width}x{args.height} per recording (mean blur {blur})\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
