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


class GTM(nn.Module):
    """Gyro-aided transformation module (Sec. III-C-1, Fig. 5, eq. 17).

    ``mgo_conv`` (3×3×6×18) turns the (scaled) MGV field into the motion guidance offset (MGO),
    which steers the deformable conv over the features. Returns ``(features, MGO)``; the MGO
    feeds the next IGTM.
    """

    def __init__(self, c: int, mgv_channels: int = 6, backend: str = "auto", offset_init_std: float = 1e-3):
        super().__init__()
        self.mgo_conv = conv3x3(mgv_channels, OFFSET_CHANNELS)
        self.deform = DeformConv2d(c, c, 3, padding=1, backend=backend)
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

    def __init__(self, c: int, backend: str = "auto", offset_init_std: float = 1e-3) -> None:
        super().__init__()
        self.conv_a = conv3x3(OFFSET_CHANNELS, OFFSET_CHANNELS, stride=2)
        self.conv_b = conv3x3(c, OFFSET_CHANNELS)
        self.conv_c = conv3x3(2 * OFFSET_CHANNELS, 2 * OFFSET_CHANNELS)
        self.act = nn.ReLU(inplace=True)
        self.conv_d = conv3x3(2 * OFFSET_CHANNELS, OFFSET_CHANNELS)
        self.deform = DeformConv2d(c, c, 3, padding=1, backend=backend)
        init_offset_conv(self.conv_d, offset_init_std)

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
