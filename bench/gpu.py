#!/usr/bin/env python
"""GPU latency of EggNet per deformable-conv backend: ms/frame tables for the deployment choice.

What it answers: how long one frame takes on this GPU for the paper-width EggNet and the lite
one, at 512², 1024² and 1920×1080, in fp32 / bf16 autocast / channels_last / CUDA graphs /
torch.compile, for each deformable-conv backend (triton, torchvision, pytorch), next to the
same network with plain 3×3 convs (variant ``plain``: the floor a deformable backend can reach).

How: batch 1; each configuration is warmed up, then timed ``--iters`` times (≥ 50 on GPU), each
iteration ``torch.cuda.synchronize``d, so a number is the latency a per-frame node sees. The
median and the 10th/90th percentiles are reported, with the peak allocated memory.

Guards, so the one device command cannot waste its slot:
- every deformable backend is first checked against the pure-PyTorch reference on the device
  (a random layer in fp32 and bf16, and a small whole network in fp32); a backend that
  disagrees or does not load is not timed, and the table says why;
- configurations run most important first (paper EggNet 1024² bf16 with the fast backends and
  its plain twin) and ``--budget-s`` (whole script) marks what is left as "skipped: budget";
- one failing configuration (OOM, compile error) is recorded and the run goes on;
- ``--smoke`` runs the same code on CPU at toy size in seconds (test/test_bench_gpu.py).

Output: a Markdown table on stdout and in ``--out``, the same as JSON in ``--json`` (GPU name,
torch/triton/torchvision versions, date), and with ``--profile FILE`` the top-15 CUDA kernels of
the paper EggNet at 1024² bf16 per validated backend. See docs/gpu.md for the device command.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python bench/gpu.py` from anywhere
    sys.path.insert(0, str(ROOT))

DEFORM_BACKENDS = ("triton", "torchvision", "pytorch")
MODES = ("bf16", "fp32", "bf16+graph", "bf16+cl", "bf16+compile")
SIZES = {"1024²": (1024, 1024), "1920×1080": (1080, 1920), "512²": (512, 512)}
#: ASCII spellings for --sizes (shells and locales on lent machines may mangle "²"/"×").
SIZE_ALIASES = {"1024": "1024²", "1080p": "1920×1080", "512": "512²"}
#: Model name -> EggNetConfig classmethod and width on GPU / in --smoke.
MODELS = {"paper": ("paper", 64, 4), "lite": ("lite", 16, 2)}
PLAIN = "-"  # backend column of the plain-conv twin
#: Seconds kept free at the end of the budget for the profile and the per-layer table.
PROFILE_RESERVE_S = 40.0
LAYER_RESERVE_S = 45.0
#: Deformable layers of the paper EggNet at a 1024² input: (name, channels, H, W).
LAYER_SHAPES = (
    ("L1 64ch 1024²", 64, 1024, 1024),
    ("L2 128ch 512²", 128, 512, 512),
    ("L3 256ch 256²", 256, 256, 256),
)
#: Alternative Triton tiles tried on the first layer shape (the default comes from block_sizes).
TILE_ALTERNATIVES = (
    {"BLOCK_P": 64, "BLOCK_C": 32, "BLOCK_CO": 64, "num_warps": 4},
    {"BLOCK_P": 128, "BLOCK_C": 64, "BLOCK_CO": 64, "num_warps": 8},
    {"BLOCK_P": 256, "BLOCK_C": 32, "BLOCK_CO": 64, "num_warps": 8},
)
#: A torch.compile configuration starts only if at least this much budget is left.
COMPILE_MIN_LEFT_S = 120.0


@dataclass(frozen=True)
class Config:
    """One row of the table."""

    model: str  # "paper" | "lite"
    variant: str  # "eggnet" | "plain"
    size: str  # key of SIZES (or the smoke size)
    backend: str  # a deformable backend, or PLAIN
    mode: str  # one of MODES


@dataclass
class Result:
    config: Config
    status: str = "ok"  # "ok" | "skipped: ..." | "error: ..."
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    peak_gib: float | None = None
    iters: int = 0
    note: str = ""


@dataclass
class Settings:
    device: str
    sizes: dict[str, tuple[int, int]]
    widths: dict[str, int]
    warmup: int
    iters: int
    smoke: bool
    deadline: float  # time.monotonic() after which nothing new starts
    extra: dict[str, Any] = field(default_factory=dict)


class BudgetExceededError(RuntimeError):
    """A configuration would not finish before the deadline."""


# ----------------------------------------------------------------------------- configurations


def priority(c: Config) -> int:
    """Lower runs first: what the deployment decision needs most, then the broader picture."""
    fast = c.backend != "pytorch"  # triton, torchvision and the plain twin
    paper = c.model == "paper"
    if c.mode == "bf16" and fast:
        if c.size == "1024²":
            return 0 if paper else 1
        return 2 if paper else 5
    if paper and c.size == "1024²" and ((c.mode == "fp32" and fast) or c.mode == "bf16"):
        return 3  # fp32 next to bf16, and the pure-PyTorch backend as the baseline
    if c.mode in ("bf16+graph", "bf16+cl") and fast:
        return 4 if paper else 5
    if c.mode == "bf16+compile" and fast:
        return 6
    return 7


def build_configs(sizes: list[str], models: list[str]) -> list[Config]:
    """bf16/fp32 everywhere; graphs, channels_last and compile at 1024² (or the only size)."""
    main_size = "1024²" if "1024²" in sizes else sizes[0]
    configs: list[Config] = []
    for model in models:
        for size in sizes:
            for mode in MODES:
                if mode not in ("bf16", "fp32") and size != main_size:
                    continue
                configs.append(Config(model, "plain", size, PLAIN, mode))
                configs.extend(Config(model, "eggnet", size, b, mode) for b in DEFORM_BACKENDS)
    return sorted(configs, key=lambda c: (priority(c), configs.index(c)))


# ----------------------------------------------------------------------------- device helpers


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _autocast(device: str, mode: str, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
    import torch

    if mode.startswith("bf16"):
        return torch.autocast(device, dtype=torch.bfloat16, cache_enabled=cache_enabled)
    return contextlib.nullcontext()


def _versions() -> dict[str, str]:
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("triton", "torchvision"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as exc:
            out[mod] = f"unavailable ({type(exc).__name__})"
    out["cuda"] = str(torch.version.cuda)
    return out


def _short(exc: BaseException, limit: int = 160) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg[:limit]}"


# ----------------------------------------------------------------------------- validation


def validate_backend(name: str, device: str, model_hw: tuple[int, int] = (40, 56)) -> tuple[bool, str]:
    """Does ``name`` run on ``device`` and agree with the pure-PyTorch backend?

    Checks one random layer (Cin/Cout not multiples of 16, offsets reaching outside the image)
    in fp32 (max error / max |output| <= 1e-4) and in bf16 autocast (2e-2), then a width-8
    EggNet at ``model_hw`` in fp32 with pixel-sized offsets (max error 1e-3 on outputs ~[0, 1]).
    Returns (ok, reason shown in the table).
    """
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig, deform_conv2d, resolve_backend

    if name == "pytorch":
        return True, "reference"
    try:
        resolve_backend(name, device)
    except Exception as exc:
        return False, f"unavailable: {_short(exc)}"
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 24, 9, 13, generator=g).to(device)
        off = (torch.randn(2, 18, 9, 13, generator=g) * 3.0).to(device)
        w = (torch.randn(40, 24, 3, 3, generator=g) / 15.0).to(device)
        b = torch.randn(40, generator=g).to(device)
        errs = {}
        with torch.no_grad():
            for mode, tol in (("fp32", 1e-4), ("bf16", 2e-2)):
                with _autocast(device, mode):
                    ref = deform_conv2d(x, off, w, b, 1, backend="pytorch").float()
                    got = deform_conv2d(x, off, w, b, 1, backend=name).float()
                # Relative to the output scale (|ref| ~ 3-5 here): bf16 rounds twice per sample.
                errs[mode] = float((got - ref).abs().max()) / max(1.0, float(ref.abs().max()))
                if not errs[mode] <= tol:  # also catches NaN
                    return False, f"disagrees with pytorch ({mode} layer rel err {errs[mode]:.3g} > {tol})"
            torch.manual_seed(0)
            model = EggNet(EggNetConfig.paper(width=8, deform_backend="pytorch")).to(device).eval()
            _realistic_offsets(model)
            image = torch.rand(1, 3, *model_hw, generator=g).to(device)
            mgv = (torch.randn(1, 6, *model_hw, generator=g) * 8.0).to(device)
            ref = model(image, mgv)
            model.set_deform_backend(name)
            got = model(image, mgv)
            errs["model"] = float((got - ref).abs().max())
            if not errs["model"] <= 1e-3:
                return False, f"disagrees with pytorch (EggNet fp32 max err {errs['model']:.3g} > 1e-3)"
    except Exception as exc:
        return False, f"check failed: {_short(exc)}"
    return True, "validated (rel err " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()) + ")"


# ----------------------------------------------------------------------------- model + runners


def _realistic_offsets(model: Any) -> None:
    """Scale every offset-producing conv (18 outputs) so offsets are ~pixel-sized.

    Freshly initialised offset convs output ~1e-3 px, i.e. a plain conv's access pattern; a
    trained network's offsets spread the gathers, which is what the deformable kernels must cope
    with. Weight std 2/sqrt(fan_in) gives offsets of about twice the input's RMS.
    """
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.out_channels == 18:
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, 2.0 / math.sqrt(fan_in))
        for m in model.modules():
            if hasattr(m, "check_every"):  # DeformConv2d's offset guard syncs (breaks CUDA graphs)
                m.check_every = 0


def build_model(c: Config, s: Settings) -> Any:
    import torch

    from eggnet_ros.model import EggNet, EggNetConfig

    factory, _, _ = MODELS[c.model]
    backend = "pytorch" if c.backend == PLAIN else c.backend
    cfg = getattr(EggNetConfig, factory)(width=s.widths[c.model], variant=c.variant, deform_backend=backend)
    torch.manual_seed(0)
    model = EggNet(cfg).to(s.device).eval()
    _realistic_offsets(model)
    if c.mode == "bf16+cl":
        model = model.to(memory_format=torch.channels_last)
    return model


def make_runner(model: Any, c: Config, s: Settings) -> tuple[Callable[[], Any], str]:
    """A no-argument callable that runs one frame in configuration ``c``, and a note."""
    import torch

    h, w = s.sizes[c.size]
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, h, w, generator=g).to(s.device)
    mgv = (torch.randn(1, 6, h, w, generator=g) * 8.0).to(s.device)
    if c.mode == "bf16+cl":
        image = image.contiguous(memory_format=torch.channels_last)
        mgv = mgv.contiguous(memory_format=torch.channels_last)

    if c.mode == "bf16+graph":
        if s.device != "cuda":
            raise NotImplementedError("n/a: CUDA graphs need CUDA")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # Warm up (JIT, cuDNN autotuning, backend probes) outside the capture on a side stream.
        with torch.cuda.stream(stream), torch.no_grad(), _autocast(s.device, c.mode, cache_enabled=False):
            for _ in range(3):
                model(image, mgv)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), _autocast(s.device, c.mode, cache_enabled=False), torch.cuda.graph(graph):
            model(image, mgv)
        return graph.replay, "captured once, replayed"

    note = ""
    fn = model
    if c.mode == "bf16+compile":
        if s.smoke:
            raise NotImplementedError("skipped: smoke (torch.compile is for the GPU run)")
        left = s.deadline - time.monotonic()
        if left < COMPILE_MIN_LEFT_S:
            raise BudgetExceededError(f"compile needs ≥ {COMPILE_MIN_LEFT_S:.0f} s, {left:.0f} s left")
        fn = torch.compile(model)
        t0 = time.perf_counter()
        with torch.no_grad(), _autocast(s.device, c.mode):
            fn(image, mgv)
        _sync(s.device)
        note = f"compile {time.perf_counter() - t0:.0f} s"

    def run() -> Any:
        with torch.no_grad(), _autocast(s.device, c.mode):
            return fn(image, mgv)

    return run, note


def time_runner(run: Callable[[], Any], s: Settings) -> list[float]:
    """Warm up (the last warm-up frame is the estimate for the budget), then time ``s.iters`` frames."""
    one = 0.0
    for _ in range(max(1, s.warmup)):
        _sync(s.device)
        t0 = time.perf_counter()
        run()
        _sync(s.device)
        one = time.perf_counter() - t0
    left = s.deadline - time.monotonic()
    if one * s.iters > left:
        raise BudgetExceededError(f"{s.iters} × {one * 1e3:.0f} ms > {left:.0f} s left")
    times = []
    for _ in range(s.iters):
        t0 = time.perf_counter()
        run()
        _sync(s.device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_config(c: Config, s: Settings, valid: dict[str, tuple[bool, str]]) -> Result:
    import torch

    res = Result(c)
    if time.monotonic() >= s.deadline:
        res.status = "skipped: budget"
        return res
    if c.backend != PLAIN and not valid[c.backend][0]:
        res.status = f"skipped: {valid[c.backend][1]}"
        return res
    model = run = None
    try:
        if s.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        model = build_model(c, s)
        run, res.note = make_runner(model, c, s)
        times = time_runner(run, s)
        res.median_ms = statistics.median(times)
        res.p10_ms, res.p90_ms = _percentile(times, 0.1), _percentile(times, 0.9)
        res.iters = len(times)
        if s.device == "cuda":
            res.peak_gib = torch.cuda.max_memory_allocated() / 2**30
    except BudgetExceededError as exc:
        res.status = f"skipped: budget ({exc})"
    except NotImplementedError as exc:
        res.status = str(exc)
    except Exception as exc:
        res.status = f"error: {_short(exc)}"
        if os.environ.get("EGGNET_BENCH_TRACEBACK"):
            traceback.print_exc()
    finally:
        del model, run
        if s.device == "cuda":
            with contextlib.suppress(Exception):
                torch.cuda.synchronize()
            torch.cuda.empty_cache()
    return res


# ----------------------------------------------------------------------------- per-layer table


@dataclass
class LayerResult:
    layer: str
    impl: str
    status: str = "ok"
    median_ms: float | None = None
    tflops: float | None = None


def _tiles(b: dict[str, int]) -> str:
    return f"P{b['BLOCK_P']} C{b['BLOCK_C']} CO{b['BLOCK_CO']} w{b['num_warps']}"


def _layer_impls(
    s: Settings, valid: dict[str, tuple[bool, str]], ch: int, h: int, w: int, seed: int, first: bool
) -> list[tuple[str, Callable[[], Any]]]:
    """The implementations timed on one layer shape, as no-argument callables."""
    import torch
    import torch.nn.functional as F

    from eggnet_ros.model import deform_conv2d

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, ch, h, w, generator=g).to(s.device, torch.bfloat16)
    off = (torch.randn(1, 18, h, w, generator=g) * 2.0).to(s.device)
    wt = (torch.randn(ch, ch, 3, 3, generator=g) / (3 * ch**0.5)).to(s.device, torch.bfloat16)
    b = torch.zeros(ch, device=s.device, dtype=torch.bfloat16)
    impls: list[tuple[str, Callable[[], Any]]] = [
        ("conv2d (cuDNN, floor)", lambda: F.conv2d(x, wt, b, padding=1)),
    ]
    if valid["triton"][0]:
        from eggnet_ros.model import triton_deform as td

        x_cl = x.contiguous(memory_format=torch.channels_last)
        default = td.block_sizes(ch, ch, h * w, torch.bfloat16, interpreter=s.device == "cpu")
        impls.append((f"triton {_tiles(default)} (default)", lambda: td.launch(x, off, wt, b)))
        impls.append(("triton, input already NHWC", lambda: td.launch(x_cl, off, wt, b)))
        if first:
            for alt in TILE_ALTERNATIVES[-1:] if s.smoke else TILE_ALTERNATIVES:  # smoke: one, 1 program
                impls.append((f"triton {_tiles(alt)}", lambda a=alt: td.launch(x, off, wt, b, blocks=a)))
    for backend in ("torchvision", "pytorch"):
        if valid[backend][0]:
            impls.append((backend, lambda be=backend: deform_conv2d(x, off, wt, b, 1, backend=be)))
    return impls


def layer_table(
    s: Settings, valid: dict[str, tuple[bool, str]], log: Callable[[str], None]
) -> list[LayerResult]:
    """One deformable layer per EggNet level, bf16: each backend next to cuDNN's plain 3×3 conv.

    This isolates the deformable conv from the rest of the network and tries a few Triton tiles
    on the first shape, which is what tuning ``block_sizes`` needs. Offsets ~2 px.
    """
    import torch

    shapes = (("smoke 8ch 16²", 8, 16, 16),) if s.smoke else LAYER_SHAPES
    timing = dataclasses.replace(s, warmup=max(1, s.warmup // 2), iters=max(2, s.iters // 2))
    results: list[LayerResult] = []
    for li, (name, ch, h, w) in enumerate(shapes):
        if time.monotonic() >= s.deadline:
            results.append(LayerResult(name, "all", "skipped: budget"))
            continue
        flops = 2.0 * 9 * ch * ch * h * w
        for impl, fn in _layer_impls(s, valid, ch, h, w, seed=li, first=li == 0):
            r = LayerResult(name, impl)
            if time.monotonic() >= s.deadline:
                r.status = "skipped: budget"
            else:
                try:
                    with torch.no_grad():
                        times = time_runner(fn, timing)
                    r.median_ms = statistics.median(times)
                    r.tflops = flops / (r.median_ms * 1e-3) / 1e12
                except BudgetExceededError as exc:
                    r.status = f"skipped: budget ({exc})"
                except Exception as exc:
                    r.status = f"error: {_short(exc)}"
            results.append(r)
            log(f"layer {name} / {impl}: {_fmt(r.median_ms, 3)} ms {r.status}")
    return results


def render_layers(rows: list[LayerResult]) -> str:
    floor = {r.layer: r.median_ms for r in rows if r.impl.startswith("conv2d") and r.median_ms}
    out = [
        "",
        "## One deformable layer per level (bf16, batch 1, ms; × conv = time / cuDNN plain conv)",
        "",
        "| layer | implementation | ms | TFLOP/s | × conv | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        rel = f"{r.median_ms / floor[r.layer]:.2f}" if (r.median_ms and floor.get(r.layer)) else ""
        out.append(
            f"| {r.layer} | {r.impl} | {_fmt(r.median_ms, 3)} | {_fmt(r.tflops, 1)} | {rel} | {r.status} |"
        )
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- profile


def _kernel_rows(prof: Any, n_frames: int) -> list[tuple[str, float, int]]:
    """(kernel name, ms per frame, calls per frame) of device-side events, largest first."""
    import torch

    rows = []
    for evt in prof.key_averages():
        if getattr(evt, "device_type", None) != torch.autograd.DeviceType.CUDA:
            continue
        us = getattr(evt, "self_device_time_total", None)
        if us is None:
            us = getattr(evt, "self_cuda_time_total", 0.0)
        rows.append((evt.key, us / 1e3 / n_frames, round(evt.count / n_frames)))
    return sorted(rows, key=lambda r: -r[1])


def profile(path: Path, s: Settings, valid: dict[str, tuple[bool, str]], log: Callable[[str], None]) -> None:
    """Top-15 CUDA kernels of the paper EggNet at 1024² bf16, per validated backend + plain twin."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    size = "1024²" if "1024²" in s.sizes else next(iter(s.sizes))
    lines = [f"# Top-15 CUDA kernels, paper EggNet {size} bf16 autocast, ms per frame", ""]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.device == "cuda" else [])
    n_frames = 5
    candidates = [("eggnet", b) for b in ("triton", "torchvision") if valid.get(b, (False, ""))[0]]
    for variant, backend in [*candidates, ("plain", PLAIN)]:
        c = Config("paper", variant, size, backend, "bf16")
        title = f"## {variant} / backend {backend}"
        try:
            model = build_model(c, s)
            run, _ = make_runner(model, c, s)
            for _ in range(max(1, s.warmup)):
                run()
            _sync(s.device)
            with tprofile(activities=activities) as prof:
                for _ in range(n_frames):
                    run()
                _sync(s.device)
            rows = _kernel_rows(prof, n_frames)
            total = sum(r[1] for r in rows)
            lines += [title, f"total device time {total:.2f} ms/frame", "",
                      "| # | ms/frame | % | calls/frame | kernel |", "|---|---|---|---|---|"]
            for i, (name, ms, calls) in enumerate(rows[:15], 1):
                pct = 100.0 * ms / total if total else 0.0
                lines.append(f"| {i} | {ms:.3f} | {pct:.1f} | {calls} | `{name[:120]}` |")
            lines.append("")
            del model, run
        except Exception as exc:
            lines += [title, f"profile failed: {_short(exc)}", ""]
        log(f"profiled {variant}/{backend}")
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- output


