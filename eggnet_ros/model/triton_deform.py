"""Fused 3×3 deformable convolution in Triton: bilinear gather and matmul in one kernel.

Why a third backend: torchvision's CUDA kernel (and the pure-PyTorch path) first materialise an
im2col ``columns`` buffer of (Cin·9) × (H·W) values per image — ≈ 2.4 GB in fp32 at 64 channels
and 1024² — and then run a GEMM over it, so the layer is bound by writing and re-reading that
buffer. Here each program owns a tile of output pixels and a block of output channels; for each of
the 9 taps and each input-channel block it computes the bilinear samples in registers and feeds
them straight into ``tl.dot`` with the matching weight tile, accumulating in fp32. Nothing but the
input, the offsets, the weights and the output ever touch global memory. bf16 is supported
natively (torchvision's kernel upcasts it to fp32).

Semantics are exactly those of ``torchvision.ops.deform_conv2d`` for a 3×3 kernel with stride 1,
padding 1, dilation 1, one offset group and an optional DCNv2 mask: the offset tensor is
(N, 2·9, H, W) with (dy, dx) per tap in row-major tap order; a sample whose position lies outside
(-1, H) × (-1, W) is zero, and bilinear corners outside the image contribute zero. Other
geometries, reached through the backend registry, fall back to the pure-PyTorch backend.

The input is read as NHWC (converted once if needed) so that each bilinear corner is a contiguous
run of channels; see :func:`block_sizes` for how the tiles were chosen without a GPU.

Only the forward pass runs in Triton. Training goes through :class:`_TritonDeformFn`, whose
backward recomputes the layer with the pure-PyTorch backend and differentiates that: training
speed is not the goal of this backend, deployment latency is.

Runs on CUDA tensors, or on CPU tensors under Triton's interpreter (``TRITON_INTERPRET=1``),
which is how the tests check it on machines without a GPU. The kernel is jitted lazily and uses
only builtins (no ``tl.zeros``, which Triton itself jits at import), so the variable may be set
after triton was imported.
Uses only Triton APIs present in 3.6 (``tl.dot`` with ``input_precision``, masked ``tl.load``,
``tl.full``, constexpr block sizes); it compiles for sm_90 with Triton 3.6 and 3.9.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from .deform import deform_conv2d_pytorch, register_backend

log = logging.getLogger(__name__)

try:  # triton is optional: CPU-only installs and the ROS machine do without it.
    import triton
    import triton.language as tl

    _IMPORT_ERROR: str | None = None
except Exception as exc:  # any import failure just means "backend unavailable"
    triton = None  # type: ignore[assignment]
    tl = None  # type: ignore[assignment]
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

#: Name of the forward-only custom op (opaque to torch.compile, capturable in CUDA graphs).
OP_NAME = "eggnet::deform_conv3x3_triton"

_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class TritonUnavailableError(RuntimeError):
    """Raised when the Triton backend is asked to run where it cannot."""


def interpreter_enabled() -> bool:
    """True when Triton runs kernels with its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def availability() -> tuple[bool, str]:
    """Whether the backend can run here, and why not if it cannot.

    Importable triton is not enough: compiled kernels need a CUDA device, and CPU tensors need the
    interpreter (``TRITON_INTERPRET=1``, read at each call).
    """
    if triton is None:
        return False, f"triton is not importable ({_IMPORT_ERROR})"
    if torch.cuda.is_available():
        return True, f"triton {triton.__version__} on CUDA"
    if interpreter_enabled():
        return True, f"triton {triton.__version__} interpreter (CPU, TRITON_INTERPRET=1)"
    return False, f"triton {triton.__version__} needs a CUDA device or TRITON_INTERPRET=1"


def is_available() -> bool:
    """Short form of :func:`availability` for backend registries."""
    return availability()[0]


def _device_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    return device.type == "cpu" and interpreter_enabled()


