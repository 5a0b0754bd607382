"""Camera orientation over time from a dense gyro trace, queryable at arbitrary instants.

The blur renderer needs the rotation between the reference instant of the sharp source image and
*any* sub-exposure instant of *any* row (rolling shutter), and the inverse maps for every row of
the target. ``frame_motion`` answers "rotation from a row's exposure centre to its samples", which
does not cover the reference-to-row-centre part, so the renderer integrates the clean gyro once
with the same integrator (:func:`eggnet_ros.motion.orientation_track`) and composes rotations
from it. Using the motion package's integrator keeps rendered streaks and network MGVs
consistent by construction.

Convention (as in ``eggnet_ros.motion.trajectory``): ``omega`` is the body rate in the camera
optical frame, ``dC/dt = C [omega]x`` with ``C`` camera-to-world. A direction with camera
coordinates ``d_a`` at time ``a`` has coordinates ``d_b = C(b)^T C(a) d_a`` at time ``b``; its
pixel moves by the homography ``K C(b)^T C(a) K^-1``.
"""

from __future__ import annotations

import numpy as np

from eggnet_ros.motion import ImuSamples, exp_so3, orientation_track


class RotationTrack:
    """Orientations ``C(t)`` (relative to the first sample) over the span of a gyro trace."""

    def __init__(self, imu: ImuSamples) -> None:
        if len(imu) < 2:
            raise ValueError("a rotation track needs at least two gyro samples")
        self.imu = imu
        self.t0, self.t1 = float(imu.t[0]), float(imu.t[-1])
        self._grid, self._q = orientation_track(imu, self.t0, self.t1)

    def orientation(self, times: np.ndarray) -> np.ndarray:
        """``C(t)`` for times (...) -> (..., 3, 3): one partial midpoint step from the last knot."""
        times = np.asarray(times, dtype=np.float64)
        if np.any(times < self.t0 - 1e-12) or np.any(times > self.t1 + 1e-12):
            raise ValueError(
                f"times [{times.min():.6f}, {times.max():.6f}] outside the gyro span "
                f"[{self.t0:.6f}, {self.t1:.6f}]"
            )
        flat = times.reshape(-1)
        k = np.clip(np.searchsorted(self._grid, flat, side="right") - 1, 0, len(self._grid) - 1)
        h = flat - self._grid[k]
        rate = self.imu.interpolate(self._grid[k] + 0.5 * h)
        return (self._q[k] @ exp_so3(rate * h[:, None])).reshape(*times.shape, 3, 3)

    def relative(self, t_from: np.ndarray | float, t_to: np.ndarray | float) -> np.ndarray:
        """``C(t_to)^T C(t_from)``: camera coords at ``t_from`` -> coords at ``t_to`` (broadcast)."""
        t_from, t_to = np.broadcast_arrays(np.asarray(t_from, np.float64), np.asarray(t_to, np.float64))
        return np.swapaxes(self.orientation(t_to), -1, -2) @ self.orientation(t_from)
