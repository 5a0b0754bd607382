"""Forward time of EggNet (paper width and lite) per deformable backend vs. the same net with plain convs.

Usage: ``python bench/model.py [--quick] [--device auto|cpu|cuda] [--sizes 256 512] [--widths 64 16]``

One table, one run: for every (width, size) the median forward time of the ``eggnet`` variant on
each usable deformable backend and of the ``plain`` variant (every deformable conv replaced by a
plain 3×3 conv: the floor the deformable backends are measured against), with the ratio
deformable / plain. On CUDA also bf16 (autocast) beside fp32, in absolute ms. ``torch.inference_mode``
throughout; batch 1, RGB input, MGVs of a few pixels so offsets are realistic.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eggnet_ros.model import EggNet, EggNetConfig, available_backends


def _time_forward(
    net: EggNet, image: torch.Tensor, mgv: torch.Tensor, iters: int, dtype: str
) -> tuple[float, float]:
    """Median wall time and median process CPU time of one forward (ms), after a warm-up call.

    CPU time is reported beside wall time because the development machine is shared: other
    processes stretch wall time, much less the CPU time this process itself burns.
    """
    device = image.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")
    times, cpu_times = [], []
    with torch.inference_mode(), autocast:
        # Warm-up (backend probes, lazy imports, Triton/cuDNN kernel selection): at full size on
        # CUDA where kernels depend on it, on a 64² crop on CPU where only the one-off work counts.
        if device.type == "cuda":
            net(image, mgv)
            torch.cuda.synchronize()
        else:
            net(image[..., :64, :64], mgv[..., :64, :64])
        for _ in range(iters):
            t0, c0 = time.perf_counter(), time.process_time()
            net(image, mgv)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
            cpu_times.append((time.process_time() - c0) * 1e3)
    return statistics.median(times), statistics.median(cpu_times)


def _time_train_step(
    net: EggNet, image: torch.Tensor, mgv: torch.Tensor, iters: int, dtype: str
) -> tuple[float, float]:
    """Median wall / CPU time (ms) of forward + L1 backward (no optimizer step), after a warm-up."""
    device = image.device
    target = image.flip(-1)
    net.train()
    times, cpu_times = [], []
    for i in range(iters + 1):
        net.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = (net(image, mgv) - target).abs().mean()
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append((time.perf_counter() - t0) * 1e3)
            cpu_times.append((time.process_time() - c0) * 1e3)
    net.eval()
    return statistics.median(times), statistics.median(cpu_times)


def _iters_for(width: int, size: int, device: str, quick: bool) -> int:
    if quick:
        return 2
    if device == "cuda":
        return 20
    work = (width / 16) ** 2 * (size / 256) ** 2  # relative to lite @ 256²
    return 2 if work >= 16 else 3 if work >= 4 else 5


def run(device: str, widths: list[int], sizes: list[int], quick: bool, train: bool = False) -> list[dict]:
    rows = []
    timer = _time_train_step if train else _time_forward
    batch = 4 if train else 1
    what = f"fwd+bwd ×{batch}" if train else "fwd"
    dev = torch.device(device)
    backends = [b for b in available_backends(dev) if b != "plain"]
    dtypes = ["fp32", "bf16"] if dev.type == "cuda" else ["fp32"]
    for width in widths:
        for size in sizes:
            g = torch.Generator().manual_seed(0)
            image = torch.rand(batch, 3, size, size, generator=g).to(dev)
            mgv = (torch.randn(batch, 6, size, size, generator=g) * 3).to(dev)
            iters = _iters_for(width, size, dev.type, quick)
            torch.manual_seed(0)
            plain = EggNet(EggNetConfig(variant="plain", width=width)).to(dev).eval()
            net = EggNet(EggNetConfig(variant="eggnet", width=width)).to(dev).eval()
            for dtype in dtypes:
                plain_ms, plain_cpu = timer(plain, image, mgv, iters, dtype)
                rows.append(dict(device=device, width=width, size=size, backend="plain (3x3 conv)", what=what,
                                 dtype=dtype, ms=plain_ms, ratio=1.0, cpu_ms=plain_cpu, cpu_ratio=1.0,
                                 iters=iters))
                for backend in backends:
                    net.set_deform_backend(backend)
                    try:
                        ms, cpu_ms = timer(net, image, mgv, iters, dtype)
                    except RuntimeError as exc:  # e.g. out of memory at a large size
                        print(f"  {backend} {dtype} {width}w {size}²: failed: {str(exc).splitlines()[0]}")
                        continue
                    rows.append(dict(device=device, width=width, size=size, backend=backend, dtype=dtype,
                                     what=what, ms=ms, ratio=ms / plain_ms, cpu_ms=cpu_ms,
                                     cpu_ratio=cpu_ms / plain_cpu, iters=iters))
                print(f"  done {device} width {width} {size}² {dtype}", flush=True)
            del net, plain
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def print_table(rows: list[dict]) -> None:
    print()
    head = ["device", "net", "size", "pass", "backend", "dtype", "median ms", "× plain", "CPU-time ms",
            "× plain", "runs"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * 6 + "---:|" * 5)
    for r in rows:
        name = {64: "EggNet", 16: "lite"}.get(r["width"], "width")
        cells = [r["device"], f"{name} ({r['width']})", f"{r['size']}²", r["what"], r["backend"], r["dtype"],
                 f"{r['ms']:.1f}", f"{r['ratio']:.2f}", f"{r['cpu_ms']:.0f}", f"{r['cpu_ratio']:.2f}",
                 str(r["iters"])]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (64², 96²), 2 runs: a smoke test")
    p.add_argument("--train", action="store_true",
                   help="time forward + L1 backward at batch 4 (default sizes 128², 256²)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="auto: the CPU table, then the CUDA one when a GPU is present")
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    p.add_argument("--widths", type=int, nargs="+", default=[64, 16])
    cores = os.cpu_count() or 1
    # On the shared 2-core development box two threads measure mostly contention (OpenMP threads
    # spinning at barriers inflate even CPU time); one thread gives stable ratios there.
    p.add_argument("--threads", type=int, default=1 if cores <= 4 else min(8, cores // 2))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.sizes or ([64, 96] if args.quick else [128, 256] if args.train else [256, 512])
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} CPU threads, cuda: {torch.cuda.get_device_name() if cuda else 'no'}")
    print(f"deform backends: cpu {available_backends('cpu')}"
          + (f", cuda {available_backends('cuda')}" if cuda else ""))
    rows: list[dict] = []
    devices = {"auto": ["cpu", "cuda"] if cuda else ["cpu"], "cpu": ["cpu"], "cuda": ["cuda"]}
    for device in devices[args.device]:
        if device == "cuda" and not cuda:
            print("cuda requested but not available; skipped")
            continue
        rows += run(device, args.widths, sizes, args.quick, args.train)
    print_table(rows)


if __name__ == "__main__":
    main()