if triton is not None:

    def _deform_conv3x3_fwd_kernel(
        x_ptr,
        off_ptr,
        w_ptr,
        b_ptr,
        m_ptr,
        out_ptr,
        C_in,
        C_out,
        H,
        W,
        sxn,
        sxc,
        sxh,
        sxw,
        son,
        soc,
        soh,
        sow,
        syn,
        syc,
        syh,
        syw,
        smn,
        smc,
        smh,
        smw,
        HAS_BIAS: tl.constexpr,
        HAS_MASK: tl.constexpr,
        BLOCK_P: tl.constexpr,
        BLOCK_C: tl.constexpr,
        BLOCK_CO: tl.constexpr,
        DOT_PRECISION: tl.constexpr,
        UPCAST_DOT: tl.constexpr,
    ):
        """One program: BLOCK_P output pixels of one image × BLOCK_CO output channels.

        ``w_ptr`` points at the weight rearranged to (9, C_in, C_out) row-major, so a
        (BLOCK_C, BLOCK_CO) tile for one tap is a plain 2-D block.
        """
        pid_p = tl.program_id(0)
        n = tl.program_id(1).to(tl.int64)  # batch offsets may exceed int32 on large batches
        pid_co = tl.program_id(2)

        p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
        p_mask = p < H * W
        oh = p // W
        ow = p % W
        co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
        co_mask = co < C_out
        cc = tl.arange(0, BLOCK_C)

        x_base = x_ptr + n * sxn
        off_base = off_ptr + n * son + oh * soh + ow * sow
        m_base = m_ptr + n * smn + oh * smh + ow * smw
        acc = tl.full((BLOCK_P, BLOCK_CO), 0.0, tl.float32)  # tl.zeros is itself jitted: keep builtins only

        # One flat loop over (tap, Cin block): a single software-pipelined loop body keeps the
        # kernel small (a statically unrolled 9-tap loop gave ~1 MB of PTX and slow compiles);
        # the per-tap coordinate math repeated per Cin block is a few ALU ops per pixel.
        n_cblk = (C_in + BLOCK_C - 1) // BLOCK_C
        for it in range(0, 9 * n_cblk):
            k = it // n_cblk
            c0 = (it - k * n_cblk) * BLOCK_C
            ky = k // 3
            kx = k - 3 * ky
            dy = tl.load(off_base + (2 * k) * soc, mask=p_mask, other=0.0).to(tl.float32)
            dx = tl.load(off_base + (2 * k + 1) * soc, mask=p_mask, other=0.0).to(tl.float32)
            py = (oh + ky - 1).to(tl.float32) + dy
            px = (ow + kx - 1).to(tl.float32) + dx
            # torchvision's early-out: samples outside (-1, H) x (-1, W) are exactly zero.
            inside = p_mask & (py > -1.0) & (py < H) & (px > -1.0) & (px < W)
            # Park rejected samples at 0 before the int conversion so that huge offsets cannot
            # overflow int32 (their loads are masked off anyway).
            py = tl.where(inside, py, 0.0)
            px = tl.where(inside, px, 0.0)
            y0f = tl.floor(py)
            x0f = tl.floor(px)
            ly = py - y0f
            lx = px - x0f
            hy = 1.0 - ly
            hx = 1.0 - lx
            y0 = y0f.to(tl.int32)
            x0 = x0f.to(tl.int32)
            y1 = y0 + 1
            x1 = x0 + 1
            my0 = inside & (y0 >= 0)
            my1 = inside & (y1 <= H - 1)
            mx0 = x0 >= 0
            mx1 = x1 <= W - 1
            if HAS_MASK:  # DCNv2 modulation scales the whole tap sample
                mod = tl.load(m_base + k * smc, mask=p_mask, other=0.0).to(tl.float32)
                hy = hy * mod
                ly = ly * mod

            c = c0 + cc
            c_ok = c < C_in
            cptr = x_base + (c * sxc)[None, :]
            v = (hy * hx)[:, None] * tl.load(
                cptr + (y0 * sxh + x0 * sxw)[:, None], mask=(my0 & mx0)[:, None] & c_ok[None, :], other=0.0
            ).to(tl.float32)
            v += (hy * lx)[:, None] * tl.load(
                cptr + (y0 * sxh + x1 * sxw)[:, None], mask=(my0 & mx1)[:, None] & c_ok[None, :], other=0.0
            ).to(tl.float32)
            v += (ly * hx)[:, None] * tl.load(
                cptr + (y1 * sxh + x0 * sxw)[:, None], mask=(my1 & mx0)[:, None] & c_ok[None, :], other=0.0
            ).to(tl.float32)
            v += (ly * lx)[:, None] * tl.load(
                cptr + (y1 * sxh + x1 * sxw)[:, None], mask=(my1 & mx1)[:, None] & c_ok[None, :], other=0.0
            ).to(tl.float32)
            wt = tl.load(
                w_ptr + ((k * C_in + c) * C_out)[:, None] + co[None, :],
                mask=c_ok[:, None] & co_mask[None, :],
                other=0.0,
            )
            a = v.to(wt.dtype)  # round the samples to the compute dtype (bf16/fp16/fp32)
            if UPCAST_DOT:  # interpreter only: its tl.dot multiplies bf16 bit patterns as ints
                acc = tl.dot(a.to(tl.float32), wt.to(tl.float32), acc, input_precision="ieee")
            else:
                acc = tl.dot(a, wt, acc, input_precision=DOT_PRECISION)

        if HAS_BIAS:
            acc += tl.load(b_ptr + co, mask=co_mask, other=0.0).to(tl.float32)[None, :]
        out_ptrs = out_ptr + n * syn + (oh * syh + ow * syw)[:, None] + (co * syc)[None, :]
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=p_mask[:, None] & co_mask[None, :])