def _fmt(v: float | None, digits: int = 2) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def render_markdown(meta: dict[str, Any], results: list[Result]) -> str:
    """One table in run order, with the ratio to the plain twin (same model, size and mode)."""
    plain = {
        (r.config.model, r.config.size, r.config.mode): r.median_ms
        for r in results
        if r.config.variant == "plain" and r.median_ms
    }
    head = [
        "# EggNet GPU latency (batch 1, ms/frame, median of synchronised frames)",
        "",
        f"- device: {meta['device_name']} | date: {meta['date']} | budget: {meta['budget_s']:.0f} s "
        f"(used {meta['elapsed_s']:.0f} s) | iters: {meta['iters']} after {meta['warmup']} warm-up",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- cudnn.benchmark={meta['cudnn_benchmark']}, matmul TF32={meta['matmul_tf32']}, "
        f"cudnn TF32={meta['cudnn_tf32']}; widths: {meta['widths']}",
        "- backends: " + "; ".join(f"{k}: {v[1]}" for k, v in meta["backend_checks"].items())
        + f"; `auto` resolves to: {meta['auto_backend']}",
        "",
        "| model | variant | size | backend | mode | ms/frame | p10 | p90 | fps | × plain | peak GiB "
        "| status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = []
    for r in results:
        c = r.config
        ratio = plain.get((c.model, c.size, c.mode))
        rel = f"{r.median_ms / ratio:.2f}" if (ratio and r.median_ms and c.variant != "plain") else ""
        fps = f"{1e3 / r.median_ms:.1f}" if r.median_ms else ""
        status = r.status + (f" ({r.note})" if r.note else "")
        rows.append(
            f"| {c.model} | {c.variant} | {c.size} | {c.backend} | {c.mode} | {_fmt(r.median_ms)} | "
            f"{_fmt(r.p10_ms)} | {_fmt(r.p90_ms)} | {fps} | {rel} | {_fmt(r.peak_gib)} | {status} |"
        )
    return "\n".join(head + rows) + "\n"


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--budget-s", type=float, default=420.0, help="whole-run time budget (s)")
    p.add_argument("--out", type=Path, help="write the Markdown table here too")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--profile", type=Path, help="write top-15 CUDA kernels (paper EggNet 1024² bf16)")
    p.add_argument("--iters", type=int, default=None, help="timed frames per configuration (GPU: 50)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up frames (GPU: 5)")
    p.add_argument("--sizes", nargs="+", choices=[*SIZES, *SIZE_ALIASES], default=list(SIZES),
                   help="1024 | 1080p | 512 (default: all, in that order of importance)")
    p.add_argument("--models", nargs="+", choices=list(MODELS), help="default: all (--smoke: paper)")
    p.add_argument("--smoke", action="store_true", help="CPU, width 4/2, 16×16, 2 frames: checks the script")
    return p.parse_args(argv)


def _meta(
    args: argparse.Namespace, device: str, t_start: float, iters: int, warmup: int,
    widths: dict[str, int], sizes: dict[str, tuple[int, int]], valid: dict[str, tuple[bool, str]],
) -> dict[str, Any]:
    import torch

    return {
        "device_name": torch.cuda.get_device_name() if device == "cuda" else f"CPU {platform.machine()}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "budget_s": args.budget_s,
        "elapsed_s": time.monotonic() - t_start,
        "iters": iters,
        "warmup": warmup,
        "smoke": args.smoke,
        "widths": widths,
        "sizes": {k: list(v) for k, v in sizes.items()},
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32),
        "backend_checks": {k: list(v) for k, v in valid.items()},
        "auto_backend": _auto_backend(device),
    }


