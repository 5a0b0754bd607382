"""Deformable convolution (DCNv1/v2) with one interface and interchangeable backends.

Why several backends: torchvision's compiled ``deform_conv2d`` is the reference implementation
(im2col + GEMM) but its ops only load where torchvision's C++ extension matches the installed
torch (the GPU machines, not the CPU development box). The pure-PyTorch backend runs anywhere
and is what CPU training uses; a Triton backend (``eggnet_ros/model/triton_deform.py``, written
separately) may register itself for fast GPU inference.

Semantics (identical for every backend, torchvision's layout):

- ``offset`` is ``(N, 2*kh*kw, Ho, Wo)``; for tap ``k = ky*kw + kx`` channel ``2k`` is the
  vertical (dy) and ``2k+1`` the horizontal (dx) displacement in input pixels.
- Tap ``k`` of output pixel ``(i, j)`` samples the input at
  ``(i*stride - pad + ky*dil + dy, j*stride - pad + kx*dil + dx)`` by bilinear interpolation; each
  of the four corners that falls outside the image contributes zero (zero padding), so a sample
  one pixel or more outside the image is exactly zero.
- ``mask`` (optional, DCNv2) is ``(N, kh*kw, Ho, Wo)`` and multiplies each tap's sample.

Why the pure path is one ``grid_sample`` + one GEMM: sampling all taps dominates (the GEMM costs
what a plain 3×3 conv costs). Alternatives measured on this CPU (1 thread, CPU time, sampling
64 channels × 9 taps at 256², i.e. a 37.7M-element im2col): ``grid_sample`` 270 ms (200 ms with
a channels-last input, now used), ``F.embedding_bag`` over channels-last rows with the bilinear
weights as ``per_sample_weights`` 650 ms, four ``gather``s of NCHW planes 1090 ms, four row
gathers of a channels-last table 1260 ms. Backward (fwd+bwd) keeps the same order.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DeformBackend",
    "DeformConv2d",
    "available_backends",
    "deform_conv2d",
    "deform_conv2d_pytorch",
    "register_backend",
    "resolve_backend",
    "unregister_backend",
]

log = logging.getLogger(__name__)

#: Signature every backend implements (all arguments positional, already validated).
BackendFn = Callable[
    [Tensor, Tensor, Tensor, Tensor | None, tuple[int, int], tuple[int, int], tuple[int, int], Tensor | None],
    Tensor,
]


@dataclass(frozen=True)
class DeformBackend:
    """A registered implementation.

    ``probe(device_type)`` returns True when the backend really runs on that device type (it is
    called once per device type and cached); ``priority`` orders the ``"auto"`` choice (highest
    first) per device type; a backend absent from ``priority`` is never auto-selected there.
    """

    name: str
    fn: BackendFn
    probe: Callable[[str], bool]
    priority: dict[str, int]


_REGISTRY: dict[str, DeformBackend] = {}
_PROBED: dict[tuple[str, str], bool] = {}
#: (requested backend, device type) -> resolved name; cleared whenever the registry changes.
_RESOLVED: dict[tuple[str, str], str] = {}
_LOCK = threading.Lock()
_PLUGINS_LOADED = False
#: Optional backends living in their own modules; each registers itself on import.
_PLUGIN_MODULES = ("eggnet_ros.model.triton_deform",)


def register_backend(
    name: str,
    fn: BackendFn,
    probe: Callable[[str], bool] | None = None,
    priority: dict[str, int] | None = None,
) -> None:
    """Register (or replace) a backend; the hook the Triton module uses on import."""
    with _LOCK:
        _REGISTRY[name] = DeformBackend(name, fn, probe or (lambda _dev: True), dict(priority or {}))
        for key in [k for k in _PROBED if k[0] == name]:
            del _PROBED[key]
        _RESOLVED.clear()


def unregister_backend(name: str) -> None:
    """Remove a backend (tests, or a plugin that found itself broken after registering)."""
    if name == "pytorch":
        raise ValueError("the pure-PyTorch backend is the fallback and cannot be removed")
    with _LOCK:
        _REGISTRY.pop(name, None)
        for key in [k for k in _PROBED if k[0] == name]:
            del _PROBED[key]
        _RESOLVED.clear()


def _load_plugins() -> None:
    """Import optional backend modules once; a missing or broken plugin is logged, not fatal."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for mod in _PLUGIN_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                log.info("optional deform backend %s unavailable: %s", mod, exc)
        except Exception as exc:  # a plugin must never break the pure path
            log.warning("optional deform backend %s failed to import: %s", mod, exc)


