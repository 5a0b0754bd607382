"""EggNet (paper Table 1) and its Fig. 7 ablations as configurations of one class.

Parameter count: at the paper width with packed Bayer input (4 channels), Table 1 implies
5,608,068 parameters (weights + biases) = 22.43e6 bytes in fp32 = **21.39 MiB**, exactly the
"21.39 MB" of Tables 2/3 (the paper's MB are MiB). The ablations give 21.27 (Base Deform),
21.29 (Base I&G; the paper prints 21.30), 21.24 (Base GTM) MiB, matching Table 2 to within its
rounding. RGB/mono inputs change only the first and last convs (a few kB).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import GTM, IGTM, DeformBlock, PlainBlock, ResBlock, UpConv, conv3x3, conv_relu
from .config import EggNetConfig

log = logging.getLogger(__name__)

#: Two stride-2 levels: spatial sizes must be multiples of 4.
SIZE_MULTIPLE = 4


def _pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad bottom/right to a multiple (replicate when the image is too small to reflect)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class EggNet(nn.Module):
    """Gyro-guided deblurring U-Net: ``forward(image, mgv) -> image + residual``.

    ``image`` is ``(N, C, H, W)`` in [0, 1] (C = ``config.in_channels``; packed Bayer is
    ``(Gr, R, Gb, B)`` at half resolution). ``mgv`` is ``(N, 6, H, W)`` in pixels *of the
    image passed here* (for packed Bayer: half the raw resolution, displacements halved too);
    it is required by ``eggnet``/``base_gtm``/``base_ig`` and ignored (may be None) otherwise.
    Any H, W: both are reflect-padded to a multiple of 4 and the output cropped back.

    Attributes read like Table 1: ``enc1_conv, enc1_transform, enc1_res, enc2_down, ...,
    dec3_deform, dec3_res, dec3_up, dec2_fuse, ..., out_conv``. ``encN_transform`` is the GTM
    (level 1) / IGTM (levels 2, 3) for ``eggnet``, a feature-driven ``DeformBlock`` where an
    ablation removes them, and a ``PlainBlock`` for ``plain``.

    ``torch.compile``: run one eager forward on the target device first; it resolves and probes
    the deformable backend (host syncs, imports) so that the compiled graph has no breaks.
    """

    def __init__(self, config: EggNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or EggNetConfig()
        c1, c2, c3 = cfg.widths
        backend, std = cfg.deform_backend, cfg.offset_init_std
        plain = cfg.variant == "plain"

        def deform(c: int) -> nn.Module:
            return PlainBlock(c) if plain else DeformBlock(c, backend, std)

        in_ch = cfg.in_channels + (cfg.mgv_channels if cfg.variant == "base_ig" else 0)
        # Encoder LV1: Conv+ReLU, GTM, Res
        self.enc1_conv = conv_relu(in_ch, c1)
        self.enc1_transform = (
            GTM(c1, cfg.mgv_channels, backend, std, cfg.offset_init, cfg.mgv_scale)
            if cfg.variant in ("eggnet", "base_gtm") else deform(c1)
        )
        self.enc1_res = ResBlock(c1)
        # Encoder LV2/LV3: strided Conv+ReLU, IGTM, Res
        use_igtm = cfg.variant == "eggnet"
        self.enc2_down = conv_relu(c1, c2, stride=2)
        self.enc2_transform = IGTM(c2, backend, std, cfg.offset_init) if use_igtm else deform(c2)
        self.enc2_res = ResBlock(c2)
        self.enc3_down = conv_relu(c2, c3, stride=2)
        self.enc3_transform = IGTM(c3, backend, std, cfg.offset_init) if use_igtm else deform(c3)
        self.enc3_res = ResBlock(c3)
        # Decoder LV3: Deform Conv, Res, Upsample + Conv+ReLU
        self.dec3_deform = deform(c3)
        self.dec3_res = ResBlock(c3)
        self.dec3_up = UpConv(c3, c2)
        # Decoder LV2: 1x1 fusion of [upsampled, skip], Deform Conv, Res, Upsample + Conv+ReLU
        self.dec2_fuse = conv_relu(2 * c2, c2, kernel=1)
        self.dec2_deform = deform(c2)
        self.dec2_res = ResBlock(c2)
        self.dec2_up = UpConv(c2, c1)
        # Decoder LV1: 1x1 fusion, Deform Conv, Res, last Conv to the input channels
        self.dec1_fuse = conv_relu(2 * c1, c1, kernel=1)
        self.dec1_deform = deform(c1)
        self.dec1_res = ResBlock(c1)
        self.out_conv = conv3x3(c1, cfg.in_channels)
        # Start near the identity S = B (small residual): the first steps then refine the blurred
        # input instead of first unlearning a random residual as large as the image itself.
        with torch.no_grad():
            self.out_conv.weight.mul_(0.1)
            self.out_conv.bias.zero_()

    # ------------------------------------------------------------------ helpers
    def _check_inputs(self, image: Tensor, mgv: Tensor | None) -> None:
        cfg = self.config
        if image.dim() != 4 or image.shape[1] != cfg.in_channels:
            raise ValueError(
                f"image must be (N, {cfg.in_channels}, H, W) for input_mode {cfg.input_mode!r}, "
                f"got {tuple(image.shape)}"
            )
        if not image.is_floating_point():
            raise TypeError(f"image must be a float tensor in [0, 1], got {image.dtype}")
        if cfg.uses_mgv:
            if mgv is None:
                raise ValueError(f"variant {cfg.variant!r} needs the MGV field")
            expected = (image.shape[0], cfg.mgv_channels, *image.shape[-2:])
            if tuple(mgv.shape) != expected:
                raise ValueError(f"mgv must be {expected} (the image's resolution), got {tuple(mgv.shape)}")

    @staticmethod
    def _transform(module: nn.Module, f: Tensor, guide: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Run a level's transform; GTM/IGTM consume and emit a guide (MGV -> MGO -> MGO)."""
        if isinstance(module, (GTM, IGTM)):
            assert guide is not None
            return module(f, guide)
        return module(f), guide

    # ------------------------------------------------------------------ forward
    def forward(self, image: Tensor, mgv: Tensor | None = None) -> Tensor:
        self._check_inputs(image, mgv)
        cfg = self.config
        h, w = image.shape[-2:]
        x = _pad_to_multiple(image, SIZE_MULTIPLE)
        guide = None
        if cfg.uses_mgv:
            assert mgv is not None
            guide = _pad_to_multiple(mgv.to(x.dtype), SIZE_MULTIPLE) * cfg.mgv_scale

        f = self.enc1_conv(torch.cat((x, guide), dim=1) if cfg.variant == "base_ig" else x)
        f, guide = self._transform(self.enc1_transform, f, guide if cfg.variant != "base_ig" else None)
        e1 = self.enc1_res(f)
        f, guide = self._transform(self.enc2_transform, self.enc2_down(e1), guide)
        e2 = self.enc2_res(f)
        f, guide = self._transform(self.enc3_transform, self.enc3_down(e2), guide)
        e3 = self.enc3_res(f)

        d = self.dec3_up(self.dec3_res(self.dec3_deform(e3)))
        d = self.dec2_res(self.dec2_deform(self.dec2_fuse(torch.cat((d, e2), dim=1))))
        d = self.dec2_up(d)
        d = self.dec1_res(self.dec1_deform(self.dec1_fuse(torch.cat((d, e1), dim=1))))
        residual = self.out_conv(d)
        return (x + residual)[..., :h, :w]

    # ------------------------------------------------------------------ introspection
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def size_mib(self, bytes_per_param: int = 4) -> float:
        """Parameter storage in MiB (the unit of the paper's "MB")."""
        return self.num_parameters() * bytes_per_param / 2**20

    def set_deform_backend(self, backend: str) -> None:
        """Switch every deformable conv to another backend (weights unchanged)."""
        from .deform import DeformConv2d

        self.config.deform_backend = backend
        for m in self.modules():
            if isinstance(m, DeformConv2d):
                m.backend = backend
