"""EggNet and its deformable convolution (torch only, never ROS).

Public API (see CONTRACTS.md): the network (:class:`EggNet`, :class:`EggNetConfig`), the
deformable convolution with interchangeable backends (:func:`deform_conv2d`,
:class:`DeformConv2d`, :func:`available_backends`, :func:`register_backend`), weights I/O
(:func:`save_weights`, :func:`load_model`, :class:`ModelCard`, :class:`WeightsError`) and Bayer
packing (:func:`pack_bayer`, :func:`unpack_bayer`).
"""

from .bayer import BAYER_LAYOUTS, PACKED_ORDER, pack_bayer, unpack_bayer
from .blocks import GTM, IGTM, DeformBlock, PlainBlock, ResBlock
from .config import INPUT_MODE_CHANNELS, VARIANTS, EggNetConfig
from .deform import (
    DeformConv2d,
    available_backends,
    deform_conv2d,
    deform_conv2d_pytorch,
    register_backend,
    resolve_backend,
    unregister_backend,
)
from .eggnet import SIZE_MULTIPLE, EggNet
from .weights import (
    ModelCard,
    WeightsError,
    load_model,
    read_card,
    resolve_model_path,
    save_weights,
    unwrap_model,
)

__all__ = [
    "BAYER_LAYOUTS",
    "GTM",
    "IGTM",
    "INPUT_MODE_CHANNELS",
    "PACKED_ORDER",
    "SIZE_MULTIPLE",
    "VARIANTS",
    "DeformBlock",
    "DeformConv2d",
    "EggNet",
    "EggNetConfig",
    "ModelCard",
    "PlainBlock",
    "ResBlock",
    "WeightsError",
    "available_backends",
    "deform_conv2d",
    "deform_conv2d_pytorch",
    "load_model",
    "pack_bayer",
    "read_card",
    "register_backend",
    "resolve_backend",
    "resolve_model_path",
    "save_weights",
    "unpack_bayer",
    "unregister_backend",
    "unwrap_model",
]
