"""Resolve ``ProcessorConfig.model`` (a path or a shipped model name) to a weights file.

Users write ``model: eggnet_lite`` in the YAML and expect it to work both from a source checkout
and from a colcon install, where the weights live in ``share/eggnet_ros/models``. A missing model
is a start-up error that lists every place that was searched, so the fix is obvious.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

_LOG = logging.getLogger(__name__)

PACKAGE = "eggnet_ros"
WEIGHTS_SUFFIX = ".safetensors"
#: Extra model folders (os.pathsep-separated), searched first; the model package honours it too.
MODELS_DIR_ENV = "EGGNET_MODELS_DIR"


#: ``model: auto``: the first shipped model found, per device type. The paper-width model runs
#: 19 ms/frame at 1024² on an H100 (bf16, Triton) but ~5.6 s at 512² on a 2-core CPU, where
#: only the lite model is usable live.
AUTO_MODEL = "auto"
AUTO_MODELS: dict[str, tuple[str, ...]] = {"cuda": ("eggnet_full", "eggnet_lite"), "cpu": ("eggnet_lite",)}


class ModelNotFoundError(FileNotFoundError):
    """No weights file matches the configured model name/path."""


def model_dirs() -> list[Path]:
    """Folders searched for model names: $EGGNET_MODELS_DIR, the source tree's ``models/``, the install's."""
    dirs = [Path(d) for d in os.environ.get(MODELS_DIR_ENV, "").split(os.pathsep) if d]
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    try:  # only present on ROS installs (or with the PyPI ament_index wheel)
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        # the PyPI ament_index wheel raises OSError when AMENT_PREFIX_PATH is unset (no ROS install)
        with contextlib.suppress(PackageNotFoundError, OSError):
            dirs.append(Path(get_package_share_directory(PACKAGE)) / "models")
    except ImportError:
        pass
    return dirs


def auto_model_name(device_type: str) -> str:
    """The shipped model that ``model: auto`` means on ``device_type`` (first one present)."""
    names = AUTO_MODELS.get(device_type, AUTO_MODELS["cpu"])
    for name in names:
        with contextlib.suppress(ModelNotFoundError):
            resolve_model_path(name)
            return name
    raise ModelNotFoundError(
        f"model 'auto' on {device_type}: none of {', '.join(names)} is installed; searched: "
        + ", ".join(str(d) for d in model_dirs())
    )


def resolve_model_path(model: str) -> Path:
    """``model`` as given if it is a file; else ``<dir>/<model>[.safetensors]`` in :func:`model_dirs`."""
    if not model:
        raise ModelNotFoundError("no model configured (parameter 'model' is empty)")
    candidates: list[Path] = []
    given = Path(model).expanduser()
    candidates.append(given)
    if given.suffix != WEIGHTS_SUFFIX:
        candidates.append(given.with_name(given.name + WEIGHTS_SUFFIX))
    if not given.is_absolute():
        for d in model_dirs():
            candidates.append(d / given)
            if given.suffix != WEIGHTS_SUFFIX:
                candidates.append(d / (given.name + WEIGHTS_SUFFIX))
    for c in candidates:
        if c.is_file():
            return c
    searched = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise ModelNotFoundError(f"model {model!r} not found; searched: {searched}")