def _is_usable(name: str, device_type: str) -> bool:
    key = (name, device_type)
    if key not in _PROBED:
        backend = _REGISTRY[name]
        try:
            ok = bool(backend.probe(device_type))
        except Exception as exc:
            log.info("deform backend %r does not run on %s: %s", name, device_type, exc)
            ok = False
        _PROBED[key] = ok
        log.info("deform backend %r on %s: %s", name, device_type, "usable" if ok else "unavailable")
    return _PROBED[key]


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """Backends that actually run on ``device`` (probed once per device type, cached)."""
    _load_plugins()
    device_type = torch.device(device).type
    return [name for name in list(_REGISTRY) if _is_usable(name, device_type)]


def resolve_backend(backend: str, device: str | torch.device) -> str:
    """Turn ``"auto"`` (or an explicit name) into a usable backend name for ``device``.

    An explicitly requested backend that does not run raises ``RuntimeError`` rather than
    silently falling back, so a benchmark or deployment never measures the wrong thing.
    """
    device_type = device.type if isinstance(device, torch.device) else torch.device(device).type
    cached = _RESOLVED.get((backend, device_type))
    if cached is not None:
        return cached
    _load_plugins()
    name = _resolve_uncached(backend, device_type)
    _RESOLVED[(backend, device_type)] = name
    if backend == "auto":
        log.info("deform backend 'auto' on %s -> %r", device_type, name)
    return name


def _resolve_uncached(backend: str, device_type: str) -> str:
    if backend == "auto":
        ranked = sorted(
            (b for b in _REGISTRY.values() if device_type in b.priority),
            key=lambda b: -b.priority[device_type],
        )
        for b in ranked:
            if _is_usable(b.name, device_type):
                return b.name
        return "pytorch"
    if backend not in _REGISTRY:
        raise ValueError(f"unknown deform backend {backend!r}; registered: {sorted(_REGISTRY)}")
    if not _is_usable(backend, device_type):
        raise RuntimeError(f"deform backend {backend!r} does not run on {device_type} here")
    return backend


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# ----------------------------------------------------------------------------- pure PyTorch


def _sampling_grid(
    offset: Tensor, in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
    padding: tuple[int, int], dilation: tuple[int, int], row0: int = 0,
) -> Tensor:
    """Normalised ``grid_sample`` coordinates of every tap, shape ``(N, K*Ho, Wo, 2)``.

    ``offset`` covers output rows ``row0 .. row0 + Ho``. The taps are stacked along the grid's
    height so that ``grid_sample`` returns ``(N, C, K*Ho, Wo)``, which is already the im2col
    matrix ``(N, C*K, Ho*Wo)`` after a free ``view``: no permute/copy before the GEMM.
    Coordinates are built in fp32 even for bf16/fp16 inputs because an 8-bit mantissa cannot
    address pixel 300.25 (fp64 for fp64 offsets, so ``gradcheck`` sees exact coordinates).
    """
    n, _, ho, wo = offset.shape
    kh, kw = kernel
    hi, wi = in_hw
    dev = offset.device
    f32 = torch.float64 if offset.dtype == torch.float64 else torch.float32
    ys = torch.arange(row0, row0 + ho, device=dev, dtype=f32) * stride[0] - padding[0]
    xs = torch.arange(wo, device=dev, dtype=f32) * stride[1] - padding[1]
    ky = torch.arange(kh, device=dev, dtype=f32).repeat_interleave(kw) * dilation[0]
    kx = torch.arange(kw, device=dev, dtype=f32).repeat(kh) * dilation[1]
    off = offset.to(f32).view(n, kh * kw, 2, ho, wo)
    py = ky.view(1, -1, 1, 1) + ys.view(1, 1, -1, 1) + off[:, :, 0]  # (N, K, Ho, Wo)
    px = kx.view(1, -1, 1, 1) + xs.view(1, 1, 1, -1) + off[:, :, 1]
    # align_corners=False pixel centres: x_pix = ((g + 1) * W - 1) / 2  <=>  g = (2 x_pix + 1) / W - 1.
    # Valid for any size incl. W == 1 (align_corners=True would divide by W - 1).
    gx = px.mul(2.0 / wi).add_(1.0 / wi - 1.0)
    gy = py.mul(2.0 / hi).add_(1.0 / hi - 1.0)
    return torch.stack((gx, gy), dim=-1).view(n, kh * kw * ho, wo, 2)


