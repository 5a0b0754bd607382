"""Sharp image sources for the synthesis: procedural dead leaves, shipped photos, user folders.

A source returns random sharp crops ``(H, W, 3)`` float32 sRGB in [0, 1] of any requested size
(the synthesis asks for the output size plus the blur margin). Train/test separation:

- dead leaves are procedural, so the split is by random stream: the dataset seeds train and test
  items from disjoint seed sequences;
- photos are split by file: a fixed, name-hash-ordered subset (``test_fraction``, at least one
  file) is test-only, so no test crop ever overlaps a training crop. A folder with a single image
  is split by region instead (top 3/4 train, bottom 1/4 test).

Built-in sources need no download: ``deadleaves`` (numpy + OpenCV only) and ``photos`` (the CC0 /
public-domain images shipped in ``eggnet_ros/data/images``, identical on every machine, so the
fixed test set is too). ``samples`` adds the sample photos of matplotlib and scikit-image when
those are installed (varies by machine: training only).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from eggnet_ros.data.deadleaves import dead_leaves

_LOG = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
BUILTIN_IMAGE_DIR = Path(__file__).resolve().parent / "images"
#: Photos among the matplotlib / scikit-image sample data (others are synthetic or blurred).
_MATPLOTLIB_SAMPLES = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
_SKIMAGE_SAMPLES = ("coins.png", "moon.png", "page.png", "text.png", "motorcycle_left.png", "ihc.png")
SPLITS = ("train", "test")


class ImageSource(Protocol):
    """Anything that returns random sharp crops."""

    name: str

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """A sharp (height, width, 3) float32 sRGB image in [0, 1]."""
        ...


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


class DeadLeavesSource:
    """Procedural textured dead-leaves images (see :mod:`eggnet_ros.data.deadleaves`)."""

    name = "deadleaves"

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        return dead_leaves(rng, height, width)


#: Photos with a larger side are downscaled on load: bounded memory per worker (the decode cache
#: holds 16), and per-pixel sharpness improves (most camera photos are soft at full size).
MAX_PHOTO_SIDE = 2048


@functools.lru_cache(maxsize=16)
def _load_image(path: str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8/uint16 RGB (cached: sources reuse files)."""
    image = cv2.imread(path, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if image is None:
        raise OSError(f"cannot decode image {path}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    scale = MAX_PHOTO_SIDE / max(image.shape[:2])
    if scale < 1.0:
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    image.setflags(write=False)
    return image


def _name_hash(path: Path) -> str:
    return hashlib.sha256(path.name.encode()).hexdigest()


class PhotoSource:
    """Random crops of photos: random scale, crop, flips and transposition.

    ``scale_range`` is the resize factor applied before cropping (< 1 shrinks, which also
    sharpens slightly soft photos); it is raised where needed so the crop fits, i.e. a request
    larger than the photo upsamples it.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        split: str = "train",
        test_fraction: float = 0.2,
        scale_range: tuple[float, float] = (0.5, 1.0),
        name: str = "photos",
    ) -> None:
        _check_split(split)
        files = sorted({Path(p).resolve() for p in paths}, key=_name_hash)
        if not files:
            raise ValueError(f"photo source {name!r} has no images")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError("test_fraction must be in (0, 1)")
        self.name = name
        self.scale_range = scale_range
        self.region: tuple[float, float] = (0.0, 1.0)  # fraction of rows used
        if len(files) == 1:
            self.files = files
            self.region = (0.0, 0.75) if split == "train" else (0.75, 1.0)
        else:
            n_test = max(1, math.ceil(test_fraction * len(files)))
            self.files = files[:n_test] if split == "test" else files[n_test:]
        _LOG.debug("%s/%s: %d files", name, split, len(self.files))

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        image = _load_image(str(self.files[int(rng.integers(len(self.files)))]))
        r0, r1 = (round(f * image.shape[0]) for f in self.region)
        image = image[r0:r1]
        transpose = rng.uniform() < 0.5
        h, w = (width, height) if transpose else (height, width)
        ih, iw = image.shape[:2]
        scale = max(rng.uniform(*self.scale_range), h / ih, w / iw)
        # crop the source region that maps to the output, then resize only that region
        ch, cw = min(ih, math.ceil(h / scale)), min(iw, math.ceil(w / scale))
        y0 = int(rng.integers(0, ih - ch + 1))
        x0 = int(rng.integers(0, iw - cw + 1))
        crop = image[y0 : y0 + ch, x0 : x0 + cw]
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (w, h), interpolation=interp) if (ch, cw) != (h, w) else crop
        out = crop.astype(np.float32) * np.float32(1.0 / np.iinfo(crop.dtype).max)
        if transpose:
            out = out.transpose(1, 0, 2)
        if rng.uniform() < 0.5:
            out = out[:, ::-1]
        if rng.uniform() < 0.5:
            out = out[::-1]
        return np.ascontiguousarray(np.clip(out, 0.0, 1.0))


class MixtureSource:
    """Picks one of several sources per sample, with the given weights."""

    def __init__(self, sources: Sequence[ImageSource], weights: Sequence[float] | None = None) -> None:
        if not sources:
            raise ValueError("a mixture needs at least one source")
        w = np.ones(len(sources)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(sources),) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"bad weights {weights} for {len(sources)} sources")
        self.sources = list(sources)
        self.weights = w / w.sum()
        self.name = "+".join(s.name for s in self.sources)

    def sample(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        k = int(rng.choice(len(self.sources), p=self.weights)) if len(self.sources) > 1 else 0
        return self.sources[k].sample(rng, height, width)


def builtin_photo_paths() -> list[Path]:
    """The photos shipped with the package (identical on every machine)."""
    return sorted(p for p in BUILTIN_IMAGE_DIR.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def sample_photo_paths() -> list[Path]:
    """Sample photos of matplotlib / scikit-image when installed (never imported otherwise)."""
    import importlib.util

    found: list[Path] = []
    shipped = {p.name for p in builtin_photo_paths()}
    for package, sub, names in (
        ("matplotlib", ("mpl-data", "sample_data"), _MATPLOTLIB_SAMPLES),
        ("skimage", ("data",), _SKIMAGE_SAMPLES),
    ):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*sub)
        found += [folder / n for n in names if (folder / n).is_file() and n not in shipped]
    return found


def folder_paths(folder: str | Path) -> list[Path]:
    """All images under ``folder`` (recursive)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return paths


def image_sources(spec: str | Sequence[str] = "builtin", split: str = "train") -> MixtureSource:
    """Build a source from a spec: items joined by ``,`` (or a list), each optionally ``item:weight``.

    Items: ``deadleaves``, ``photos`` (shipped), ``samples`` (matplotlib/scikit-image photos if
    installed; skipped with a warning if none), ``builtin`` (= deadleaves + photos), or a folder
    of images. Example: ``"deadleaves:0.3,/data/sharp_frames:0.7"``.
    """
    _check_split(split)
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    sources: list[ImageSource] = []
    weights: list[float] = []
    for item in items:
        if not item:
            continue
        name, weight = item, 1.0
        head, sep, tail = item.rpartition(":")
        if sep and head and not Path(item).exists():
            with contextlib.suppress(ValueError):
                name, weight = head, float(tail)
        if name == "builtin":
            sources += [DeadLeavesSource(), PhotoSource(builtin_photo_paths(), split, name="photos")]
            weights += [weight / 2, weight / 2]
        elif name == "deadleaves":
            sources.append(DeadLeavesSource())
            weights.append(weight)
        elif name == "photos":
            sources.append(PhotoSource(builtin_photo_paths(), split, name="photos"))
            weights.append(weight)
        elif name == "samples":
            paths = sample_photo_paths()
            if not paths:
                _LOG.warning("no matplotlib / scikit-image sample photos installed; skipping 'samples'")
                continue
            sources.append(PhotoSource(paths, split, name="samples"))
            weights.append(weight)
        else:
            sources.append(PhotoSource(folder_paths(name), split, name=Path(name).name))
            weights.append(weight)
    return MixtureSource(sources, weights)
