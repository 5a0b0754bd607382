"""Benchmark: gyro -> MGV field, ms per frame on one CPU core.

Usage: ``python bench/motion.py [--check] [--repeat 20]``. Thread pools are pinned to one
thread before numpy/OpenCV load, as on a busy robot computer. ``--check`` also evaluates every
field exactly at every pixel and prints the largest deviation of the default (coarse grid +
bilinear) path, which must stay below its tolerance.

Cases: global shutter without distortion (the common case, goal <= 3 ms at 1 MP), rolling
shutter (30 ms readout), and plumb_bob distortion with rolling shutter. The shake is a
realistic hand-held one (about 2 rad/s with fast wobble, 20 ms exposure: streaks of tens of
pixels). frame_motion (gyro integration) is timed separately.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from eggnet_ros.config import ExposureTiming, MotionConfig  # noqa: E402
from eggnet_ros.motion import CameraModel, ImuSamples, blur_extent_px, frame_motion, mgv_field  # noqa: E402

SIZES = ((640, 480), (1280, 720), (1024, 1024))
NS = (13, 41)


def _imu() -> ImuSamples:
    t = np.arange(0.0, 2.0, 1.0 / 400.0)
    w = np.column_stack(
        [1.2 * np.sin(9 * t) + 0.4 * np.sin(47 * t), 1.8 + 0.5 * np.cos(31 * t), 0.6 * np.sin(13 * t)]
    )
    return ImuSamples(t, w)


def _camera(width: int, height: int, distorted: bool) -> CameraModel:
    f = 0.9 * width
    K = np.array([[f, 0, (width - 1) / 2 + 3.1], [0, f, (height - 1) / 2 - 2.3], [0, 0, 1]])
    if distorted:
        return CameraModel(width, height, K, "plumb_bob", [-0.12, 0.03, 0.0005, -0.0003, 0.0])
    return CameraModel(width, height, K)


def _time_ms(fn, repeat: int) -> tuple[float, float]:
    """(median CPU ms, min wall ms) per call.

    CPU time (``time.process_time``: user + system of this single-threaded process) is what a
    frame costs on one core even when the machine is shared and the process is descheduled;
    the minimum wall time is the best-case latency on an idle core.
    """
    fn()  # warm-up (caches, page faults of fresh buffers)
    cpu, wall = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(cpu), min(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--check", action="store_true", help="compare with exact per-pixel evaluation")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    imu = _imu()
    cases = {
        "global": (0.0, False),
        "rolling": (0.03, False),
        "rolling+dist": (0.03, True),
    }
    header = f"{'size':>10} {'N':>3} {'frame_motion gs/rs (CPU)':>25} " + " ".join(f"{c:>15}" for c in cases)
    header += "  blur_px" + ("  max_err_px(global/rolling/dist)" if args.check else "")
    print(
        "MGV field (mgv_field), ms per frame on one core: median CPU time (min wall time); tolerance 0.02 px"
    )
    print(header)
    print("-" * len(header))
    for width, height in SIZES:
        for n in NS:
            cells, errs, fm_ms, blur = [], [], [], 0.0
            for readout, distorted in cases.values():
                cfg = MotionConfig(timing=ExposureTiming(0.02, "middle", 0.0, readout), n_samples=n)
                motion = frame_motion(imu, 1.0, height, cfg)
                cam = _camera(width, height, distorted)
                if not distorted:
                    fm_ms.append(
                        _time_ms(lambda cfg=cfg, h=height: frame_motion(imu, 1.0, h, cfg), args.repeat)[0]
                    )
                out = np.empty((6, height, width), np.float32)
                cells.append(_time_ms(lambda m=motion, c=cam, o=out: mgv_field(m, c, out=o), args.repeat))
                field = mgv_field(motion, cam)
                blur = max(blur, blur_extent_px(field))
                if args.check:
                    errs.append(float(np.abs(field - mgv_field(motion, cam, grid_step=1)).max()))
            row = f"{width}x{height:<5} {n:>3} {fm_ms[0]:>12.2f}/{fm_ms[1]:<12.2f} "
            row += " ".join(f"{f'{med:.2f} ({mn:.2f})':>15}" for med, mn in cells) + f"  {blur:7.1f}"
            if args.check:
                row += "  " + "/".join(f"{e:.4f}" for e in errs)
            print(row)


if __name__ == "__main__":
    main()