#: The im2col buffer is built in bands of output rows of about this many bytes: each band's
#: samples are still in cache when its GEMM reads them. Measured on this CPU (1 thread, CPU
#: time, one deformable conv, unbanded -> 8 MB bands): 16 ch 256² 64 -> 33 ms, 64 ch 256² 316 ->
#: 176 ms, 128 ch 128² 173 -> 108 ms (inference); forward+backward 4×16 ch 128² 186 -> 129 ms,
#: 64 ch 256² 1060 -> 852 ms. Without autograd it also bounds memory for large frames (with
#: autograd every band's buffer is kept for the backward pass anyway). 0 disables banding.
INFERENCE_COLS_BYTES = 8 << 20
TRAINING_COLS_BYTES = 8 << 20
#: On GPUs bands only bound inference memory (many small bands would cost kernel launches,
#: and the cache argument does not hold); autograd runs unbanded there.
GPU_INFERENCE_COLS_BYTES = 1 << 30


def deform_conv2d_pytorch(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
    stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1), mask: Tensor | None = None,
) -> Tensor:
    """Pure-PyTorch deformable convolution: one ``grid_sample`` over all taps, then one GEMM.

    ``grid_sample(padding_mode="zeros")`` zeroes exactly the bilinear corners outside the
    image, which is torchvision's rule. Sampling runs in fp32 (under CUDA autocast PyTorch
    casts ``grid_sample`` to fp32 anyway); the im2col matrix is then cast to the compute dtype
    (the input's, or autocast's) so the dominant cost, the GEMM, runs in bf16/fp16 with the
    backend's fp32 accumulation. Memory is the im2col buffer ``C*K*Ho*Wo`` per image, like
    torchvision's, while autograd records; without it, one band of rows at a time
    (:data:`INFERENCE_COLS_BYTES`).
    """
    n, cin, hi, wi = x.shape
    cout, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    compute_dtype = x.dtype
    if torch.is_autocast_enabled(x.device.type):
        compute_dtype = torch.get_autocast_dtype(x.device.type)
    with torch.autocast(x.device.type, enabled=False):
        xs = x if x.dtype in (torch.float32, torch.float64) else x.float()
        if xs.device.type == "cpu" and cin >= 32:
            # Measured (1 thread, CPU time; module docstring): CPU grid_sample reads a
            # channels-last input 10-25 % faster at 64-256 channels (forward and backward); the
            # copy is 1/9 of the im2col output it feeds, and the output stays NCHW.
            xs = xs.contiguous(memory_format=torch.channels_last)
        w = weight.to(compute_dtype)
        b = bias.to(compute_dtype).view(1, cout, 1, 1) if bias is not None else None
        recording = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, offset, weight, bias, mask)
        )
        band = ho
        if x.device.type == "cpu":
            budget = TRAINING_COLS_BYTES if recording else INFERENCE_COLS_BYTES
        else:
            budget = 0 if recording else GPU_INFERENCE_COLS_BYTES
        if budget:
            row_bytes = n * cin * kh * kw * wo * max(xs.element_size(), 4)
            band = max(1, min(ho, budget // row_bytes))
        if band >= ho:
            out = _deform_rows(xs, offset, w, mask, 0, (hi, wi), stride, padding, dilation, compute_dtype)
        else:
            out = torch.empty(n, cout, ho, wo, dtype=compute_dtype, device=x.device)
            for r0 in range(0, ho, band):
                r1 = min(ho, r0 + band)
                out[:, :, r0:r1] = _deform_rows(
                    xs, offset[:, :, r0:r1], w, None if mask is None else mask[:, :, r0:r1], r0,
                    (hi, wi), stride, padding, dilation, compute_dtype,
                )
        if b is not None:
            out = out + b
    return out


def _deform_rows(
    xs: Tensor, offset: Tensor, w: Tensor, mask: Tensor | None, row0: int, in_hw: tuple[int, int],
    stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], compute_dtype: torch.dtype,
) -> Tensor:
    """Output rows ``row0 .. row0 + offset.shape[2]`` (no bias): sample all taps, then one GEMM."""
    n, cin = xs.shape[:2]
    cout, cin_g, kh, kw = w.shape
    groups = cin // cin_g
    ho, wo = offset.shape[-2:]
    grid = _sampling_grid(offset, in_hw, (kh, kw), stride, padding, dilation, row0)
    if xs.dtype != grid.dtype:  # grid_sample needs one dtype; the wider one wins
        wide = torch.promote_types(xs.dtype, grid.dtype)
        xs, grid = xs.to(wide), grid.to(wide)
    cols = F.grid_sample(xs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.view(n, cin, kh * kw, ho * wo)  # (N, C, K, L); grid_sample's output is NCHW-contiguous
    if mask is not None:
        cols = cols * mask.to(cols.dtype).reshape(n, 1, kh * kw, ho * wo)
    cols = cols.to(compute_dtype)
    if groups == 1:
        # bmm over a stride-0 expanded weight, not matmul: matmul(2-D, 3-D) folds the batch into
        # rows via a transposed copy of the whole im2col (and again in backward). Measured (1
        # thread, batch 4, 16 ch, 128 px rows): fwd 6.9 -> 1.4 ms, fwd+bwd 16.1 -> 4.9 ms.
        w2 = w.reshape(cout, cin * kh * kw).unsqueeze(0).expand(n, -1, -1)
        out = torch.bmm(w2, cols.view(n, cin * kh * kw, ho * wo))
    else:
        cols_g = cols.view(n, groups, cin_g * kh * kw, ho * wo)
        out = torch.matmul(w.reshape(groups, cout // groups, cin_g * kh * kw).unsqueeze(0), cols_g)
    return out.reshape(n, cout, ho, wo)


def _probe_pytorch(_device_type: str) -> bool:
    return True


# ----------------------------------------------------------------------------- torchvision


def _torchvision_fn(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int],
    padding: tuple[int, int], dilation: tuple[int, int], mask: Tensor | None,
) -> Tensor:
    """torchvision's compiled op; bf16 is not dispatched by its kernels, so upcast to fp32."""
    from torchvision.ops import deform_conv2d as tv_deform  # lazy: only loads on some machines

    out_dtype = x.dtype
    if x.dtype == torch.bfloat16:
        x, offset, weight = x.float(), offset.float(), weight.float()
        bias = bias.float() if bias is not None else None
        mask = mask.float() if mask is not None else None
    out = tv_deform(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
    return out.to(out_dtype) if out_dtype == torch.bfloat16 else out


def _probe_torchvision(device_type: str) -> bool:
    """True only if the compiled op is importable *and* runs a tiny case on this device type."""
    if device_type == "cuda" and not torch.cuda.is_available():
        return False
    from torchvision.ops import deform_conv2d as tv_deform

    dev = torch.device(device_type)
    x = torch.ones(1, 1, 3, 3, device=dev)
    out = tv_deform(x, torch.zeros(1, 18, 3, 3, device=dev), torch.ones(1, 1, 3, 3, device=dev), padding=1)
    return bool(torch.isfinite(out).all()) and float(out[0, 0, 1, 1]) == 9.0


# CUDA ranking measured on an H100 (docs/gpu.md, paper EggNet 1024²): triton 19.1 ms/frame in
# bf16 (priority 20) < pytorch 32.4 ms (15) < torchvision 40.9 ms (10, fp32-only and more memory;
# also 1.7x slower per training step). On CPU torchvision's kernel is a single-threaded-per-image
# loop, so the pure path is preferred there too.
register_backend("pytorch", deform_conv2d_pytorch, _probe_pytorch, {"cpu": 10, "cuda": 15, "mps": 10})
register_backend("torchvision", _torchvision_fn, _probe_torchvision, {"cuda": 10})


# ----------------------------------------------------------------------------- public API


def deform_conv2d(
    x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None,
    padding: int | tuple[int, int] = 1, backend: str = "auto", *,
    stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1, mask: Tensor | None = None,
) -> Tensor:
    """Deformable convolution with torchvision's semantics and offset layout (see module doc).

    ``backend``: ``"auto"`` (fastest usable on ``x.device``), ``"pytorch"``, ``"torchvision"`` or
    any registered name (e.g. ``"triton"``).
    """
    if x.dim() != 4 or weight.dim() != 4 or offset.dim() != 4:
        raise ValueError("deform_conv2d expects 4-D x, offset and weight")
    stride_, padding_, dilation_ = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = weight.shape[-2:]
    if x.shape[1] % weight.shape[1] != 0:
        raise ValueError(f"input channels {x.shape[1]} not divisible by weight's {weight.shape[1]}")
    ho = (x.shape[2] + 2 * padding_[0] - dilation_[0] * (kh - 1) - 1) // stride_[0] + 1
    wo = (x.shape[3] + 2 * padding_[1] - dilation_[1] * (kw - 1) - 1) // stride_[1] + 1
    if offset.shape != (x.shape[0], 2 * kh * kw, ho, wo):
        raise ValueError(f"offset shape {tuple(offset.shape)} != {(x.shape[0], 2 * kh * kw, ho, wo)}")
    if mask is not None and mask.shape != (x.shape[0], kh * kw, ho, wo):
        raise ValueError(f"mask shape {tuple(mask.shape)} != {(x.shape[0], kh * kw, ho, wo)}")
    name = resolve_backend(backend, x.device)
    return _REGISTRY[name].fn(x, offset, weight, bias, stride_, padding_, dilation_, mask)


def _tracing_or_capturing(t: Tensor) -> bool:
    """A host sync (``.item()``) would break torch.compile graphs and CUDA-graph capture."""
    if torch.compiler.is_compiling():
        return True
    return t.is_cuda and torch.cuda.is_current_stream_capturing()


class DeformConv2d(nn.Module):
    """Deformable k×k convolution whose offsets come from outside (the "offset convolution").

    The offsets are an argument of ``forward`` because EggNet computes them in different ways
    (from features, from MGVs in the GTM, from features + the previous MGO in the IGTM).

    Like BasicSR's ``DCNv2Pack`` it warns (once per module) when the mean absolute offset is
    implausibly large, the usual sign of a diverging offset branch. The check runs every
    ``check_every`` calls only, since ``.item()`` synchronises a GPU.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1,
        bias: bool = True, backend: str = "auto", max_mean_offset: float = 50.0, check_every: int = 100,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.padding = kernel_size, padding
        self.backend = backend
        self.max_mean_offset, self.check_every = max_mean_offset, check_every
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._calls = 0
        self._warned = False
        self.reset_parameters()
        _load_plugins()  # import optional backends now, never inside a torch.compile trace

    def reset_parameters(self) -> None:
        """Same initialisation as ``nn.Conv2d`` so a zero offset starts as that plain conv."""
        ref = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, bias=self.bias is not None)
        with torch.no_grad():
            self.weight.copy_(ref.weight)
            if self.bias is not None:
                self.bias.copy_(ref.bias)

    @property
    def offset_channels(self) -> int:
        return 2 * self.kernel_size * self.kernel_size

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor | None = None) -> Tensor:
        # The counter is touched only outside torch.compile: a Python int that changes every call
        # would otherwise be specialised on and force a recompile per call.
        if not self._warned and self.check_every > 0 and not _tracing_or_capturing(offset):
            self._calls += 1
            if (self._calls - 1) % self.check_every == 0:
                mean_abs = float(offset.detach().abs().mean())
                if mean_abs > self.max_mean_offset:
                    self._warned = True
                    log.warning("deformable conv offsets are implausibly large (mean |offset| %.1f px)",
                                mean_abs)
        return deform_conv2d(x, offset, self.weight, self.bias, self.padding, self.backend, mask=mask)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"padding={self.padding}, backend={self.backend!r}")
