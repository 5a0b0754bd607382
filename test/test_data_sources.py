"""Image sources: procedural dead leaves, shipped photos, folders, spec parsing, splits."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eggnet_ros.data.deadleaves import dead_leaves
from eggnet_ros.data.sources import (
    DeadLeavesSource,
    PhotoSource,
    builtin_photo_paths,
    image_sources,
)


def test_dead_leaves_have_texture_and_range() -> None:
    image = dead_leaves(np.random.default_rng(0), 96, 80)
    assert image.shape == (96, 80, 3) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    # high-frequency content for blur to destroy: strong Laplacian response (OpenCV as reference)
    lap = cv2.Laplacian(image.mean(axis=2), cv2.CV_32F)
    assert np.mean(np.abs(lap)) > 0.02
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000  # not a few flat colours
    np.testing.assert_array_equal(image, dead_leaves(np.random.default_rng(0), 96, 80))
    assert not np.array_equal(image, dead_leaves(np.random.default_rng(1), 96, 80))


def test_builtin_photos_split_by_file_disjointly() -> None:
    paths = builtin_photo_paths()
    assert len(paths) >= 4
    train = PhotoSource(paths, "train")
    test = PhotoSource(paths, "test")
    assert train.files and test.files
    assert not set(train.files) & set(test.files)
    assert set(train.files) | set(test.files) == {p.resolve() for p in paths}


@pytest.mark.parametrize("size", [(40, 56), (700, 650)])  # small crop, and larger than any photo
def test_photo_crops_have_requested_size(size: tuple[int, int]) -> None:
    source = PhotoSource(builtin_photo_paths(), "train")
    rng = np.random.default_rng(2)
    for _ in range(3):
        crop = source.sample(rng, *size)
        assert crop.shape == (*size, 3) and crop.dtype == np.float32
        assert crop.min() >= 0.0 and crop.max() <= 1.0


def test_folder_source_and_spec_weights(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(5):
        image = (rng.uniform(size=(50, 60, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"im{i}.png"), image)
    gray16 = (rng.uniform(size=(40, 40)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    mix = image_sources(f"deadleaves:0,{tmp_path}:1", "train")
    assert [s.name for s in mix.sources] == ["deadleaves", tmp_path.name]
    np.testing.assert_allclose(mix.weights, [0.0, 1.0])
    sample = mix.sample(np.random.default_rng(1), 30, 30)
    assert sample.shape == (30, 30, 3)
    test_files = set(image_sources(str(tmp_path), "test").sources[0].files)
    train_files = set(mix.sources[1].files)
    assert test_files and not test_files & train_files


def test_single_image_folder_splits_by_region(tmp_path) -> None:
    image = np.zeros((100, 40, 3), np.uint8)
    image[75:] = 255  # the bottom quarter (test region) is white, the rest black
    cv2.imwrite(str(tmp_path / "only.png"), image)
    train = PhotoSource([tmp_path / "only.png"], "train", scale_range=(1.0, 1.0))
    test = PhotoSource([tmp_path / "only.png"], "test", scale_range=(1.0, 1.0))
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert train.sample(rng, 20, 20).max() == 0.0
        assert test.sample(rng, 20, 20).min() == 1.0


def test_builtin_spec_and_errors(tmp_path) -> None:
    mix = image_sources("builtin")
    assert sorted(s.name for s in mix.sources) == ["deadleaves", "photos"]
    assert isinstance(mix.sources[0], DeadLeavesSource)
    with pytest.raises(FileNotFoundError):
        image_sources(str(tmp_path / "missing"))
    with pytest.raises(ValueError):
        image_sources(str(tmp_path))  # exists but holds no images
    with pytest.raises(ValueError):
        image_sources("builtin", split="validation")
