"""Checks of user-supplied settings shared by the node's parameters and the CLIs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Largest |R R^T - I| accepted for a rotation typed in by hand (4 decimals are common).
ROTATION_TOLERANCE = 1e-3


def rotation_problem(values: Sequence[float]) -> str | None:
    """Why ``values`` (9 numbers, row-major) is not a proper rotation matrix, or None if it is.

    A bare axis swap (determinant -1) is a reflection: it cannot map one right-handed frame to
    another, and accepting it would mirror the estimated motion.
    """
    if len(values) != 9:
        return f"needs 9 elements (row-major 3x3), got {len(values)}"
    R = np.asarray(values, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(R)):
        return "contains non-finite values"
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    det = float(np.linalg.det(R))
    if err > ROTATION_TOLERANCE or det < 0:
        return (f"is not a rotation matrix (|R R^T - I| = {err:.2e}, det = {det:.3f}); an axis swap has "
                "det -1: negate one axis")
    return None
