"""Vectorised SO(3) exponential and logarithm maps (Rodrigues), float64.

Small and dependency-free so the geometry runs where scipy is absent; tests check it against
``scipy.spatial.transform.Rotation``.
"""

from __future__ import annotations

import numpy as np


def skew(v: np.ndarray) -> np.ndarray:
    """``[v]x`` for v (..., 3) -> (..., 3, 3), so that ``skew(a) @ b == cross(a, b)``."""
    v = np.asarray(v, dtype=np.float64)
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)], axis=-2)


def exp_so3(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of rotation vectors (..., 3) (axis * angle, radians).

    Uses Taylor series of sin(t)/t and (1-cos t)/t^2 below 1e-4 rad, where the closed form loses
    precision to cancellation.
    """
    v = np.asarray(rotvec, dtype=np.float64)
    theta2 = np.sum(v * v, axis=-1)
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    K = skew(v)
    return np.eye(3) + a[..., None, None] * K + b[..., None, None] * (K @ K)


def log_so3(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) of rotation matrices (..., 3, 3), angles in [0, pi).

    Angles close to pi are handled through the symmetric part, which is accurate there; the
    motion package only meets small angles (a frame's worth of shake), but the map is total.
    """
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((np.trace(R, axis1=-2, axis2=-1) - 1.0) * 0.5, -1.0, 1.0)
    theta = np.arccos(cos)
    w = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = np.sin(theta)
    small = theta < 1e-4
    scale = np.where(small, 0.5 + theta * theta / 12.0, theta / (2.0 * np.where(small, 1.0, sin)))
    out = w * scale[..., None]
    near_pi = theta > np.pi - 1e-3
    if np.any(near_pi):
        Rp = R[near_pi]
        S = 0.5 * (Rp + np.swapaxes(Rp, -1, -2)) - np.cos(theta[near_pi])[:, None, None] * np.eye(3)
        # S = (1 - cos) n n^T: take the best-conditioned column for the axis, sign from w.
        diag = np.diagonal(S, axis1=-2, axis2=-1)
        k = np.argmax(diag, axis=-1)
        n = S[np.arange(len(k)), :, k]
        n /= np.linalg.norm(n, axis=-1, keepdims=True)
        sign = np.where(np.sum(n * w[near_pi], axis=-1) < 0, -1.0, 1.0)
        out[near_pi] = n * (sign * theta[near_pi])[:, None]
    return out