_JITTED: dict[bool, Any] = {}


def _kernel() -> Any:
    """The jitted kernel, made on first use for the current interpreter setting.

    ``triton.jit`` decides between compiled and interpreted execution when it is applied, so
    decorating at import would freeze whatever ``TRITON_INTERPRET`` was when some other module
    first imported this one; jitting lazily follows the setting at the first launch instead.
    """
    mode = interpreter_enabled()
    if mode not in _JITTED:
        _JITTED[mode] = triton.jit(_deform_conv3x3_fwd_kernel)
    return _JITTED[mode]


def _next_pow2(v: int) -> int:
    return 1 << max(0, (int(v) - 1).bit_length())


def block_sizes(
    c_in: int, c_out: int, hw: int, dtype: torch.dtype = torch.bfloat16, interpreter: bool = False
) -> dict[str, int]:
    """Tile sizes and warps for a layer; every dot dim >= 16 (``tl.dot``'s minimum), masks pad.

    Chosen from offline sm_90a compiles (Triton 3.9, ``ptxas -v``) since no GPU was at hand when
    written: with NHWC input and 16-bit operands, 128 pixels × 32 input channels × 64-128 output
    channels on 8 warps use 125-155 registers with no spills, wgmma for the dot and 16-byte
    ``cp.async`` copies for the gathers. fp32 (no tensor cores under IEEE precision) uses
    smaller tiles (128 registers). ``bench/gpu.py`` sweeps alternatives on the device. The
    output-channel block covers up to 128 channels so each pixel tile's bilinear samples are
    computed once (Cout <= 128) or twice (Cout = 256) per layer.
    """
    if dtype == torch.float32:
        block_p, block_c, block_co, warps = 64, 16, min(64, max(16, _next_pow2(c_out))), 4
    else:
        block_co = min(128, max(16, _next_pow2(c_out)))
        block_p, block_c, warps = 128, min(32, max(16, _next_pow2(c_in))), 8 if block_co >= 64 else 4
    if interpreter:  # the interpreter's cost is per operation, not per element: fewer programs
        block_p = 256
    block_p = min(block_p, max(16, _next_pow2(hw)))
    return {"BLOCK_P": block_p, "BLOCK_C": block_c, "BLOCK_CO": block_co, "num_warps": warps}


