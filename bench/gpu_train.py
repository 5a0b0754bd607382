#!/usr/bin/env python
"""Training-step speed of EggNet per deformable-conv backend: which one should a GPU run train with?

Why a separate table from ``bench/gpu.py``: inference and training favour different backends.
The Triton kernel is forward-only (its backward recomputes the layer through the ``pytorch``
backend and differentiates that), so in training it pays the forward twice; torchvision's op has
its own backward but runs in fp32 only; ``pytorch`` (``grid_sample`` + GEMM) is differentiated by
autograd. Which of them gives the most iterations per minute on a given GPU is a measurement, and
the device session is short, so it is measured at the start of the training call and the winner
is written to ``--pick`` for the training command to use.

What is timed: one full optimisation step as ``eggnet-train`` does it (bf16 autocast forward,
L1 loss, backward, gradient clipping, Adam step) on random tensors of the training shape
(default: paper width 64, 16 × 256², 6 MGV channels), median of ``--steps`` after ``--warmup``,
each step ``torch.cuda.synchronize``d; next to it the same network with plain 3×3 convs
(variant ``plain``, the floor). Every deformable backend is first checked against the
``pytorch`` reference with ``bench/gpu.py``'s ``validate_backend``; one that disagrees is not
timed and cannot be picked. ``--smoke`` runs it on CPU at toy size (test/test_bench_gpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python bench/gpu_train.py` from anywhere
    sys.path.insert(0, str(ROOT))
BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

BACKENDS = ("pytorch", "torchvision", "triton")


def time_steps(
    variant: str, backend: str, device: str, width: int, batch: int, patch: int,
    warmup: int, steps: int, bf16: bool,
) -> dict[str, Any]:
    """Median ms of one optimisation step, peak memory; a failure becomes the row's status."""
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig
    from eggnet_ros.model.triton_deform import tf32_matmul

    torch.manual_seed(0)
    model = EggNet(EggNetConfig(variant=variant, width=width, deform_backend=backend)).to(device)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    blurred = torch.rand(batch, 3, patch, patch, device=device)
    sharp = torch.rand(batch, 3, patch, patch, device=device)
    mgv = torch.randn(batch, 6, patch, patch, device=device) * 5.0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.l1_loss(model(blurred, mgv).float(), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()

    times = []
    # TF32 as eggnet-train sets it; only while timing, so the backend checks compare exact fp32.
    with tf32_matmul(True):
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            step()
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"ms_per_step": ms, "samples_per_s": batch * 1e3 / ms, "peak_gib": peak, "status": "ok"}


def render(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"Training step, EggNet width {meta['width']}, batch {meta['batch']} × {meta['patch']}², "
        f"{'bf16 autocast' if meta['bf16'] else 'fp32'}, {meta['device_name']} "
        f"(median of {meta['steps']} after {meta['warmup']} warm-up)",
        "",
        "| network | backend | ms/step | samples/s | vs plain | peak GiB | status |",
        "|---|---|---|---|---|---|---|",
    ]
    plain = next((r["ms_per_step"] for r in rows if r["variant"] == "plain" and r["status"] == "ok"), None)
    for r in rows:
        ok = r["status"] == "ok"
        ratio = f"{r['ms_per_step'] / plain:.2f}×" if ok and plain else "–"
        lines.append(
            f"| {r['variant']} | {r['backend']} | {r['ms_per_step']:.1f} | {r['samples_per_s']:.1f} | "
            f"{ratio} | {r['peak_gib']:.2f} | {r['status']} |" if ok else
            f"| {r['variant']} | {r['backend']} | – | – | – | – | {r['status']} |"
        )
    lines.append("")
    lines.append(f"picked for training: **{meta['picked']}**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--budget-s", type=float, default=90.0, help="skip backends once this is spent")
    p.add_argument("--pick", type=Path, help="write the fastest validated backend's name here")
    p.add_argument("--json", type=Path)
    p.add_argument("--out", type=Path, help="write the Markdown table here too")
    p.add_argument("--smoke", action="store_true", help="CPU, width 4, 2 × 16², 1 step: checks the script")
    args = p.parse_args(argv)
    t_start = time.monotonic()
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch
    from gpu import _short, validate_backend

    if args.smoke:
        device, width, batch, patch, warmup, steps = "cpu", 4, 2, 16, 0, 1
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --smoke for the CPU check", file=sys.stderr)
            return 2
        device, width, batch, patch = "cuda", args.width, args.batch, args.patch
        warmup, steps = args.warmup, args.steps
        torch.backends.cudnn.benchmark = True
    bf16 = device == "cuda"
    rows: list[dict[str, Any]] = []
    for variant, backend in [("plain", "pytorch"), *(("eggnet", b) for b in BACKENDS)]:
        row: dict[str, Any] = {"variant": variant, "backend": "–" if variant == "plain" else backend}
        if time.monotonic() - t_start > args.budget_s:
            row["status"] = "skipped: budget"
        else:
            ok, why = (True, "") if variant == "plain" else validate_backend(backend, device, (12, 20))
            if not ok:
                row["status"] = why
            else:
                try:
                    row |= time_steps(variant, backend, device, width, batch, patch, warmup, steps, bf16)
                except Exception as exc:  # OOM, compile error: recorded, the others still run
                    row["status"] = f"failed: {_short(exc)}"
                finally:
                    if device == "cuda":
                        torch.cuda.empty_cache()
        rows.append(row)
        print(f"[{time.monotonic() - t_start:6.1f} s] {variant}/{row['backend']}: "
              f"{row.get('ms_per_step', float('nan')):.1f} ms {row['status']}", file=sys.stderr, flush=True)
    timed = [r for r in rows if r["variant"] == "eggnet" and r["status"] == "ok"]
    picked = min(timed, key=lambda r: r["ms_per_step"])["backend"] if timed else "pytorch"
    meta = {
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke)",
        "torch": torch.__version__, "width": width, "batch": batch, "patch": patch,
        "warmup": warmup, "steps": steps, "bf16": bf16, "picked": picked,
    }
    table = render(meta, rows)
    print(table)
    if args.out:
        args.out.write_text(table)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.pick:
        args.pick.write_text(picked + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
