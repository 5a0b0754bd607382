"""The Triton deformable-conv backend against independent references.

The main reference is a direct NumPy port of torchvision's CPU kernel (``bilinear_interpolate``
+ ``deformable_im2col`` + GEMM, float64), written here from torchvision's rules and not from the
kernel under test; the model helper's pure-PyTorch backend is a second reference. Without a GPU
the kernel runs under Triton's CPU interpreter (``TRITON_INTERPRET=1``), enabled only while this
module runs so other test modules see the registry as usual.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

triton = pytest.importorskip(
    "triton", reason="triton not installed (pip install triton; `make test-triton` installs it)"
)

from eggnet_ros.model import (  # noqa: E402 - after the importorskip on purpose
    EggNet,
    EggNetConfig,
    deform_conv2d,
    deform_conv2d_pytorch,
    resolve_backend,
)
from eggnet_ros.model import triton_deform as td  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

if DEVICE == "cpu" and tuple(int(v) for v in triton.__version__.split(".")[:2]) < (3, 9):
    pytest.skip(
        f"Triton {triton.__version__}'s CPU interpreter calls int() on 1-element arrays, which numpy 2 "
        "rejects (range() over a runtime bound fails); CPU tests need triton>=3.9 (GPU runs compile)",
        allow_module_level=True,
    )


@pytest.fixture(autouse=True, scope="module")
def _interpreter_on_cpu():
    """Enable the interpreter for this module only (CPU machines); restore and re-probe after."""
    old = os.environ.get("TRITON_INTERPRET")
    if DEVICE == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    td.register()
    yield
    if old is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = old
    td.register()


# ----------------------------------------------------------------------------- reference


def _bilinear(img: np.ndarray, h: float, w: float) -> np.ndarray:
    """torchvision's ``bilinear_interpolate`` for all channels of ``img`` (C, H, W)."""
    _, height, width = img.shape
    if h <= -1 or height <= h or w <= -1 or width <= w:
        return np.zeros(img.shape[0])
    h_low, w_low = int(np.floor(h)), int(np.floor(w))
    h_high, w_high = h_low + 1, w_low + 1
    lh, lw = h - h_low, w - w_low
    hh, hw = 1 - lh, 1 - lw

    def at(y: int, x: int) -> np.ndarray:
        ok = 0 <= y <= height - 1 and 0 <= x <= width - 1
        return img[:, y, x] if ok else np.zeros(img.shape[0])

    return hh * hw * at(h_low, w_low) + hh * lw * at(h_low, w_high) + lh * hw * at(h_high, w_low) + (
        lh * lw * at(h_high, w_high)
    )


def reference(x, offset, weight, bias=None, mask=None) -> np.ndarray:
    """3×3, stride 1, padding 1 deformable conv in float64 (im2col + GEMM, as torchvision)."""
    x, offset, weight = (t.detach().double().cpu().numpy() for t in (x, offset, weight))
    n, c_in, h, w = x.shape
    cols = np.zeros((n, c_in, 9, h, w))
    for b in range(n):
        for k in range(9):
            ky, kx = divmod(k, 3)
            for i in range(h):
                for j in range(w):
                    dy, dx = offset[b, 2 * k, i, j], offset[b, 2 * k + 1, i, j]
                    v = _bilinear(x[b], i - 1 + ky + dy, j - 1 + kx + dx)
                    if mask is not None:
                        v = v * float(mask[b, k, i, j])
                    cols[b, :, k, i, j] = v
    out = np.einsum("ock,nckhw->nohw", weight.reshape(weight.shape[0], c_in, 9), cols)
    if bias is not None:
        out = out + bias.detach().double().cpu().numpy()[None, :, None, None]
    return out