def _out_memory_format(x: Tensor) -> torch.memory_format:
    """Keep channels_last inputs channels_last (the kernel takes strides; no copy needed)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _alloc_out(x: Tensor, c_out: int) -> Tensor:
    n, _, h, w = x.shape
    return torch.empty((n, c_out, h, w), dtype=x.dtype, device=x.device, memory_format=_out_memory_format(x))


def _dot_precision(dtype: torch.dtype) -> str:
    """fp32 follows torch's matmul TF32 switch (off by default), so fp32 matches torchvision.

    For 16-bit operands the value is Triton's default ("tf32"), which only concerns fp32 dots.
    """
    if dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def launch(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, mask: Tensor | None = None,
    *, blocks: dict[str, int] | None = None,
) -> Tensor:
    """Run the kernel as is: no autograd, no dtype casting, no validation (benchmarks, tile sweeps).

    ``x``, ``weight`` and ``bias`` must share one dtype; offsets/mask may be any float dtype.
    ``blocks`` overrides :func:`block_sizes` (keys BLOCK_P, BLOCK_C, BLOCK_CO, num_warps).
    """
    n, c_in, h, w = x.shape
    c_out = weight.shape[0]
    out = _alloc_out(x, c_out)
    if out.numel() == 0:
        return out
    # NHWC makes each bilinear corner a contiguous run of channels: the compiler turns the
    # gathers into 16-byte async copies (NCHW gives 2-byte scalar loads and register spills).
    # One copy of x costs far less than the 36 gathers per output pixel that read it.
    xc = x.contiguous(memory_format=torch.channels_last)
    # (Cout, Cin, 3, 3) -> (9, Cin, Cout): tap-major so each (tap, Cin block) tile is contiguous.
    w_t = weight.permute(2, 3, 1, 0).reshape(9, c_in, c_out).contiguous()
    b = bias.contiguous() if bias is not None else w_t  # dummy pointer when HAS_BIAS is False
    m = mask if mask is not None else offset  # dummy pointer when HAS_MASK is False
    cfg = dict(blocks or block_sizes(c_in, c_out, h * w, x.dtype, interpreter=x.device.type == "cpu"))
    grid = (triton.cdiv(h * w, cfg["BLOCK_P"]), n, triton.cdiv(c_out, cfg["BLOCK_CO"]))
    _kernel()[grid](
        xc,
        offset,
        w_t,
        b,
        m,
        out,
        c_in,
        c_out,
        h,
        w,
        *xc.stride(),
        *offset.stride(),
        *out.stride(),
        *m.stride(),
        HAS_BIAS=bias is not None,
        HAS_MASK=mask is not None,
        DOT_PRECISION=_dot_precision(x.dtype),
        # Triton's CPU interpreter (3.9) runs bf16 tl.dot on the raw uint16 storage; feeding it
        # the already-rounded operands in fp32 gives the same bf16-product/fp32-sum result.
        UPCAST_DOT=x.device.type == "cpu" and x.dtype != torch.float32,
        **cfg,
    )
    return out


if triton is not None:

    @torch.library.custom_op(OP_NAME, mutates_args=())
    def _deform_conv3x3_op(
        x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        return launch(x, offset, weight, bias, mask)

    @_deform_conv3x3_op.register_fake
    def _deform_conv3x3_fake(
        x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        return _alloc_out(x, weight.shape[0])


class _TritonDeformFn(torch.autograd.Function):
    """Triton forward; backward recomputes with the pure-PyTorch backend and differentiates it."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None
    ) -> Tensor:
        ctx.save_for_backward(x, offset, weight, bias, mask)
        return _deform_conv3x3_op(x, offset, weight, bias, mask)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad
        with torch.enable_grad():
            leaves = [
                t.detach().requires_grad_(bool(need)) if t is not None else None
                for t, need in zip(saved, needs, strict=True)
            ]
            x, offset, weight, bias, mask = leaves
            out = deform_conv2d_pytorch(x, offset, weight, bias, (1, 1), (1, 1), (1, 1), mask)
            wanted = [t for t, need in zip(leaves, needs, strict=True) if t is not None and need]
            grads = iter(torch.autograd.grad(out, wanted, grad_out.to(out.dtype)) if wanted else ())
        return tuple(
            next(grads) if (t is not None and need) else None for t, need in zip(leaves, needs, strict=True)
        )


