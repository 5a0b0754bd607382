"""ROS image encodings <-> the network's input tensor, and back.

A camera delivers ``mono8``/``mono16``, ``rgb8``/``bgr8`` or raw Bayer mosaics; a trained model
expects one of three input modes (``rgb``, ``mono``, ``bayer`` = 4-channel packed mosaic at half
resolution). :func:`plan_conversion` picks the conversion for a (camera encoding, model mode) pair
once, so the per-frame path is a couple of tensor ops and the node can log *what* it does once.

The output always has the camera's encoding, dtype and shape: downstream nodes (visual odometry,
rectification) must not notice that a network sat in between.

Conversions when the modes differ (all lossless in layout, never silently wrong):

- rgb model on mono: replicate the channel in, BT.601 luminance out;
- rgb model on Bayer: demosaic in (OpenCV), re-sample the mosaic out (remosaic);
- mono model on rgb/bgr: each colour channel is one batch item;
- mono model on Bayer: each of the four packed planes is one batch item (half resolution);
- bayer model on mono/rgb: refused (:class:`UnsupportedConversionError`) - inventing a mosaic
  would feed the network statistics it never saw.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from eggnet_ros.model.bayer import BAYER_LAYOUTS, PACKED_ORDER, pack_bayer, unpack_bayer

InputMode = Literal["rgb", "mono", "bayer"]
#: Where :meth:`Conversion.prepare`/:meth:`Conversion.finish` run their per-pixel work.
Backend = Literal["numpy", "torch"]

#: OpenCV names Bayer patterns after the 2x2 block starting at (1, 1), hence the shifted names
#: (the same table as cv_bridge / rosbags-image use).
_CV_DEMOSAIC: dict[str, int] = {
    "rggb": cv2.COLOR_BayerBG2RGB,
    "bggr": cv2.COLOR_BayerRG2RGB,
    "gbrg": cv2.COLOR_BayerGR2RGB,
    "grbg": cv2.COLOR_BayerGB2RGB,
}

#: RGB channel each packed plane's colour filter passes.
_PLANE_CHANNEL = {"Gr": 1, "R": 0, "Gb": 1, "B": 2}

#: BT.601 luma weights (what OpenCV's RGB2GRAY uses), for rgb-model-on-mono output.
LUMA_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class EncodingInfo:
    """What a supported ROS encoding looks like as a numpy array."""

    name: str
    kind: Literal["mono", "rgb", "bgr", "bayer"]
    dtype: np.dtype
    channels: int
    pattern: str | None = None

    @property
    def max_value(self) -> float:
        return float(np.iinfo(self.dtype).max)


def _build_table() -> dict[str, EncodingInfo]:
    table = {
        "mono8": EncodingInfo("mono8", "mono", np.dtype(np.uint8), 1),
        "mono16": EncodingInfo("mono16", "mono", np.dtype(np.uint16), 1),
        "rgb8": EncodingInfo("rgb8", "rgb", np.dtype(np.uint8), 3),
        "bgr8": EncodingInfo("bgr8", "bgr", np.dtype(np.uint8), 3),
    }
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        for pattern in BAYER_LAYOUTS:
            name = f"bayer_{pattern}{bits}"
            table[name] = EncodingInfo(name, "bayer", np.dtype(dtype), 1, pattern)
    return table


_ENCODINGS = _build_table()
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)


class UnsupportedEncodingError(ValueError):
    """The image encoding is not one the processor can convert (names the supported list)."""


class UnsupportedConversionError(ValueError):
    """The camera encoding cannot be fed to a model with this input mode."""


def encoding_info(encoding: str) -> EncodingInfo:
    """Look up ``encoding``; raise :class:`UnsupportedEncodingError` naming the supported list."""
    try:
        return _ENCODINGS[encoding]
    except KeyError:
        raise UnsupportedEncodingError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        ) from None


def check_image(image: np.ndarray, info: EncodingInfo) -> None:
    """Raise ``ValueError`` if ``image`` does not have the layout ``info`` promises."""
    if image.dtype != info.dtype:
        raise ValueError(f"{info.name} image must be {info.dtype}, got {image.dtype}")
    ok_ndim = image.ndim == 2 if info.channels == 1 else (image.ndim == 3 and image.shape[2] == info.channels)
    if not ok_ndim:
        want = "(H, W)" if info.channels == 1 else f"(H, W, {info.channels})"
        raise ValueError(f"{info.name} image must have shape {want}, got {image.shape}")
    if info.kind == "bayer" and (image.shape[0] % 2 or image.shape[1] % 2):
        h, w = image.shape[:2]
        raise ValueError(f"{info.name} image needs even width and height, got {w}x{h}")


def demosaic(raw: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W) uint8/uint16 mosaic -> (H, W, 3) RGB of the same dtype (OpenCV bilinear).

    OpenCV extrapolates the outermost rows/columns, which alters even the measured channel
    there; the measured samples are written back so that every pixel keeps its sensor value
    (an identity network then round-trips a mosaic exactly through :func:`remosaic`).
    """
    rgb = cv2.cvtColor(raw, _CV_DEMOSAIC[pattern])
    for plane, (r, c) in zip(PACKED_ORDER, BAYER_LAYOUTS[pattern], strict=True):
        rgb[r::2, c::2, _PLANE_CHANNEL[plane]] = raw[r::2, c::2]
    return rgb


def remosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W) mosaic: each site keeps the channel its colour filter passes."""
    raw = np.empty(rgb.shape[:2], rgb.dtype)
    for plane, (r, c) in zip(PACKED_ORDER, BAYER_LAYOUTS[pattern], strict=True):
        raw[r::2, c::2] = rgb[r::2, c::2, _PLANE_CHANNEL[plane]]
    return raw


@dataclass(frozen=True)
class Conversion:
    """How frames of one encoding are fed to a model of one input mode, and turned back.

    ``downscale`` is the factor between camera pixels and model pixels (2 for packed Bayer): the
    MGV field must be computed for a camera model resized by it so displacements stay in the
    network's pixels.
    """

    encoding: EncodingInfo
    input_mode: InputMode
    downscale: int
    description: str

    @property
    def native(self) -> bool:
        kind = "rgb" if self.encoding.kind == "bgr" else self.encoding.kind
        return kind == self.input_mode

    # -- in ----------------------------------------------------------------------------------
    def chw_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the float planes :meth:`to_model` builds for a ``height`` x ``width`` frame."""
        info, mode = self.encoding, self.input_mode
        if info.kind == "bayer":
            return (4, height // 2, width // 2) if mode != "rgb" else (3, height, width)
        return (info.channels, height, width)

    def to_model(self, image: np.ndarray, device: torch.device | str = "cpu",
                 out: np.ndarray | None = None) -> torch.Tensor:
        """Camera array -> (N, C, h, w) float32 tensor in [0, 1] on ``device``.

        :meth:`upload` then :meth:`prepare`. ``out``: optional float32 buffer of
        :meth:`chw_shape` reused on the CPU (a fresh 12 MB array per megapixel frame costs more
        in page faults than the conversion itself); the returned tensor then shares its memory.
        """
        return self.prepare(self.upload(image, device), out=out)

    def upload(self, image: np.ndarray, device: torch.device | str = "cpu",
               pinned: dict | None = None) -> torch.Tensor:
        """Host side of the input: the camera's integers, as they are, on ``device``.

        No float conversion here: on a GPU that is a quarter (8-bit) of the bytes over PCIe and
        no per-pixel host work; on the CPU it is a zero-copy view. Only a Bayer frame for an RGB
        model is demosaiced first (OpenCV, host). 16-bit frames travel as int16 bits on CUDA
        (whose kernels barely support uint16) and are unwrapped by :meth:`prepare`.
        ``pinned``: a dict the caller keeps per thread, in which page-locked staging buffers are
        cached by shape, so the copy is asynchronous; the caller must synchronise the device
        before the next upload reuses the buffer (the processor does, before the model runs).
        """
        info, mode = self.encoding, self.input_mode
        check_image(image, info)
        arr = demosaic(image, info.pattern) if info.kind == "bayer" and mode == "rgb" else image
        arr = np.ascontiguousarray(arr)
        dev = torch.device(device)
        if dev.type == "cpu":
            return _as_tensor(arr)
        if arr.dtype == np.uint16:
            arr = arr.view(np.int16)
        if pinned is not None and torch.cuda.is_available():
            key = (tuple(arr.shape), arr.dtype.str)
            stage = pinned.get(key)
            if stage is None:
                stage = pinned[key] = torch.from_numpy(np.empty_like(arr)).pin_memory()
            np.copyto(stage.numpy(), arr)
            return stage.to(dev, non_blocking=True)
        return _as_tensor(arr).to(dev, non_blocking=True)

    def prepare(self, raw: torch.Tensor, out: np.ndarray | None = None,
                backend: Backend | None = None) -> torch.Tensor:
        """Device side of the input: :meth:`upload`'s integers -> (N, C, h, w) float32 in [0, 1].

        Runs where ``raw`` is: OpenCV/numpy on the CPU (fastest there, into ``out`` if given),
        torch kernels on a GPU (layout, Bayer packing, BGR flip and scaling next to the model).
        ``backend="torch"`` forces the torch kernels on a CPU tensor (tests compare the two).
        """
        info, mode = self.encoding, self.input_mode
        packed = info.kind == "bayer" and mode != "rgb"
        hwc = raw.ndim == 3
        reverse = info.kind == "bgr"
        if _backend(raw, backend) == "numpy":
            arr = raw.numpy()
            if packed:
                arr, hwc = pack_bayer(arr, info.pattern), False
            chw = _chw_float_numpy(arr, info.max_value, hwc, reverse, out)
        else:
            t = raw
            if packed:
                t, hwc = pack_bayer(t, info.pattern), False
            chw = _chw_float_from_raw(t, info.max_value, hwc, reverse)
        if mode == "mono":
            return chw.unsqueeze(1)  # each channel / Bayer plane is one batch item: (C, 1, h, w)
        if mode == "rgb" and chw.shape[0] == 1:
            return chw.expand(3, *chw.shape[1:]).unsqueeze(0)  # mono camera: replicate
        return chw.unsqueeze(0)

    # -- out ---------------------------------------------------------------------------------
    def from_model(self, out: torch.Tensor) -> np.ndarray:
        """(N, C, h, w) float tensor (any device) -> array in the camera's encoding.

        :meth:`finish` then :meth:`download`.
        """
        return self.download(self.finish(out))

    def finish(self, out: torch.Tensor, backend: Backend | None = None) -> torch.Tensor:
        """Device side of the output: model output -> the camera's layout, quantised, on its device.

        Clamp, scale, round and cast (and luminance, BGR flip, Bayer re-mosaic, interleave) run
        where the model ran, so only the final integers cross to the host. On the CPU OpenCV does
        it (several times faster than torch there); ``backend="torch"`` forces the torch kernels.
        The result is (H, W) or (H, W, C), uint8 or (16-bit encodings, on the torch path) int32.
        """
        out = out.detach().float()
        if _backend(out, backend) == "numpy":
            return torch.from_numpy(self._finish_numpy(out))
        return self._finish_torch(out)

    def download(self, t: torch.Tensor) -> np.ndarray:
        """Host side of the output: :meth:`finish`'s tensor -> numpy in the encoding's dtype."""
        return t.cpu().numpy().astype(self.encoding.dtype, copy=False)

    def _finish_numpy(self, out: torch.Tensor) -> np.ndarray:
        info, mode = self.encoding, self.input_mode
        if info.kind == "bayer":
            if mode == "rgb":
                return remosaic(_to_image(out[0], info), info.pattern)
            planes = out[0] if mode == "bayer" else out[:, 0]
            return unpack_bayer(np.stack(_planes_opencv(planes, info)), info.pattern)
        if info.kind == "mono":
            if mode == "rgb":
                w = torch.tensor(LUMA_WEIGHTS, dtype=out.dtype, device=out.device).view(3, 1, 1)
                return _to_image((out[0] * w).sum(0, keepdim=True), info)
            return _to_image(out[0], info)
        chw = out[0] if mode == "rgb" else out[:, 0]
        if info.kind == "bgr":
            chw = chw.flip(0)
        return _to_image(chw, info)

    def _finish_torch(self, out: torch.Tensor) -> torch.Tensor:
        info, mode = self.encoding, self.input_mode
        if info.kind == "bayer":
            if mode == "rgb":
                rgb = _quantise(out[0], info)
                raw = torch.empty(rgb.shape[1:], dtype=rgb.dtype, device=rgb.device)
                for plane, (r, c) in zip(PACKED_ORDER, BAYER_LAYOUTS[info.pattern], strict=True):
                    raw[r::2, c::2] = rgb[_PLANE_CHANNEL[plane], r::2, c::2]
                return raw
            planes = out[0] if mode == "bayer" else out[:, 0]
            return unpack_bayer(_quantise(planes, info), info.pattern)
        if info.kind == "mono":
            if mode == "rgb":
                w = torch.tensor(LUMA_WEIGHTS, dtype=out.dtype, device=out.device).view(3, 1, 1)
                return _quantise((out[0] * w).sum(0), info)
            return _quantise(out[0, 0], info)
        chw = out[0] if mode == "rgb" else out[:, 0]
        if info.kind == "bgr":
            chw = chw.flip(0)
        return _quantise(chw, info).permute(1, 2, 0).contiguous()


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    """Zero-copy tensor view of ``arr``, also of a read-only buffer (bag readers, frombuffer).

    The view is only ever read, so torch's warning about non-writable arrays does not apply.
    """
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def _backend(t: torch.Tensor, backend: Backend | None) -> Backend:
    """numpy/OpenCV for CPU tensors unless told otherwise, torch kernels on any other device."""
    if backend is not None:
        if backend not in ("numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
        if backend == "numpy" and t.device.type != "cpu":
            raise ValueError("the numpy backend needs a CPU tensor")
        return backend
    return "numpy" if t.device.type == "cpu" else "torch"


def _quantise(t: torch.Tensor, info: EncodingInfo) -> torch.Tensor:
    """Float in [0, 1] -> rounded, clipped integers (uint8, or int32 for 16-bit encodings)."""
    q = t.mul(info.max_value).round_().clamp_(0.0, info.max_value)
    return q.to(torch.uint8 if info.dtype == np.uint8 else torch.int32)


def _chw_float_numpy(arr: np.ndarray, max_value: float, hwc: bool, reverse: bool,
                     out: np.ndarray | None = None) -> torch.Tensor:
    """(H, W), (H, W, C) if ``hwc`` or (C, H, W) integers -> contiguous (C, H, W) float32 in [0, 1].

    ``reverse`` flips the channel order (BGR -> RGB). De-interleaves with OpenCV and scales with
    numpy, single-threaded: on a small, busy CPU this beats torch's threaded cast + permute
    several times over.
    """
    planes = cv2.split(arr) if hwc else [arr] if arr.ndim == 2 else list(arr)
    if reverse:
        planes = planes[::-1]
    shape = (len(planes), *planes[0].shape)
    if out is None or out.shape != shape or out.dtype != np.float32:
        out = np.empty(shape, np.float32)
    for i, p in enumerate(planes):
        np.multiply(p, np.float32(1.0 / max_value), out=out[i])
    return torch.from_numpy(out)


def _chw_float_from_raw(t: torch.Tensor, max_value: float, hwc: bool, reverse: bool) -> torch.Tensor:
    """The torch twin of :func:`_chw_float_numpy` on an uploaded integer tensor (any device)."""
    if t.dtype == torch.int16:  # 16-bit frames travel as int16 bits (see Conversion.upload)
        t = t.to(torch.int32) & 0xFFFF
    t = t.permute(2, 0, 1) if hwc else t.unsqueeze(0) if t.ndim == 2 else t
    if reverse:
        t = t.flip(0)
    return t.to(torch.float32).mul_(1.0 / max_value).contiguous()


def _chw_float_torch(arr: np.ndarray, max_value: float, device: torch.device | str, hwc: bool,
                     reverse: bool) -> torch.Tensor:
    """Upload ``arr`` as integers (1/4 of the float bytes) and lay out and scale on ``device``."""
    if arr.dtype == np.uint16:
        arr = np.ascontiguousarray(arr).view(np.int16)
    raw = torch.from_numpy(np.ascontiguousarray(arr)).to(device, non_blocking=True)
    return _chw_float_from_raw(raw, max_value, hwc, reverse)


def _planes_torch(chw: torch.Tensor, info: EncodingInfo) -> list[np.ndarray]:
    # Quantise on the GPU: a quarter of the bytes to download.
    return list(_quantise(chw, info).cpu().numpy().astype(info.dtype, copy=False))


def _planes_opencv(chw: torch.Tensor, info: EncodingInfo) -> list[np.ndarray]:
    arr = np.ascontiguousarray(chw.numpy())
    if info.dtype == np.uint8:
        # OpenCV's saturating cast (after clipping negatives) is ~10x faster than numpy here.
        return [cv2.convertScaleAbs(cv2.max(c, 0.0), alpha=info.max_value) for c in arr]
    return list(np.clip(np.rint(arr * info.max_value), 0, info.max_value).astype(info.dtype))


def _to_image(chw: torch.Tensor, info: EncodingInfo) -> np.ndarray:
    """(C, h, w) float -> (h, w) for C == 1, else (h, w, C) interleaved, in the encoding's dtype."""
    planes = _planes_opencv(chw, info)
    if len(planes) == 1:
        return planes[0]
    if planes[0].dtype == np.uint8:
        return cv2.merge(planes)
    return np.ascontiguousarray(np.stack(planes, axis=-1))


def model_channels(mode: InputMode) -> int:
    return {"rgb": 3, "mono": 1, "bayer": 4}[mode]


def plan_conversion(encoding: str, input_mode: InputMode) -> Conversion:
    """Choose how ``encoding`` frames reach a model with ``input_mode`` (raises if impossible)."""
    info = encoding_info(encoding)
    if input_mode not in ("rgb", "mono", "bayer"):
        raise ValueError(f"unknown model input mode {input_mode!r}")
    kind = "rgb" if info.kind == "bgr" else info.kind
    if input_mode == "bayer" and kind != "bayer":
        raise UnsupportedConversionError(
            f"a Bayer-input model cannot process {encoding} images (it needs a raw mosaic); "
            "use an rgb or mono model")
    downscale = 2 if kind == "bayer" and input_mode in ("bayer", "mono") else 1
    descriptions = {
        ("mono", "rgb"): "channel replicated to RGB in, BT.601 luminance out",
        ("rgb", "mono"): "each colour channel deblurred as a separate mono image",
        ("bayer", "rgb"): "demosaiced (OpenCV bilinear) in, re-mosaiced out",
        ("bayer", "mono"): "each of the 4 Bayer planes deblurred as a mono image at half resolution",
        ("bayer", "bayer"): "packed into 4 half-resolution planes (Gr, R, Gb, B)",
    }
    desc = descriptions.get((kind, input_mode), "native")
    return Conversion(info, input_mode, downscale, f"{encoding} -> {input_mode} model: {desc}")
