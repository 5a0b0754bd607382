"""Gyroscope samples as arrays, and the validation that makes them safe to integrate.

Sensor drivers and bag files deliver samples that are occasionally non-finite, duplicated (the
same message twice) or out of order (multiple queues, clock jumps). Integrating such a stream
silently gives wrong rotations, so everything downstream works on :class:`ImuSamples`, whose
constructor guarantees sorted, finite, strictly increasing stamps; :func:`validate_imu` turns raw
arrays into one and reports what it had to fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

_LOG = logging.getLogger(__name__)


def _frozen_array(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, order="C", copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class ImuSamples:
    """Angular velocity samples: ``t`` (N,) seconds in the IMU clock, ``omega`` (N, 3) rad/s xyz.

    Invariants (checked on construction, a ``ValueError`` otherwise): finite values, strictly
    increasing ``t``. The arrays are stored read-only float64 so a buffer shared between threads
    (node callbacks) cannot be modified behind a consumer's back. ``omega`` is in whatever frame
    the producer used; :meth:`rotated` maps it into the camera optical frame.
    """

    t: np.ndarray
    omega: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        omega = np.asarray(self.omega, dtype=np.float64)
        if omega.ndim != 2 or omega.shape[1] != 3 or omega.shape[0] != t.shape[0]:
            raise ValueError(f"omega must have shape ({t.shape[0]}, 3), got {omega.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(omega))):
            raise ValueError("IMU samples must be finite; clean them with validate_imu()")
        if t.size > 1 and np.any(np.diff(t) <= 0):
            raise ValueError("IMU stamps must be strictly increasing; clean them with validate_imu()")
        object.__setattr__(self, "t", _frozen_array(t))
        object.__setattr__(self, "omega", _frozen_array(omega))

    def __len__(self) -> int:
        return int(self.t.shape[0])

    def rotated(self, rotation_cam_imu: np.ndarray) -> ImuSamples:
        """Samples expressed in another frame: ``omega_cam = R @ omega_imu`` for each sample.

        ``rotation_cam_imu`` may be a (3, 3) matrix or 9 row-major numbers (as in MotionConfig).
        A rigid mount only rotates the rate vector; the lever arm does not change angular rate.
        """
        R = np.asarray(rotation_cam_imu, dtype=np.float64).reshape(3, 3)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
            raise ValueError(f"rotation_cam_imu must be orthonormal, got {R.tolist()}")
        if np.linalg.det(R) < 0:
            # Between two right-handed frames the mapping is always a proper rotation. Published
            # phone calibrations are often reflections (the SHIELD data's bare x/y swap) because
            # their authors' rotation sign convention differs from ours; the proper matrix is
            # then usually the negated one, which the realdata test confirms for the SHIELD.
            raise ValueError(
                "rotation_cam_imu has determinant -1 (a reflection, e.g. a bare axis swap); "
                "between right-handed frames it must be a proper rotation: negate one axis or "
                "the whole matrix, and check the sign against image motion"
            )
        return ImuSamples(self.t, self.omega @ R.T)

    def window(self, t0: float, t1: float, margin: int = 1) -> ImuSamples:
        """The samples inside ``[t0, t1]`` plus ``margin`` neighbours on each side.

        Neighbours are counted from the last stamp ``<= t0`` and the first stamp ``>= t1``, so
        with ``margin=1`` the result brackets ``t0`` and ``t1`` (when the full stream does) and
        linear interpolation at the bounds gives the same values as on the full stream.
        """
        if margin < 0:
            raise ValueError("margin must be >= 0")
        i0 = max(int(np.searchsorted(self.t, t0, side="right")) - margin, 0)
        i1 = min(int(np.searchsorted(self.t, t1, side="left")) + margin, len(self))
        return ImuSamples(self.t[i0:i1], self.omega[i0:i1])

    def covers(self, t0: float, t1: float) -> bool:
        """Whether ``[t0, t1]`` lies within the first and last stamps (no extrapolation needed)."""
        return len(self) >= 2 and bool(self.t[0] <= t0) and bool(self.t[-1] >= t1)

    def max_gap(self, t0: float, t1: float) -> float:
        """The largest sample spacing among the intervals that touch ``[t0, t1]``.

        Returns ``inf`` when the samples do not cover the span: the missing stretch is an
        unbounded gap, and callers compare the result with a threshold.
        """
        if not self.covers(t0, t1):
            return float("inf")
        # intervals [t_k, t_k+1] with t_k+1 > t0 and t_k < t1
        k0 = max(int(np.searchsorted(self.t, t0, side="right")) - 1, 0)
        k1 = min(int(np.searchsorted(self.t, t1, side="left")), len(self) - 1)
        if k1 <= k0:
            return float(self.t[k0 + 1] - self.t[k0])
        return float(np.max(np.diff(self.t[k0 : k1 + 1])))

    def interpolate(self, times: np.ndarray) -> np.ndarray:
        """Angular velocity at ``times`` (M,) -> (M, 3), linear between samples.

        Outside the sampled span the end values are held (np.interp's rule); callers that need
        truth there must check :meth:`covers` first, as frame_motion does.
        """
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(self) == 0:
            raise ValueError("cannot interpolate an empty IMU stream")
        return np.stack([np.interp(times, self.t, self.omega[:, k]) for k in range(3)], axis=1)


@dataclass(frozen=True)
class ImuReport:
    """What :func:`validate_imu` removed or fixed, and where the stream has holes.

    ``n_out_of_order`` counts samples whose stamp is smaller than their predecessor's in arrival
    order (after non-finite rows are removed); they are kept and sorted into place.
    ``gaps`` lists ``(t_before, t_after)`` pairs whose spacing exceeds ``max_gap``.
    """

    n_input: int
    n_valid: int
    n_nonfinite: int = 0
    n_duplicates: int = 0
    n_out_of_order: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing had to be fixed and no gap was found."""
        return not (self.n_nonfinite or self.n_duplicates or self.n_out_of_order or self.gaps)


def validate_imu(t: np.ndarray, omega: np.ndarray, max_gap: float = 0.05) -> tuple[ImuSamples, ImuReport]:
    """Clean raw gyro arrays into :class:`ImuSamples` and report what was wrong.

    Order of operations (each step sees the previous one's output): rows with a non-finite stamp
    or rate are dropped; out-of-order samples are counted and stably sorted into place; samples
    repeating an earlier stamp are dropped (the first to arrive is kept, since a repeated stamp
    usually means a re-sent message, and two different rates at one instant cannot both be
    right); spacings larger than ``max_gap`` seconds are reported (not filled: whether a gap
    matters depends on whether a frame's exposure falls into it, see ``ImuSamples.max_gap``).
    """
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    omega = np.asarray(omega, dtype=np.float64)
    if omega.ndim != 2 or omega.shape != (t.shape[0], 3):
        raise ValueError(f"omega must have shape ({t.shape[0]}, 3), got {omega.shape}")
    if not max_gap > 0:
        raise ValueError("max_gap must be positive")
    n_input = int(t.shape[0])
    finite = np.isfinite(t) & np.all(np.isfinite(omega), axis=1)
    t, omega = t[finite], omega[finite]
    n_nonfinite = n_input - int(t.shape[0])
    n_out_of_order = int(np.count_nonzero(np.diff(t) < 0)) if t.size > 1 else 0
    order = np.argsort(t, kind="stable")
    t, omega = t[order], omega[order]
    keep = np.ones(t.shape[0], dtype=bool)
    if t.size > 1:
        keep[1:] = np.diff(t) > 0
    n_duplicates = int(np.count_nonzero(~keep))
    t, omega = t[keep], omega[keep]
    gaps: list[tuple[float, float]] = []
    if t.size > 1:
        big = np.flatnonzero(np.diff(t) > max_gap)
        gaps = [(float(t[k]), float(t[k + 1])) for k in big]
    report = ImuReport(
        n_input=n_input,
        n_valid=int(t.shape[0]),
        n_nonfinite=n_nonfinite,
        n_duplicates=n_duplicates,
        n_out_of_order=n_out_of_order,
        gaps=gaps,
    )
    if not report.clean:
        _LOG.debug("IMU validation: %s", report)
    return ImuSamples(t, omega), report
