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

    Rodrigues in the form ``cos(t) I + a [v]x + b v v^T`` with ``a = sin(t)/t`` and
    ``b = (1 - cos t)/t^2`` (equal to ``I + a [v]x + b [v]x^2``), written entry by entry: the
    frame integrator calls this on ~1000 small vectors per frame, where building ``[v]x`` and
    a batched matmul cost ~4x more than the arithmetic. Taylor series replace ``a`` and ``b``
    below 1e-4 rad, where the closed form loses precision to cancellation.
    """
    v = np.asarray(rotvec, dtype=np.float64)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    theta2 = x * x + y * y + z * z
    theta = np.sqrt(theta2)
    small = theta < 1e-4
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta2 / 24.0, (1.0 - np.cos(safe)) / (safe * safe))
    cos = 1.0 - b * theta2
    out = np.empty((*v.shape[:-1], 3, 3))
    bx, by = b * x, b * y
    bxy, bxz, byz = bx * y, bx * z, by * z
    ax, ay, az = a * x, a * y, a * z
    out[..., 0, 0] = bx * x + cos
    out[..., 1, 1] = by * y + cos
    out[..., 2, 2] = b * z * z + cos
    out[..., 0, 1] = bxy - az
    out[..., 1, 0] = bxy + az
    out[..., 0, 2] = bxz + ay
    out[..., 2, 0] = bxz - ay
    out[..., 1, 2] = byz - ax
    out[..., 2, 1] = byz + ax
    return out


def log_so3(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) of rotation matrices (..., 3, 3), angles in [0, pi).

    Angles close to pi are handled through the symmetric part, which is accurate there; the
    motion package only meets small angles (a frame's worth of shake), but the map is total.
    """
    R = np.asarray(R, dtype=np.float64)
    cos = np.clip((R[..., 0, 0] + R[..., 1, 1] + R[..., 2, 2] - 1.0) * 0.5, -1.0, 1.0)
    theta = np.arccos(cos)
    sin = np.sin(theta)
    small = theta < 1e-4
    scale = np.where(small, 0.5 + theta * theta / 12.0, theta / (2.0 * np.where(small, 1.0, sin)))
    w = np.empty((*R.shape[:-2], 3))  # entry by entry: no stack of three strided views
    np.subtract(R[..., 2, 1], R[..., 1, 2], out=w[..., 0])
    np.subtract(R[..., 0, 2], R[..., 2, 0], out=w[..., 1])
    np.subtract(R[..., 1, 0], R[..., 0, 1], out=w[..., 2])
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
