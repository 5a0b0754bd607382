"""Downstream benefit of deblurring for visual odometry: how many features a VO front end keeps.

A typical monocular VO front end (e.g. the KLT front ends of VINS-Mono / OpenVINS) detects corners,
tracks them into the next frame with pyramidal Lucas-Kanade, rejects tracks that do not come back
under a forward-backward check, and keeps those consistent with one epipolar geometry (RANSAC on
the essential matrix). Motion blur hurts every stage: fewer corners, drifting tracks, more
outliers. Counting the survivors on blurred vs deblurred frames measures the benefit where a robot
feels it, independent of PSNR.

Notes on interpretation: for a purely rotating camera (our synthetic bags) the essential matrix
is degenerate in its translation, but correct matches still satisfy it, so the inlier fraction
still separates consistent tracks from drifting ones. ROS-free (OpenCV + numpy only).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np


@dataclass(frozen=True)
class VoConfig:
    """Front-end settings; defaults are those of common KLT-based VO front ends at VGA size."""

    detector: Literal["fast", "orb"] = "fast"
    max_features: int = 500
    fast_threshold: int = 20
    lk_window: int = 21
    lk_levels: int = 3
    #: A track survives when tracking it back lands within this many pixels of its start.
    fb_threshold_px: float = 1.0
    #: RANSAC threshold on the epipolar (Sampson) distance, in pixels.
    ransac_threshold_px: float = 1.0
    ransac_prob: float = 0.999


@dataclass(frozen=True)
class PairStats:
    """One frame-to-frame step: corners detected in the first frame, tracks kept, RANSAC inliers."""

    detected: int
    tracked: int
    inliers: int

    @property
    def inlier_ratio(self) -> float:
        return self.inliers / self.tracked if self.tracked else 0.0


@dataclass
class VoStats:
    """Per-pair statistics of a sequence and their summaries."""

    pairs: list[PairStats] = field(default_factory=list)

    @property
    def mean_detected(self) -> float:
        return float(np.mean([p.detected for p in self.pairs])) if self.pairs else 0.0

    @property
    def mean_tracked(self) -> float:
        return float(np.mean([p.tracked for p in self.pairs])) if self.pairs else 0.0

    @property
    def mean_inliers(self) -> float:
        return float(np.mean([p.inliers for p in self.pairs])) if self.pairs else 0.0

    @property
    def inlier_ratio(self) -> float:
        """Pooled over the sequence: inliers / tracked (steps with many tracks weigh more)."""
        tracked = sum(p.tracked for p in self.pairs)
        return sum(p.inliers for p in self.pairs) / tracked if tracked else 0.0

    def summary(self) -> dict[str, float]:
        return {"pairs": float(len(self.pairs)), "detected": self.mean_detected, "tracked": self.mean_tracked,
                "inliers": self.mean_inliers, "inlier_ratio": self.inlier_ratio}


def to_gray8(image: np.ndarray, encoding: str = "rgb8") -> np.ndarray:
    """Any supported image (mono, rgb/bgr, Bayer; 8 or 16 bit) -> 8-bit grey for the front end."""
    img = image
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.asarray(img, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if img.ndim == 3:
        code = cv2.COLOR_BGR2GRAY if encoding.startswith("bgr") else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(np.ascontiguousarray(img), code)
    if encoding.startswith("bayer"):
        # Grey of a mosaic: average each 2x2 cell and upsample back, which removes the CFA pattern
        # that would otherwise produce spurious corners.
        h, w = img.shape
        cell = img[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        return cv2.resize(cell.astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    return img


def detect(gray: np.ndarray, cfg: VoConfig) -> np.ndarray:
    """The ``max_features`` strongest corners as (N, 1, 2) float32 (what calcOpticalFlowPyrLK takes)."""
    if cfg.detector == "fast":
        det = cv2.FastFeatureDetector_create(threshold=cfg.fast_threshold, nonmaxSuppression=True)
    elif cfg.detector == "orb":
        det = cv2.ORB_create(nfeatures=cfg.max_features, fastThreshold=cfg.fast_threshold)
    else:
        raise ValueError(f"detector must be 'fast' or 'orb', got {cfg.detector!r}")
    keypoints = sorted(det.detect(gray, None), key=lambda k: -k.response)[: cfg.max_features]
    return np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 1, 2)


def track_pair(prev: np.ndarray, nxt: np.ndarray, K: np.ndarray, cfg: VoConfig | None = None) -> PairStats:
    """Detect in ``prev`` (grey uint8), track into ``nxt``, forward-backward check, RANSAC on E."""
    cfg = cfg or VoConfig()
    p0 = detect(prev, cfg)
    if len(p0) == 0:
        return PairStats(0, 0, 0)
    lk = {"winSize": (cfg.lk_window, cfg.lk_window), "maxLevel": cfg.lk_levels,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)}
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, p0, None, **lk)
    p0r, st2, _ = cv2.calcOpticalFlowPyrLK(nxt, prev, p1, None, **lk)
    fb = np.linalg.norm((p0 - p0r).reshape(-1, 2), axis=1)
    h, w = prev.shape[:2]
    q = p1.reshape(-1, 2)
    inside = (q[:, 0] >= 0) & (q[:, 0] < w) & (q[:, 1] >= 0) & (q[:, 1] < h)
    good = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < cfg.fb_threshold_px) & inside
    tracked = int(good.sum())
    if tracked < 5:
        return PairStats(len(p0), tracked, 0)
    a = p0.reshape(-1, 2)[good].astype(np.float64)
    b = q[good].astype(np.float64)
    E, mask = cv2.findEssentialMat(a, b, np.asarray(K, dtype=np.float64), method=cv2.RANSAC,
                                   prob=cfg.ransac_prob, threshold=cfg.ransac_threshold_px)
    inliers = int(mask.sum()) if E is not None and mask is not None else 0
    return PairStats(len(p0), tracked, inliers)


def evaluate_sequence(frames: Sequence[np.ndarray], K: np.ndarray, cfg: VoConfig | None = None,
                      encoding: str = "rgb8") -> VoStats:
    """Track every consecutive pair of ``frames`` (any supported encoding, one for all)."""
    grays = [to_gray8(f, encoding) for f in frames]
    stats = VoStats()
    for prev, nxt in itertools.pairwise(grays):
        stats.pairs.append(track_pair(prev, nxt, K, cfg))
    return stats
