"""Building blocks of EggNet, named after the module rows of the paper's Table 1.

Each deformable conv is a ``DeformConv2d`` called ``deform`` (the paper's "Custom Conv" /
"Offset Conv"); what differs between the modules is where its offsets come from:

- ``DeformBlock`` ("Deform Conv"): offsets from the features (``offset_conv``, c→18).
- ``GTM``: offsets = MGO computed from the MGV field (``mgo_conv``, 6→18).
- ``IGTM``: MGO from the previous MGO (``conv_a``, stride 2) and the features (``conv_b``),
  fused by ``conv_c`` + ReLU and ``conv_d``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .deform import DeformConv2d

#: 2 coordinates × 9 taps of a 3×3 kernel (torchvision layout, (dy, dx) per tap).
OFFSET_CHANNELS = 18


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def conv_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """The "Conv, ReLU" rows of Table 1."""
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2)
    return nn.Sequential(conv, nn.ReLU(inplace=True))


def init_offset_conv(conv: nn.Conv2d, std: float) -> None:
    """Small weights and zero bias: the deformable conv starts (almost) as a plain conv.

    Exactly zero (DCN's choice) would block gradients to everything upstream of the offset
    conv (e.g. IGTM's ``conv_a``..``conv_c``) until the first update; tiny nonzero weights keep
    the start a near-plain conv while every branch receives a gradient from step one.
    """
    nn.init.normal_(conv.weight, std=std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


class ResBlock(nn.Module):
    """Table 1 "Res": conv 3×3 + ReLU + conv 3×3, plus the identity."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(c, c)
        self.act = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(c, c)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class DeformBlock(nn.Module):
    """Table 1 "Deform Conv": offsets from the features (c→18), then a c→c deformable conv."""

    def __init__(self, c: int, backend: str = "auto", offset_init_std: float = 1e-3) -> None:
        super().__init__()
        self.offset_conv = conv3x3(c, OFFSET_CHANNELS)
        self.deform = DeformConv2d(c, c, 3, padding=1, backend=backend)
        init_offset_conv(self.offset_conv, offset_init_std)

    def forward(self, x: Tensor) -> Tensor:
        return self.deform(x, self.offset_conv(x))


class PlainBlock(nn.Module):
    """The ``plain`` variant's stand-in for any deformable module: one ordinary 3×3 conv c→c.

    Same FLOPs as the deformable conv's GEMM without sampling or offsets, hence the speed
    reference for the deformable backends.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = conv3x3(c, c)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


#: Blur-path parameter of each of the 9 taps under the motion-guided initialisation: tap k
#: samples the pixel's trajectory at t_k in [-1, 1] (-1 = exposure start via "pre", +1 = end via
#: "pro"), in the row-major tap order of the offsets.
PATH_TAPS: tuple[float, ...] = tuple(-1.0 + 2.0 * k / 8 for k in range(9))


def _tap_grid() -> list[tuple[int, int]]:
    """(dy, dx) of each regular 3×3 tap relative to the centre, row-major (the offset layout)."""
    return [(ky - 1, kx - 1) for ky in range(3) for kx in range(3)]


#: ``offset_init`` values that start the gyro branches on the blur path.
MOTION_INITS: tuple[str, ...] = ("motion", "motion_grid")


def init_mgo_conv_along_path(conv: nn.Conv2d, mgv_scale: float, std: float, keep_grid: bool = False) -> None:
    """Make a fresh GTM place its 9 taps *on the blur path* given by the MGVs.

    ``keep_grid=False`` ("motion"): tap k lands at ``p + disp_k``, the 9 path points (without
    blur they coincide: a 1×1 conv there). ``keep_grid=True`` ("motion_grid"): tap k lands at
    ``p + grid_k + disp_k``, the regular 3×3 neighbourhood shifted along the path (an ordinary
    3×3 conv without blur). "motion_grid" was meant to let path-initialised models denoise like
    the near-plain start does (their SSIM is lower: 0.70 vs 0.76 at 2,700 iterations), but it
    scored the same as "motion" (26.32 / 0.698 vs 26.34 / 0.698): the taps' geometry is not the
    cause (docs/experiments.md).

    Why: with DCN's near-zero offset init the network must discover from scratch that the MGV
    channels say where the blur came from; at CPU budgets (a few thousand iterations) it barely
    starts to (measured: a 3,100-iteration lite EggNet lost 0.00 dB under MGV noise σ = 1 px,
    i.e. ignored them). Initialising ``mgo_conv`` as the linear map MGV -> "sample the pixel's
    trajectory at t_k" (a straight-line pre/pro approximation, ``PATH_TAPS``) gives the
    deformable conv the paper's intended sampling pattern at step 0; training refines it. The
    architecture and parameter count are unchanged. Measured on the lite model it did not pay
    off (same PSNR, lower SSIM at 2,700 iterations), so it is an option, not the default.
    Channel order: ``MGV_CHANNELS`` (pre_dx, pre_dy, pro_dx, pro_dy, centroid_dx, centroid_dy);
    offsets: (dy, dx) per tap.
    """
    nn.init.normal_(conv.weight, std=std)
    with torch.no_grad():
        bias = torch.zeros(OFFSET_CHANNELS)
        for k, ((gy, gx), t) in enumerate(zip(_tap_grid(), PATH_TAPS, strict=True)):
            if not keep_grid:
                # The regular grid position is cancelled by the bias, so tap k lands at p + disp_k.
                bias[2 * k], bias[2 * k + 1] = -gy, -gx
            if t < 0:
                conv.weight[2 * k, 1, 1, 1] += -t / mgv_scale  # dy from pre_dy
                conv.weight[2 * k + 1, 0, 1, 1] += -t / mgv_scale  # dx from pre_dx
            elif t > 0:
                conv.weight[2 * k, 3, 1, 1] += t / mgv_scale  # dy from pro_dy
                conv.weight[2 * k + 1, 2, 1, 1] += t / mgv_scale  # dx from pro_dx
        conv.bias.copy_(bias)


class GTM(nn.Module):
    """Gyro-aided transformation module (Sec. III-C-1, Fig. 5, eq. 17).

    ``mgo_conv`` (3×3×6×18) turns the (scaled) MGV field into the motion guidance offset (MGO),
    which steers the deformable conv over the features. Returns ``(features, MGO)``; the MGO
    feeds the next IGTM. ``offset_init="motion"`` starts ``mgo_conv`` as the blur-path sampler
    (:func:`init_mgo_conv_along_path`), ``"small"`` as DCN's near-plain conv.
    """

    def __init__(
        self,
        c: int,
        mgv_channels: int = 6,
        backend: str = "auto",
        offset_init_std: float = 1e-3,
        offset_init: str = "small",
        mgv_scale: float = 0.1,
    ):
        super().__init__()
        self.mgo_conv = conv3x3(mgv_channels, OFFSET_CHANNELS)
        self.deform = DeformConv2d(c, c, 3, padding=1, backend=backend)
        if offset_init in MOTION_INITS:
            if mgv_channels < 4:
                raise ValueError("the motion-guided init needs the pre/pro MGV channels (>= 4)")
            init_mgo_conv_along_path(self.mgo_conv, mgv_scale, offset_init_std, offset_init == "motion_grid")
        else:
            init_offset_conv(self.mgo_conv, offset_init_std)

    def forward(self, x: Tensor, mgv: Tensor) -> tuple[Tensor, Tensor]:
        mgo = self.mgo_conv(mgv)
        return self.deform(x, mgo), mgo


class IGTM(nn.Module):
    """Image-gyro-aided transformation module (Sec. III-C-2, Fig. 6, eq. 18).

    ``conv_a`` (18→18, stride 2) brings the previous MGO to this level's resolution,
    ``conv_b`` (c→18) summarises the features, ``conv_c`` (36→36) + ReLU and ``conv_d`` (36→18)
    fuse both into this level's MGO, which drives the deformable conv. Because the image
    features take part, a wrong gyro MGO can be corrected (the paper's robustness argument).
    """

    def __init__(
        self, c: int, backend: str = "auto", offset_init_std: float = 1e-3, offset_init: str = "small"
    ) -> None:
        super().__init__()
        self.conv_a = conv3x3(OFFSET_CHANNELS, OFFSET_CHANNELS, stride=2)
        self.conv_b = conv3x3(c, OFFSET_CHANNELS)
        self.conv_c = conv3x3(2 * OFFSET_CHANNELS, 2 * OFFSET_CHANNELS)
        self.act = nn.ReLU(inplace=True)
        self.conv_d = conv3x3(2 * OFFSET_CHANNELS, OFFSET_CHANNELS)
        self.deform = DeformConv2d(c, c, 3, padding=1, backend=backend)
        if offset_init in MOTION_INITS:
            self._init_as_halved_path(keep_grid=offset_init == "motion_grid")
        else:
            init_offset_conv(self.conv_d, offset_init_std)

    def _init_as_halved_path(self, keep_grid: bool = False) -> None:
        """Start as "this level's MGO = the previous level's path at half the pixel scale".

        ``conv_a`` halves the previous MGO's displacements (with ``keep_grid=False`` its bias
        re-centres the tap grid, which does not scale; with ``keep_grid=True`` the MGO holds only
        the displacements and no bias is needed); ``conv_c`` copies that into +/- channel halves
        and ``conv_d`` recombines them, so the ReLU in between passes it unchanged (36 = 2 × 18
        is exactly what that needs).
        ``conv_b`` (features) keeps its default init: the image side starts as a small correction
        the network can grow where the gyro is wrong.
        """
        eye = torch.eye(OFFSET_CHANNELS)
        grid = torch.tensor([g for yx in _tap_grid() for g in yx], dtype=torch.float32)
        with torch.no_grad():
            for conv in (self.conv_a, self.conv_c, self.conv_d):
                conv.weight.zero_()
                conv.bias.zero_()
            self.conv_a.weight[:, :, 1, 1] = 0.5 * eye
            if not keep_grid:
                self.conv_a.bias.copy_(-0.5 * grid)
            n = OFFSET_CHANNELS
            self.conv_c.weight[:n, :n, 1, 1] = eye
            self.conv_c.weight[n:, :n, 1, 1] = -eye
            self.conv_d.weight[:, :n, 1, 1] = eye
            self.conv_d.weight[:, n:, 1, 1] = -eye
            # conv_b's contribution enters conv_c's inputs n..2n-1, which start disconnected;
            # a small weight lets gradients reach the image branch from step one.
            nn.init.normal_(self.conv_c.weight[:, n:], std=1e-3)

    def forward(self, x: Tensor, mgo_prev: Tensor) -> tuple[Tensor, Tensor]:
        fused = torch.cat((self.conv_a(mgo_prev), self.conv_b(x)), dim=1)
        mgo = self.conv_d(self.act(self.conv_c(fused)))
        return self.deform(x, mgo), mgo


class UpConv(nn.Module):
    """Table 1 "Upsample" + "Conv, ReLU": ×2 bilinear upsampling then a 3×3 conv.

    The paper does not say which upsampling; bilinear (parameter-free) keeps the parameter count
    on Table 1's and avoids transposed-conv checkerboards.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = conv_relu(cin, cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))
