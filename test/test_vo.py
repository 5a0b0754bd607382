"""The VO feature-survival metric on sequences whose answer is known."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from eggnet_ros.bag.vo import VoConfig, evaluate_sequence, to_gray8, track_pair

IMAGES = Path(__file__).resolve().parents[1] / "eggnet_ros" / "data" / "images"
K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(IMAGES / "astronaut.png")), cv2.COLOR_BGR2RGB)


def _shifted_sequence(photo: np.ndarray, n: int = 5) -> list[np.ndarray]:
    # A camera panning over a photo: integer shifts, exact overlap between frames.
    return [photo[20 + 2 * i : 260 + 2 * i, 30 + 3 * i : 350 + 3 * i].copy() for i in range(n)]


def _motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    k = cv2.warpAffine(k, rot, (length, length))
    return cv2.filter2D(image, -1, k / k.sum())


def test_sharp_sequence_tracks_more_than_its_blurred_copy(photo: np.ndarray) -> None:
    sharp = _shifted_sequence(photo)
    blurred = [_motion_blur(f, 15, 37 * i) for i, f in enumerate(sharp)]
    s, b = evaluate_sequence(sharp, K), evaluate_sequence(blurred, K)
    assert len(s.pairs) == len(b.pairs) == 4
    assert s.mean_tracked > 2 * b.mean_tracked
    assert s.mean_inliers > 2 * b.mean_inliers


def test_pure_translation_keeps_nearly_every_track(photo: np.ndarray) -> None:
    frames = _shifted_sequence(photo, 3)
    stats = evaluate_sequence(frames, K)
    for p in stats.pairs:
        assert p.detected > 100
        assert p.tracked > 0.9 * p.detected
    assert stats.inlier_ratio > 0.95


def test_unrelated_images_track_almost_nothing() -> None:
    a = cv2.imread(str(IMAGES / "astronaut.png"), cv2.IMREAD_GRAYSCALE)[:240, :320]
    b = cv2.imread(str(IMAGES / "brick.png"), cv2.IMREAD_GRAYSCALE)[:240, :320]
    p = track_pair(a, b, K, VoConfig())
    assert p.detected > 100
    assert p.tracked < 0.2 * p.detected


def test_to_gray_matches_opencv_for_rgb_and_bgr(photo: np.ndarray) -> None:
    np.testing.assert_array_equal(to_gray8(photo, "rgb8"), cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    bgr = photo[..., ::-1].copy()
    np.testing.assert_array_equal(to_gray8(bgr, "bgr8"), cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    sixteen = photo[..., 0].astype(np.uint16) * 257
    np.testing.assert_array_equal(to_gray8(sixteen, "mono16"), photo[..., 0])
