"""Classical gyro-driven baseline: Richardson-Lucy with the eq. 20 forward operator.

The blur model of paper eq. 20 is linear in the sharp image: ``B = A S`` with
``A S = 1/n sum_i warp(S, H_i)``, where ``H_i = K R_i K^-1`` come from the *observed* gyro (the
same measurements the networks see). Richardson-Lucy iterates ``S <- S * A^T(B / A S) / A^T 1``
in linear light. The adjoint of a homography warp is the inverse warp up to its Jacobian, which
is ~1 for the small rotations of camera shake; we use that standard approximation. Rolling
shutter is handled with per-row maps (each row's own rotations).

This is the "non-learned method that uses the gyro" row of the tables: it shows how much of the
gain comes from knowing the motion at all, and how fragile deconvolution is to gyro errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from eggnet_ros.config import MotionConfig
from eggnet_ros.data.sensor import linear_to_srgb, srgb_to_linear
from eggnet_ros.motion import CameraModel, FrameMotion, frame_motion

#: Sub-exposure samples of the operator: dense enough that the streak is continuous.
RL_SAMPLES = 31


class HomographyBlurOperator:
    """``A`` (forward blur) and ``A^T`` (approximate adjoint) for one frame's motion."""

    def __init__(self, motion: FrameMotion, camera: CameraModel) -> None:
        self.width, self.height = camera.width, camera.height
        K, Kinv = camera.K, np.linalg.inv(camera.K)
        if motion.is_global_shutter:
            self.forward_maps = None
            self.homographies = K @ motion.rotations[0] @ Kinv  # (n, 3, 3)
        else:
            rows = (np.arange(self.height) + 0.5) / self.height
            rot = motion.rotations_at_rows(rows)  # (H, n, 3, 3)
            H = K @ rot @ Kinv
            self.forward_maps = self._maps(np.linalg.inv(H))  # dst(p) = src(H^-1 p)
            self.adjoint_maps = self._maps(H)
            self.homographies = None

    def _maps(self, per_row: np.ndarray) -> list[np.ndarray]:
        """cv2.remap maps (H, W, 2) per sample for row-dependent homographies (H, n, 3, 3)."""
        u = np.arange(self.width, dtype=np.float64)
        maps = []
        for i in range(per_row.shape[1]):
            M = per_row[:, i]  # (H, 3, 3)
            v = np.arange(self.height, dtype=np.float64)[:, None]
            x = M[:, 0, 0, None] * u + M[:, 0, 1, None] * v + M[:, 0, 2, None]
            y = M[:, 1, 0, None] * u + M[:, 1, 1, None] * v + M[:, 1, 2, None]
            w = M[:, 2, 0, None] * u + M[:, 2, 1, None] * v + M[:, 2, 2, None]
            maps.append(np.stack([x / w, y / w], axis=-1).astype(np.float32))
        return maps

    def _apply(self, image: np.ndarray, adjoint: bool) -> np.ndarray:
        acc = np.zeros_like(image, dtype=np.float32)
        size = (self.width, self.height)
        if self.homographies is not None:
            for H in self.homographies:
                M = np.linalg.inv(H) if adjoint else H
                acc += cv2.warpPerspective(
                    image, M, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                )
            return acc / len(self.homographies)
        maps = self.adjoint_maps if adjoint else self.forward_maps
        for m in maps:
            acc += cv2.remap(image, m, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return acc / len(maps)

    def forward(self, image: np.ndarray) -> np.ndarray:
        return self._apply(image, adjoint=False)

    def adjoint(self, image: np.ndarray) -> np.ndarray:
        return self._apply(image, adjoint=True)


def richardson_lucy(
    blurred_linear: np.ndarray, operator: HomographyBlurOperator, iterations: int
) -> np.ndarray:
    """Plain RL (non-negative, flux preserving); early stopping by ``iterations`` is the regulariser."""
    eps = 1e-4
    estimate = np.clip(blurred_linear, eps, None).astype(np.float32)
    norm = np.maximum(operator.adjoint(np.ones_like(estimate)), eps)
    for _ in range(iterations):
        ratio = blurred_linear / np.maximum(operator.forward(estimate), eps)
        estimate = estimate * operator.adjoint(ratio) / norm
        np.clip(estimate, 0.0, 1.5, out=estimate)
    return estimate


def deblur_pair_rl(pair: Any, iterations: int = 30) -> np.ndarray:
    """RL restoration of one synthetic pair from its observed gyro; returns sRGB (H, W, C)."""
    height = pair.blurred.shape[0]
    config = MotionConfig(timing=pair.timing, n_samples=RL_SAMPLES, max_imu_gap=1.0)
    motion = frame_motion(pair.imu, pair.stamp, height, config)
    operator = HomographyBlurOperator(motion, pair.camera)
    linear = srgb_to_linear(np.clip(pair.blurred, 0.0, 1.0))
    restored = richardson_lucy(linear, operator, iterations)
    return linear_to_srgb(restored).reshape(pair.blurred.shape)


def rl_restorer(iterations: int) -> Callable[[Any], np.ndarray]:
    return lambda pair: deblur_pair_rl(pair, iterations)
