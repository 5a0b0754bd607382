"""Write an evaluation report: Markdown tables, side-by-side crops, a per-frame plot, JSON.

The Markdown is meant to be pasted into an issue or PR as is; the crops let a reader judge
artefacts that PSNR averages away; the JSON keeps every per-frame number for later analysis.
The crops are composed with OpenCV; the plot needs matplotlib and is skipped (with a note) on
machines without it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np

from eggnet_ros.bag.evaluate import EvalResult
from eggnet_ros.bag.vo import to_gray8

_LOG = logging.getLogger(__name__)

CROP = 192


def _fmt(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _to_rgb8(image: np.ndarray, encoding: str) -> np.ndarray:
    if image.ndim == 3:
        img = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
        return img[..., ::-1].copy() if encoding.startswith("bgr") else img
    gray = to_gray8(image, encoding)
    return np.repeat(gray[..., None], 3, axis=2)


def _crop_origin(reference: np.ndarray) -> tuple[int, int, int]:
    """(y, x, size) of the most textured square window: flat sky shows no difference."""
    h, w = reference.shape[:2]
    s = min(CROP, h, w)
    gray = cv2.cvtColor(reference, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.integral(np.abs(cv2.Laplacian(gray, cv2.CV_32F)))
    best, origin = -1.0, ((h - s) // 2, (w - s) // 2)
    for y in range(0, h - s + 1, max(s // 6, 1)):
        for x in range(0, w - s + 1, max(s // 6, 1)):
            e = energy[y + s, x + s] - energy[y, x + s] - energy[y + s, x] + energy[y, x]
            if e > best:
                best, origin = float(e), (y, x)
    return origin[0], origin[1], s


def _crop(image: np.ndarray, origin: tuple[int, int, int]) -> np.ndarray:
    y, x, s = origin
    return cv2.resize(image[y : y + s, x : x + s], (CROP, CROP), interpolation=cv2.INTER_NEAREST)


def write_crops(result: EvalResult, path: Path) -> bool:
    """Rows of (blurred | deblurred | sharp) centre crops, one row per example frame."""
    if not result.examples:
        return False
    rows = []
    for label, blurred, deblurred, sharp in result.examples:
        rgb = [_to_rgb8(a, result.encoding) for a in (blurred, deblurred, sharp) if a is not None]
        origin = _crop_origin(rgb[-1])
        tiles = [_crop(a, origin) for a in rgb]
        padded = [np.pad(t, ((40, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles]
        row = np.concatenate(padded, axis=1)
        names = ["blurred", "deblurred", "sharp"][: len(tiles)]
        cv2.putText(row, label, (6, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        for i, name in enumerate(names):
            cv2.putText(row, name, (i * (CROP + 4) + 6, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                        cv2.LINE_AA)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return bool(cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)))


def write_plot(result: EvalResult, path: Path) -> bool:
    """Per-frame PSNR (input / output) and blur extent; False when matplotlib is unavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _LOG.warning("matplotlib not installed: skipping the per-frame plot")
        return False
    idx = [f.index for f in result.frames]
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    if any(math.isfinite(f.psnr_in) for f in result.frames):
        ax.plot(idx, [f.psnr_in for f in result.frames], "o-", ms=3, label="blurred (input)")
        ax.plot(idx, [f.psnr_out for f in result.frames], "o-", ms=3, label="deblurred (output)")
        ax.set_ylabel("PSNR (dB)")
    ax.set_xlabel("frame")
    ax2 = ax.twinx()
    ax2.plot(idx, [f.blur_px for f in result.frames], "--", color="grey", lw=1, label="blur extent (px)")
    ax2.set_ylabel("blur extent from IMU (px)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def markdown(result: EvalResult, crops: str | None, plot: str | None, max_rows: int = 200) -> str:
    s = result.summary()
    lines = [f"# EggNet evaluation: `{Path(result.bag).name}`", ""]
    lines += ["| frames | deblurred | passthrough | dropped | skipped | PSNR in → out (dB) | SSIM in → out "
              "| blur px mean / p95 / max | ms / frame |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
              f"| {s['frames']} | {s['deblurred']} | {s['passthrough']} | {s['dropped']} | {s['skipped']} "
              f"| {_fmt(s['psnr_in'])} → {_fmt(s['psnr_out'])} "
              f"| {_fmt(s['ssim_in'], 3)} → {_fmt(s['ssim_out'], 3)} "
              f"| {_fmt(s['blur_px_mean'], 1)} / {_fmt(s['blur_px_p95'], 1)} / {_fmt(s['blur_px_max'], 1)} "
              f"| {_fmt(s['time_ms_mean'], 0)} |", ""]
    if result.vo:
        lines += ["## Visual-odometry front end", "",
                  "FAST corners, pyramidal KLT, forward-backward check, RANSAC on the essential matrix.", "",
                  "| sequence | pairs | corners / frame | tracked / pair | inliers / pair | inlier ratio |",
                  "|---|---:|---:|---:|---:|---:|"]
        for name, vo in result.vo.items():
            lines.append(f"| {name} | {len(vo.pairs)} | {vo.mean_detected:.0f} | {vo.mean_tracked:.1f} "
                         f"| {vo.mean_inliers:.1f} | {vo.inlier_ratio:.3f} |")
        lines.append("")
    if crops:
        lines += [f"![blurred / deblurred / sharp crops]({crops})", ""]
    if plot:
        lines += [f"![per-frame PSNR and blur extent]({plot})", ""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in result.notes] + [""]
    fallbacks = [f for f in result.frames if f.status != "deblurred"]
    if fallbacks:
        lines += ["## Frames not deblurred (fallback)", "", "| frame | stamp (s) | status | reason |",
                  "|---:|---:|---|---|"]
        lines += [f"| {f.index} | {f.stamp:.6f} | {f.status} | {f.reason.replace('|', '/')} |"
                  for f in fallbacks[:max_rows]]
        if len(fallbacks) > max_rows:
            lines.append(f"| ... | | | {len(fallbacks) - max_rows} more in results.json |")
        lines.append("")
    lines += ["## Per frame", "",
              "| frame | status | blur px | PSNR in | PSNR out | SSIM in | SSIM out | ms |",
              "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for f in result.frames[:max_rows]:
        lines.append(f"| {f.index} | {f.status} | {_fmt(f.blur_px, 1)} | {_fmt(f.psnr_in)} "
                     f"| {_fmt(f.psnr_out)} "
                     f"| {_fmt(f.ssim_in, 3)} | {_fmt(f.ssim_out, 3)} | {_fmt(f.time_ms, 0)} |")
    if len(result.frames) > max_rows:
        lines.append(f"| ... | {len(result.frames) - max_rows} more frames in results.json | | | | | | |")
    timing = result.settings.get("timing", {})
    lines += ["", "## Settings", "", f"- model: `{result.settings.get('model')}`",
              f"- timing: {timing}", f"- topics: {result.settings.get('topics')}",
              f"- output bag: `{result.output_bag}`" if result.output_bag else "- output bag: none", ""]
    return "\n".join(lines)


def write_report(result: EvalResult, out_dir: str | Path) -> Path:
    """Write ``report.md``, ``crops.png``, ``per_frame.png`` and ``results.json``; return the .md."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    crops = "crops.png" if write_crops(result, out / "crops.png") else None
    plot = "per_frame.png" if result.frames and write_plot(result, out / "per_frame.png") else None
    (out / "results.json").write_text(result.to_json())
    md = out / "report.md"
    md.write_text(markdown(result, crops, plot))
    return md
