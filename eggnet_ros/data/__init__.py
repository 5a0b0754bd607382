"""Synthetic gyro-image training data (numpy + OpenCV; torch only in the Dataset; never ROS).

- :mod:`.shake`: angular-velocity traces of a shaking camera (:class:`ShakeConfig`, :func:`generate_gyro`).
- :mod:`.synth`: blur synthesis per paper eq. 20 with rolling shutter, sensor noise and gyro/MGV
  corruption (:class:`SynthConfig`, :func:`synthesize_pair`, :class:`BlurPair`).
- :mod:`.sources`: sharp images (procedural dead leaves, shipped photos, user folders).
- :mod:`.dataset`: the torch ``Dataset`` synthesising pairs on the fly (imported lazily, so the
  numpy-only parts work without importing torch); :mod:`.testset`: the fixed, regenerable test set.
"""

from __future__ import annotations

from typing import Any

from .shake import ShakeConfig, generate_gyro
from .sources import ImageSource, image_sources
from .synth import BlurPair, SynthConfig, generate_pair, render_pair, sample_scene, synthesize_pair
from .testset import condition_config, fixed_test_set, observe_condition

__all__ = [
    "BlurPair",
    "ImageSource",
    "ShakeConfig",
    "SynthConfig",
    "SyntheticDeblurDataset",
    "condition_config",
    "fixed_test_set",
    "generate_gyro",
    "generate_pair",
    "image_sources",
    "observe_condition",
    "render_pair",
    "sample_scene",
    "synthesize_pair",
]


def __getattr__(name: str) -> Any:
    # The Dataset needs torch; importing it lazily keeps `import eggnet_ros.data` torch-free.
    if name == "SyntheticDeblurDataset":
        from .dataset import SyntheticDeblurDataset

        return SyntheticDeblurDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
