"""Deformable convolution backends against an independent, slow reference.

The reference is written here from the DCN paper's eq. (8) and torchvision's CPU kernel rule
(``bilinear_interpolate``): tap k of output pixel p0 samples X at p0*s - pad + pk*d + Δpk; a
sample at y <= -1, y >= H (same for x) is 0; otherwise each of the four bilinear corners that
lies outside the image contributes 0. Explicit loops over taps and corners, plain indexing, no
``grid_sample``: it shares no code with the backends it checks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import eggnet_ros.model.deform as deform_module
from eggnet_ros.model import (
    DeformConv2d,
    available_backends,
    deform_conv2d,
    deform_conv2d_pytorch,
    register_backend,
    resolve_backend,
    unregister_backend,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def reference_deform_conv2d(x, offset, weight, bias=None, stride=1, padding=1, dilation=1, mask=None):
    n, c, h, w = x.shape
    cout, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    rows = torch.arange(ho, dtype=x.dtype).view(1, ho, 1)
    cols = torch.arange(wo, dtype=x.dtype).view(1, 1, wo)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros(n, cout, ho, wo, dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            k = ky * kw + kx
            y = rows * stride - padding + ky * dilation + offset[:, 2 * k]
            xx = cols * stride - padding + kx * dilation + offset[:, 2 * k + 1]
            inside = (y > -1) & (y < h) & (xx > -1) & (xx < w)
            y0, x0 = torch.floor(y), torch.floor(xx)
            ly, lx = y - y0, xx - x0
            sample = torch.zeros(n, c, ho, wo, dtype=x.dtype)
            for cy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
                for cx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
                    valid = inside & (cy >= 0) & (cy <= h - 1) & (cx >= 0) & (cx <= w - 1)
                    idx = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long().view(n, 1, ho * wo)
                    value = flat.gather(2, idx.expand(n, c, ho * wo)).view(n, c, ho, wo)
                    sample = sample + value * (wy * wx * valid).unsqueeze(1)
            if mask is not None:
                sample = sample * mask[:, k].unsqueeze(1)
            out = out + torch.einsum("nchw,oc->nohw", sample, weight[:, :, ky, kx])
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _case(seed: int, n=2, cin=5, cout=4, h=7, w=9, scale=2.5, far=True, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, cin, h, w, generator=g, dtype=dtype)
    weight = torch.randn(cout, cin, 3, 3, generator=g, dtype=dtype) * 0.3
    bias = torch.randn(cout, generator=g, dtype=dtype)
    offset = torch.randn(n, 18, h, w, generator=g, dtype=dtype) * scale
    if far:  # a quarter of the samples land well outside the image (or straddle its border)
        pick = torch.rand(n, 18, h, w, generator=g) < 0.25
        far_away = torch.sign(offset) * (8 + 4 * torch.rand(n, 18, h, w, generator=g))
        offset = torch.where(pick, far_away, offset)
    return x, offset, weight, bias


def _as64(*ts):
    return [t.double() if t is not None else None for t in ts]


@pytest.mark.parametrize(("seed", "cin"), [(0, 5), (1, 5), (2, 40)])  # 40: channels-last CPU path
def test_pytorch_backend_forward_matches_reference(seed: int, cin: int) -> None:
    x, offset, weight, bias = _case(seed, cin=cin)
    got = deform_conv2d(x, offset, weight, bias, padding=1, backend="pytorch")
    want = reference_deform_conv2d(*_as64(x, offset, weight, bias))
    assert got.shape == (2, 4, 7, 9)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_pytorch_backend_stride_dilation_mask_match_reference() -> None:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(1, 3, 9, 8, generator=g)
    weight = torch.randn(2, 3, 3, 3, generator=g)
    # stride 2, dilation 2, padding 2 -> 5x4 output
    offset = torch.randn(1, 18, 5, 4, generator=g) * 2
    mask = torch.rand(1, 9, 5, 4, generator=g)
    got = deform_conv2d(
        x, offset, weight, None, padding=2, backend="pytorch", stride=2, dilation=2, mask=mask
    )
    want = reference_deform_conv2d(*_as64(x, offset, weight), None, 2, 2, 2, mask.double())
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_offsets_entirely_outside_give_bias_only() -> None:
    x, offset, weight, bias = _case(3, far=False)
    offset = torch.full_like(offset, 50.0)
    out = deform_conv2d(x, offset, weight, bias, backend="pytorch")
    torch.testing.assert_close(out, bias.view(1, -1, 1, 1).expand_as(out), atol=0, rtol=0)


@pytest.mark.parametrize(("cin", "band_bytes"), [(5, 0), (40, 0), (5, 1), (40, 20000)])
def test_pytorch_backend_backward_matches_reference(
    monkeypatch: pytest.MonkeyPatch, cin: int, band_bytes: int
) -> None:
    monkeypatch.setattr(deform_module, "TRAINING_COLS_BYTES", band_bytes)  # 0: one band, 1: per row
    x, offset, weight, bias = _case(7, cin=cin)
    mask = torch.rand(2, 9, 7, 9, generator=torch.Generator().manual_seed(8))
    leaves = [t.clone().requires_grad_(True) for t in (x, offset, weight, bias, mask)]
    leaves64 = [t.double().detach().requires_grad_(True) for t in (x, offset, weight, bias, mask)]
    upstream = torch.randn(2, 4, 7, 9, generator=torch.Generator().manual_seed(9))
    out = deform_conv2d(leaves[0], leaves[1], leaves[2], leaves[3], backend="pytorch", mask=leaves[4])
    (out * upstream).sum().backward()
    ref = reference_deform_conv2d(leaves64[0], leaves64[1], leaves64[2], leaves64[3], mask=leaves64[4])
    (ref * upstream.double()).sum().backward()
    for name, a, b in zip(("x", "offset", "weight", "bias", "mask"), leaves, leaves64, strict=True):
        assert a.grad is not None and b.grad is not None, name
        torch.testing.assert_close(a.grad.double(), b.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_pytorch_backend_gradcheck_float64() -> None:
    x, offset, weight, bias = _case(
        11, n=1, cin=2, cout=2, h=3, w=4, scale=1.5, far=False, dtype=torch.float64
    )
    mask = torch.rand(1, 9, 3, 4, dtype=torch.float64)
    inputs = tuple(t.requires_grad_(True) for t in (x, offset, weight, bias, mask))

    def fn(x_, off_, w_, b_, m_):
        return deform_conv2d_pytorch(x_, off_, w_, b_, (1, 1), (1, 1), (1, 1), m_)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


def test_zero_offsets_equal_plain_convolution() -> None:
    x, _, weight, bias = _case(12, far=False)
    layer = DeformConv2d(5, 4, backend="pytorch")
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    out = layer(x, torch.zeros(2, 18, 7, 9))
    torch.testing.assert_close(out, F.conv2d(x, weight, bias, padding=1), atol=1e-5, rtol=1e-5)


def test_bf16_input_and_cpu_autocast() -> None:
    x, offset, weight, bias = _case(13)
    want = reference_deform_conv2d(*_as64(x, offset, weight, bias))
    scale = want.abs().max()
    args_bf16 = [t.bfloat16() for t in (x, offset, weight, bias)]
    out_bf16 = deform_conv2d(*args_bf16, backend="pytorch")
    assert out_bf16.dtype == torch.bfloat16
    assert (out_bf16.double() - want).abs().max() < 0.05 * scale
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ac = deform_conv2d(x, offset, weight, bias, backend="pytorch")
    assert out_ac.dtype == torch.bfloat16
    assert (out_ac.double() - want).abs().max() < 0.03 * scale


def test_torchvision_backend_matches_pytorch_backend() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if "torchvision" not in available_backends(device):
        pytest.skip(f"torchvision.ops.deform_conv2d does not load/run on {device} here")
    tensors = [t.to(device).requires_grad_(True) for t in _case(21)]
    twins = [t.detach().clone().requires_grad_(True) for t in tensors]
    upstream = torch.randn(2, 4, 7, 9, device=device)
    a = deform_conv2d(*tensors, backend="torchvision")
    b = deform_conv2d(*twins, backend="pytorch")
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    (a * upstream).sum().backward()
    (b * upstream).sum().backward()
    for name, t, u in zip(("x", "offset", "weight", "bias"), tensors, twins, strict=True):
        torch.testing.assert_close(t.grad, u.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_backend_registry_selection_and_errors() -> None:
    calls: list[str] = []

    def counting(*args):
        calls.append("counting")
        return deform_conv2d_pytorch(*args)

    x, offset, weight, bias = _case(30, far=False)
    register_backend("counting_test", counting, priority={"cpu": 1000})
    register_backend("broken_test", counting, probe=lambda _d: 1 / 0, priority={"cpu": 2000})
    try:
        assert resolve_backend("auto", "cpu") == "counting_test"  # broken one skipped despite priority
        out = deform_conv2d(x, offset, weight, bias, backend="auto")
        assert calls == ["counting"]
        torch.testing.assert_close(out, deform_conv2d(x, offset, weight, bias, backend="pytorch"))
        with pytest.raises(RuntimeError, match="does not run"):
            deform_conv2d(x, offset, weight, bias, backend="broken_test")
        assert "broken_test" not in available_backends("cpu")
    finally:
        unregister_backend("counting_test")
        unregister_backend("broken_test")
    assert resolve_backend("auto", "cpu") != "counting_test"
    with pytest.raises(ValueError, match="unknown deform backend"):
        deform_conv2d(x, offset, weight, bias, backend="nope")
    with pytest.raises(ValueError, match="offset shape"):
        deform_conv2d(x, offset[:, :9], weight, bias, backend="pytorch")


def test_implausible_offsets_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    layer = DeformConv2d(2, 2, backend="pytorch", check_every=1)
    x = torch.randn(1, 2, 5, 5)
    with caplog.at_level("WARNING", logger="eggnet_ros.model.deform"):
        layer(x, torch.full((1, 18, 5, 5), 0.5))
        assert not caplog.records
        layer(x, torch.full((1, 18, 5, 5), 80.0))
        layer(x, torch.full((1, 18, 5, 5), 80.0))
    assert len([r for r in caplog.records if "implausibly large" in r.message]) == 1


@pytest.mark.parametrize("budget", [1, 3000])  # 1 byte: one output row per band
def test_inference_banding_matches_reference(monkeypatch: pytest.MonkeyPatch, budget: int) -> None:
    monkeypatch.setattr(deform_module, "INFERENCE_COLS_BYTES", budget)
    g = torch.Generator().manual_seed(40)
    x = torch.randn(2, 3, 9, 8, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    offset = torch.randn(2, 18, 5, 4, generator=g) * 3
    mask = torch.rand(2, 9, 5, 4, generator=g)
    with torch.no_grad():
        got = deform_conv2d(
            x, offset, weight, bias, padding=2, backend="pytorch", stride=2, dilation=2, mask=mask
        )
    want = reference_deform_conv2d(*_as64(x, offset, weight, bias), 2, 2, 2, mask.double())
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_channels_last_tensors_match_reference() -> None:
    x, offset, weight, bias = _case(50, cin=40)
    mask = torch.rand(2, 9, 7, 9, generator=torch.Generator().manual_seed(51))
    cl = [t.contiguous(memory_format=torch.channels_last) for t in (x, offset, weight, mask)]
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            got = deform_conv2d(cl[0], cl[1], cl[2], bias, backend="pytorch", mask=cl[3])
        want = reference_deform_conv2d(*_as64(x, offset, weight, bias), mask=mask.double())
        torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_cuda_auto_ranking_follows_the_h100_measurements() -> None:
    """docs/gpu.md: triton 19.1 < pytorch 32.4 < torchvision 40.9 ms/frame (bf16, 1024²)."""
    import eggnet_ros.model.triton_deform  # noqa: F401  (registers itself on import)
    from eggnet_ros.model.deform import _REGISTRY

    cuda = {name: b.priority.get("cuda", -1) for name, b in _REGISTRY.items() if not name.endswith("_test")}
    assert cuda["triton"] > cuda["pytorch"] > cuda["torchvision"]