def make_case(n, c_in, c_out, h, w, seed=0, bias=True, dtype=torch.float32):
    """Random inputs whose offsets hit every case: fractional, integer, far outside, on the edge."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g)
    offset = torch.randn(n, 18, h, w, generator=g) * 2.5
    offset[:, 0::4] = offset[:, 0::4].round()  # integer dy on some taps: exact-pixel hits
    offset[:, 2, 0, :] = -0.999  # tap 1 of row 0 lands just inside y > -1
    offset[:, 4, -1, :] = 1.0  # tap 2 of the last row lands exactly on y = H (zero)
    offset[:, 5, :, 0] = 40.0  # far outside to the right
    offset[:, 7, :, -1] = -1e6  # absurdly far outside: must not overflow the int conversion
    weight = torch.randn(c_out, c_in, 3, 3, generator=g) / (3.0 * c_in**0.5)
    b = torch.randn(c_out, generator=g) if bias else None
    to = lambda t: t.to(DEVICE) if t is not None else None  # noqa: E731
    return to(x.to(dtype)), to(offset), to(weight.to(dtype)), to(b.to(dtype) if b is not None else None)


# The last shape spans several pixel tiles (17*19 > 256 = the interpreter's tile; > 128 on GPU).
SHAPES = [(1, 4, 8, 5, 7), (2, 7, 16, 9, 11), (1, 16, 20, 6, 9), (1, 4, 6, 17, 19)]


# ----------------------------------------------------------------------------- forward


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_fp32_matches_torchvision_rules(shape, bias):
    x, offset, weight, b = make_case(*shape, seed=sum(shape), bias=bias)
    got = td.deform_conv2d_triton(x, offset, weight, b)
    assert got.dtype == torch.float32 and got.shape == (shape[0], shape[2], shape[3], shape[4])
    np.testing.assert_allclose(got.cpu().numpy(), reference(x, offset, weight, b), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_fp32_matches_pytorch_backend(shape):
    x, offset, weight, b = make_case(*shape, seed=3)
    ref = deform_conv2d_pytorch(x, offset, weight, b)
    got = td.deform_conv2d_triton(x, offset, weight, b)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_far_outside_offsets_give_bias_only():
    x, offset, weight, b = make_case(1, 4, 8, 5, 7, seed=5)
    offset = torch.full_like(offset, 1e9)
    got = td.deform_conv2d_triton(x, offset, weight, b)
    torch.testing.assert_close(got, b.view(1, -1, 1, 1).expand_as(got), atol=0, rtol=0)


def test_modulation_mask_matches_reference():
    x, offset, weight, b = make_case(1, 6, 8, 5, 7, seed=9)
    mask = torch.rand(1, 9, 5, 7, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    got = td.deform_conv2d_triton(x, offset, weight, b, mask)
    np.testing.assert_allclose(got.cpu().numpy(), reference(x, offset, weight, b, mask), atol=1e-4, rtol=1e-4)


def test_channels_last_and_strided_offsets():
    """The kernel reads strides: channels_last input and a sliced offset need no copy."""
    x, offset, weight, b = make_case(2, 8, 16, 6, 9, seed=11)
    ref = reference(x, offset, weight, b)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    wide = torch.zeros(2, 30, 6, 9, device=DEVICE)
    wide[:, 5:23] = offset
    got = td.deform_conv2d_triton(x_cl, wide[:, 5:23], weight, b)
    assert got.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(got.cpu().numpy(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype, atol", [(torch.bfloat16, 3e-2), (torch.float16, 4e-3)])
def test_half_precision_inputs_accumulate_in_fp32(dtype, atol):
    """bf16/fp16 operands, fp32 sums: error is the operand rounding, not a 16-bit accumulation."""
    x, offset, weight, b = make_case(2, 16, 16, 7, 9, seed=13, dtype=dtype)
    got = td.deform_conv2d_triton(x, offset, weight, b)
    assert got.dtype == dtype
    # The reference sees the same rounded inputs; what is left is rounding of samples and output.
    ref = reference(x, offset, weight, b)
    np.testing.assert_allclose(got.float().cpu().numpy(), ref, atol=atol, rtol=2e-2)


def test_autocast_runs_in_autocast_dtype():
    x, offset, weight, b = make_case(1, 8, 8, 5, 7, seed=17)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        got = td.deform_conv2d_triton(x, offset, weight, b)
    assert got.dtype == torch.bfloat16
    ref = reference(x, offset, weight, b)
    np.testing.assert_allclose(got.float().cpu().numpy(), ref, atol=5e-2, rtol=2e-2)


# ----------------------------------------------------------------------------- backward


def test_backward_matches_pytorch_backend_gradients():
    x, offset, weight, b = make_case(1, 5, 6, 5, 7, seed=19)
    offset = offset.clamp(-3, 3)  # keep every tap differentiable (inside or near the image)
    grads = []
    for fn in (td.deform_conv2d_triton, deform_conv2d_pytorch):
        leaves = [t.clone().requires_grad_(True) for t in (x, offset, weight, b)]
        out = fn(*leaves)
        (out * torch.linspace(-1, 1, out.numel(), device=DEVICE).view_as(out)).sum().backward()
        grads.append([t.grad for t in leaves])
    for g_triton, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_triton, g_ref, atol=1e-5, rtol=1e-5)


def test_backward_only_for_inputs_that_need_it():
    x, offset, weight, b = make_case(1, 4, 4, 5, 5, seed=23)
    weight.requires_grad_(True)
    td.deform_conv2d_triton(x, offset, weight, b).sum().backward()
    assert weight.grad is not None and weight.grad.shape == weight.shape
    assert x.grad is None and offset.grad is None


# ----------------------------------------------------------------------------- validation


def test_bad_shapes_raise_value_error():
    x, offset, weight, b = make_case(1, 4, 8, 5, 7)
    with pytest.raises(ValueError, match="offset must be"):
        td.deform_conv2d_triton(x, offset[:, :16], weight, b)
    with pytest.raises(ValueError, match="weight must be"):
        td.deform_conv2d_triton(x, offset, weight[:, :3], b)
    with pytest.raises(ValueError, match="bias must be"):
        td.deform_conv2d_triton(x, offset, weight, b[:3])


def test_unavailable_without_gpu_or_interpreter():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device makes the backend available")
    code = (
        "import torch\n"
        "from eggnet_ros.model import triton_deform as td\n"
        "ok, why = td.availability()\n"
        "assert not ok and 'TRITON_INTERPRET' in why, why\n"
        "try:\n"
        "    td.deform_conv2d_triton(torch.zeros(1,1,3,3), torch.zeros(1,18,3,3), torch.zeros(1,1,3,3))\n"
        "except td.TritonUnavailableError:\n"
        "    print('raised')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "raised"


# ----------------------------------------------------------------------------- registry


def test_registry_runs_triton_when_asked_and_never_auto_on_cpu():
    assert resolve_backend("triton", DEVICE) == "triton"
    if DEVICE == "cpu":
        assert resolve_backend("auto", "cpu") != "triton"  # the interpreter is for tests only
    x, offset, weight, b = make_case(1, 6, 8, 5, 7, seed=29)
    got = deform_conv2d(x, offset, weight, b, padding=1, backend="triton")
    np.testing.assert_allclose(got.cpu().numpy(), reference(x, offset, weight, b), atol=1e-4, rtol=1e-4)


def test_registry_falls_back_for_unfused_geometry(caplog):
    g = torch.Generator().manual_seed(31)
    x = torch.randn(1, 4, 8, 8, generator=g).to(DEVICE)
    weight = torch.randn(6, 4, 3, 3, generator=g).to(DEVICE)
    offset = torch.randn(1, 18, 4, 4, generator=g).to(DEVICE)
    with caplog.at_level(logging.WARNING, logger=td.__name__):
        got = deform_conv2d(x, offset, weight, None, padding=1, backend="triton", stride=2)
    ref = deform_conv2d_pytorch(x, offset, weight, None, (2, 2), (1, 1), (1, 1))
    torch.testing.assert_close(got, ref)
    assert "not fused" in caplog.text


def test_eggnet_with_triton_backend_matches_pytorch_backend():
    """Whole network (GTM, IGTMs, decoder deform convs) on both backends, same weights."""
    torch.manual_seed(0)
    model = EggNet(EggNetConfig.lite(width=4, deform_backend="pytorch")).to(DEVICE).eval()
    with torch.no_grad():  # non-trivial offsets, so the comparison is not of plain convs
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d) and m.out_channels in (18, 6):
                m.weight.normal_(0, 0.3)
    g = torch.Generator().manual_seed(1)
    image = torch.rand(1, 3, 12, 14, generator=g).to(DEVICE)
    mgv = (torch.randn(1, 6, 12, 14, generator=g) * 4).to(DEVICE)
    with torch.no_grad():
        ref = model(image, mgv)
        model.set_deform_backend("triton")
        got = model(image, mgv)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_several_channel_blocks_and_output_blocks(dtype):
    """Small explicit tiles: two Cin blocks (one partial), two Cout programs, several pixel tiles."""
    x, offset, weight, b = make_case(1, 20, 20, 6, 7, seed=37, dtype=dtype)
    blocks = {"BLOCK_P": 16, "BLOCK_C": 16, "BLOCK_CO": 16, "num_warps": 4}
    got = td.launch(x, offset, weight, b, blocks=blocks)
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    np.testing.assert_allclose(got.float().cpu().numpy(), reference(x, offset, weight, b), atol=tol, rtol=tol)


def test_probe_inside_autocast_still_validates_in_fp32():
    """The registry may probe on the first call inside a bf16 autocast region (the node does)."""
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        assert td.validate_against_pytorch(DEVICE) <= td.PROBE_TOLERANCE[torch.float32]



def test_ieee_fp32_matmul_switches_tf32_off_and_restores_it():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with pytest.raises(KeyError), td.ieee_fp32_matmul():
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
            raise KeyError("restored on errors too")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_probe_compares_exact_fp32_when_the_caller_enabled_tf32(monkeypatch):
    """On the H100, eggnet-train's TF32 switch made the 1e-4 probe fail and `auto` drop Triton."""
    seen = []
    real = td.deform_conv2d_triton

    def recording(*args, **kwargs):
        seen.append(torch.backends.cuda.matmul.allow_tf32)
        return real(*args, **kwargs)

    monkeypatch.setattr(td, "deform_conv2d_triton", recording)
    saved = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        assert td.validate_against_pytorch(DEVICE) <= td.PROBE_TOLERANCE[torch.float32]
        assert seen == [False]
        assert torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved

@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_kernel_compiles_for_hopper_without_a_gpu(dtype):
    """Ahead-of-time compile for sm_90 (Triton's bundled ptxas): the GPU-only branch of the kernel
    (native bf16 ``tl.dot``; the interpreter runs an fp32 stand-in) must build before a GPU run."""
    pytest.importorskip("triton.backends.nvidia", reason="triton built without the NVIDIA backend")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    fn = JITFunction(td._deform_conv3x3_fwd_kernel)  # not triton.jit: the interpreter is on here
    blocks = td.block_sizes(64, 64, 1 << 20, torch.bfloat16 if dtype == "bf16" else torch.float32)
    warps = blocks.pop("num_warps")
    consts = {"HAS_BIAS": True, "HAS_MASK": False, "UPCAST_DOT": False,
              "DOT_PRECISION": "ieee" if dtype == "fp32" else "tf32", **blocks}
    sig = {n: "*" + dtype if n.endswith("_ptr") else "i32" for n in fn.arg_names}
    sig.update({n: "constexpr" for n in consts})
    src = ASTSource(fn=fn, signature=sig, constexprs=consts)
    kernel = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
    assert kernel.asm["cubin"]
    if dtype == "bf16":
        assert "wgmma" in kernel.asm["ptx"]  # tensor-core dot, not an fp32 fallback