def _auto_backend(device: str) -> str:
    """What ``deform_backend="auto"`` resolves to here (the deployment default)."""
    from eggnet_ros.model import resolve_backend

    try:
        return resolve_backend("auto", device)
    except Exception as exc:
        return f"error: {_short(exc)}"


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    t0 = time.monotonic()

    def log(msg: str) -> None:
        if enabled:
            print(f"[{time.monotonic() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    yield log


def main(argv: list[str] | None = None) -> int:
    t_start = time.monotonic()
    args = parse_args(argv)
    if args.smoke:
        # Triton's CPU interpreter (set before anything is jitted; triton_deform jits lazily).
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "2")
    import torch

    if args.smoke:
        torch.set_num_threads(min(2, torch.get_num_threads()))
        device = "cpu"
        sizes = {"16×16": (16, 16)}  # the Triton interpreter costs ~0.1 s per program
        widths = {m: v[2] for m, v in MODELS.items()}
        warmup, iters = args.warmup or 1, args.iters or 2
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --smoke for the CPU check", file=sys.stderr)
            return 2
        device = "cuda"
        sizes = {k: SIZES[k] for k in dict.fromkeys(SIZE_ALIASES.get(a, a) for a in args.sizes)}
        widths = {m: v[1] for m, v in MODELS.items()}
        warmup, iters = args.warmup or 5, args.iters or 50
        torch.backends.cudnn.benchmark = True
    reserve = 0.0 if args.smoke else LAYER_RESERVE_S + (PROFILE_RESERVE_S if args.profile else 0.0)
    deadline = t_start + args.budget_s - reserve
    s = Settings(device, sizes, widths, warmup, iters, args.smoke, deadline)

    with _progress(True) as log:
        valid = {}
        for name in DEFORM_BACKENDS:
            if time.monotonic() >= deadline:
                valid[name] = (False, "budget (not validated)")
            else:
                valid[name] = validate_backend(name, device, (12, 20) if args.smoke else (40, 56))
            log(f"backend {name}: {valid[name][1]}")
        results: list[Result] = []
        layers: list[LayerResult] = []

        def save(final: bool = False) -> None:
            """Rewrite the outputs after every row: a hard kill still leaves the rows so far."""
            meta = _meta(args, device, t_start, iters, warmup, widths, sizes, valid)
            table = render_markdown(meta, results) + render_layers(layers)
            if final:
                print(table)
            if args.out:
                args.out.write_text(table)
            if args.json:
                payload = {
                    "meta": meta,
                    "rows": [dataclasses.asdict(r) for r in results],
                    "layers": [dataclasses.asdict(r) for r in layers],
                }
                args.json.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")

        models = args.models or (["paper"] if args.smoke else list(MODELS))
        for c in build_configs(list(sizes), models):
            r = run_config(c, s, valid)
            results.append(r)
            log(f"{c.model}/{c.variant}/{c.size}/{c.backend}/{c.mode}: "
                f"{_fmt(r.median_ms)} ms {r.status} {r.note}".rstrip())
            if r.iters:
                save()
        s.deadline = t_start + args.budget_s - (PROFILE_RESERVE_S if args.profile and not args.smoke else 0.0)
        layers.extend(layer_table(s, valid, log))
        save()
        if args.profile:
            if time.monotonic() < t_start + args.budget_s - 10:
                s.deadline = t_start + args.budget_s
                profile(args.profile, s, valid, log)
            else:
                args.profile.write_text("profile skipped: budget\n")
        save(final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