def _validate(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor | None
) -> None:
    if x.dim() != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    n, c_in, h, w = x.shape
    if weight.dim() != 4 or tuple(weight.shape[1:]) != (c_in, 3, 3):
        raise ValueError(f"weight must be (Cout, {c_in}, 3, 3), got {tuple(weight.shape)}")
    if tuple(offset.shape) != (n, 18, h, w):
        raise ValueError(
            f"offset must be (N, 18, H, W) = {(n, 18, h, w)} (one offset group, 3x3 kernel), "
            f"got {tuple(offset.shape)}"
        )
    if mask is not None and tuple(mask.shape) != (n, 9, h, w):
        raise ValueError(f"mask must be (N, 9, H, W) = {(n, 9, h, w)}, got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must be ({weight.shape[0]},), got {tuple(bias.shape)}")
    devices = {t.device for t in (x, offset, weight, bias, mask) if t is not None}
    if len(devices) != 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(map(str, devices))}")


def _compute_dtype(x: Tensor, weight: Tensor) -> torch.dtype:
    """Autocast's dtype when autocast is on (custom ops get no autocast), else the promoted dtype."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    dtype = torch.promote_types(x.dtype, weight.dtype)
    if dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"triton deform_conv2d supports float32/bfloat16/float16, got {dtype}")
    return dtype


def deform_conv2d_triton(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, mask: Tensor | None = None
) -> Tensor:
    """3×3 deformable convolution (torchvision semantics, stride 1, padding 1) with the Triton kernel.

    Inputs are cast to one compute dtype (the autocast dtype under autocast, else the promoted
    dtype of ``x`` and ``weight``); offsets and mask keep their dtype and are read as fp32; the
    output has the compute dtype. Differentiable (backward via the pure-PyTorch backend).
    """
    ok, why = availability()
    if not ok:
        raise TritonUnavailableError(why)
    _validate(x, offset, weight, bias, mask)
    if not _device_ok(x.device):
        raise TritonUnavailableError(
            f"triton backend needs CUDA tensors (or TRITON_INTERPRET=1 for CPU), got {x.device}"
        )
    dtype = _compute_dtype(x, weight)
    x = x.to(dtype)
    weight = weight.to(dtype)
    bias = bias.to(dtype) if bias is not None else None
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, offset, weight, bias, mask)
    ):
        return _TritonDeformFn.apply(x, offset, weight, bias, mask)
    return _deform_conv3x3_op(x, offset, weight, bias, mask)


# ----------------------------------------------------------------------------- registry hook

_FALLBACK_WARNED: set[tuple[Any, ...]] = set()


def _registry_fn(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
    padding: tuple[int, int], dilation: tuple[int, int], mask: Tensor | None,
) -> Tensor:
    """The ``deform.register_backend`` entry: the fused kernel for 3×3/s1/p1/d1/groups 1.

    Any other geometry runs the pure-PyTorch backend (warned once per geometry) rather than
    failing: EggNet only uses the fused case, so a fallback means a caller outside EggNet.
    """
    fused = (
        tuple(weight.shape[-2:]) == (3, 3)
        and weight.shape[1] == x.shape[1]
        and tuple(stride) == (1, 1)
        and tuple(padding) == (1, 1)
        and tuple(dilation) == (1, 1)
        and offset.shape[1] == 18
    )
    if fused:
        return deform_conv2d_triton(x, offset, weight, bias, mask)
    key = (tuple(weight.shape), tuple(stride), tuple(padding), tuple(dilation), offset.shape[1])
    if key not in _FALLBACK_WARNED:
        _FALLBACK_WARNED.add(key)
        log.warning("triton deform backend: geometry %s not fused, using the pytorch backend", key)
    return deform_conv2d_pytorch(x, offset, weight, bias, stride, padding, dilation, mask)


@contextlib.contextmanager
def tf32_matmul(enabled: bool) -> Iterator[None]:
    """TF32 for fp32 matmuls and convolutions switched ``enabled`` inside, the caller's settings
    restored after (the probe needs it off, the training-step bench on, as eggnet-train runs)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def ieee_fp32_matmul() -> contextlib.AbstractContextManager[None]:
    """TF32 off inside: the probe's 1e-4 tolerance is for exact fp32.

    Measured on the H100 (session 6): with ``allow_tf32`` on, as ``eggnet-train`` sets it, the
    probe failed and ``auto`` silently fell back from the Triton kernel (19 ms/frame at 1024²
    bf16) to torchvision (41 ms).
    """
    return tf32_matmul(False)


def validate_against_pytorch(
    device: str | torch.device, dtype: torch.dtype = torch.float32, seed: int = 0
) -> float:
    """Max abs difference to the pure-PyTorch backend on a random case with out-of-image offsets.

    Used by the registry probe and by ``bench/gpu.py`` before timing the backend: a kernel that
    compiles but computes garbage on a new GPU/Triton combination must never be auto-selected.
    """
    g = torch.Generator().manual_seed(seed)
    n, c_in, c_out, h, w = 2, 24, 40, 9, 13  # Cin/Cout not multiples of 16: exercises the masks
    x = torch.randn(n, c_in, h, w, generator=g)
    offset = torch.randn(n, 18, h, w, generator=g) * 3.0
    weight = torch.randn(c_out, c_in, 3, 3, generator=g) / (3.0 * c_in**0.5)
    bias = torch.randn(c_out, generator=g)
    dev = torch.device(device)
    args = [t.to(dev) for t in (x, offset, weight, bias)]
    # The probe may first run inside a caller's autocast region: compare in the dtype asked for.
    # And with TF32 switched on (eggnet-train does, for speed) both sides round their fp32
    # GEMMs to 10 mantissa bits differently (~1e-3 apart): compare exact fp32 against exact fp32.
    with torch.no_grad(), torch.autocast(dev.type, enabled=False), ieee_fp32_matmul():
        ref = deform_conv2d_pytorch(*args, (1, 1), (1, 1), (1, 1), None).float()
        cast = [args[0].to(dtype), args[1], args[2].to(dtype), args[3].to(dtype)]
        got = deform_conv2d_triton(*cast).float()
    return float((got - ref).abs().max())


#: Max abs error (on O(1) outputs) that the probe accepts, per compute dtype.
PROBE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 1e-2}


def _probe(device_type: str) -> bool:
    """Usable on ``device_type`` only if it runs *and* matches the pure-PyTorch backend (fp32)."""
    ok, why = availability()
    if not ok:
        raise TritonUnavailableError(why)
    if device_type not in ("cuda", "cpu") or not _device_ok(torch.device(device_type)):
        return False
    err = validate_against_pytorch(device_type, torch.float32)
    if not err <= PROBE_TOLERANCE[torch.float32]:  # also rejects NaN
        raise TritonUnavailableError(f"kernel disagrees with the pytorch backend (max abs err {err:.3g})")
    return True


#: "auto" ranks triton above torchvision (10) on CUDA; never auto on CPU (interpreter is slow).
AUTO_PRIORITY = {"cuda": 20}


def register() -> None:
    """(Re-)register the backend; re-registering also forgets cached probe results.

    Called on import (the registry imports this module lazily). Call it again after changing
    ``TRITON_INTERPRET`` so that the new setting is probed.
    """
    register_backend("triton", _registry_fn, _probe, AUTO_PRIORITY)


register()
