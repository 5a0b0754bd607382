"""A time-bounded, thread-safe gyro buffer fed one sample (or batch) at a time.

The node's IMU callback appends from the executor thread while the worker thread takes
snapshots for frames, hence the lock. Samples are kept sorted and unique, with the same rules
as :func:`eggnet_ros.motion.validate_imu` (non-finite rows dropped, duplicate stamps dropped,
late samples sorted in), so a snapshot is always a valid :class:`~eggnet_ros.motion.ImuSamples`.

A sample far older than the newest one is not jitter but the clock jumping backwards (a bag
played in a loop, a simulator reset): keeping the old samples would pair new frames with stale
motion, so the buffer is cleared and :attr:`AddResult.RESET` is returned exactly once per jump.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass

import numpy as np

from eggnet_ros.motion import ImuSamples

_LOG = logging.getLogger(__name__)


class AddResult(enum.Enum):
    """What happened to one added sample."""

    OK = "ok"
    NONFINITE = "nonfinite"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"  # kept, sorted into place
    TOO_OLD = "too_old"  # older than the buffer's horizon: useless, dropped
    RESET = "reset"  # time jumped backwards: buffer cleared, sample kept as the first of a new run


@dataclass
class ImuCounters:
    """Cumulative counts since construction (not cleared by a reset), for diagnostics."""

    n_added: int = 0
    n_nonfinite: int = 0
    n_duplicates: int = 0
    n_out_of_order: int = 0
    n_too_old: int = 0
    n_resets: int = 0


class ImuBuffer:
    """Gyro samples of the last ``horizon`` seconds, sorted, finite and unique.

    Args:
        horizon: seconds of history kept behind the newest sample.
        jump_threshold: a sample older than the newest by more than this (s) means the clock
            jumped backwards; the buffer resets.
    """

    def __init__(self, horizon: float = 2.0, jump_threshold: float = 0.5) -> None:
        if not horizon > 0:
            raise ValueError(f"horizon must be > 0 s, got {horizon}")
        if not jump_threshold > 0:
            raise ValueError(f"jump_threshold must be > 0 s, got {jump_threshold}")
        self.horizon = float(horizon)
        self.jump_threshold = float(jump_threshold)
        self.counters = ImuCounters()
        self._lock = threading.Lock()
        self._t = np.empty(256)
        self._w = np.empty((256, 3))
        self._start = 0
        self._stop = 0

    # -- writing -------------------------------------------------------------------------------
    def add(self, t: float, omega: np.ndarray | tuple[float, float, float]) -> AddResult:
        """Append one sample (IMU clock seconds, rad/s); returns what happened to it."""
        omega = np.asarray(omega, dtype=np.float64).reshape(3)
        t = float(t)
        with self._lock:
            return self._add_locked(t, omega)

    def extend(self, t: np.ndarray, omega: np.ndarray) -> list[AddResult]:
        """Append a batch (e.g. from a CSV or a bag), sample by sample under one lock."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        omega = np.asarray(omega, dtype=np.float64).reshape(-1, 3)
        if len(t) != len(omega):
            raise ValueError(f"{len(t)} stamps but {len(omega)} gyro rows")
        with self._lock:
            return [self._add_locked(float(ti), wi) for ti, wi in zip(t, omega, strict=True)]

    def clear(self) -> None:
        with self._lock:
            self._start = self._stop = 0

    def _add_locked(self, t: float, omega: np.ndarray) -> AddResult:
        self.counters.n_added += 1
        if not (np.isfinite(t) and np.all(np.isfinite(omega))):
            self.counters.n_nonfinite += 1
            return AddResult.NONFINITE
        n = self._stop - self._start
        if n == 0:
            self._append(t, omega)
            return AddResult.OK
        newest = self._t[self._stop - 1]
        if t > newest:
            self._append(t, omega)
            self._trim(t - self.horizon)
            return AddResult.OK
        if t < newest - self.jump_threshold:
            self.counters.n_resets += 1
            _LOG.warning("IMU time jumped backwards by %.3f s (%.3f -> %.3f): IMU buffer reset",
                         newest - t, newest, t)
            self._start = self._stop = 0
            self._append(t, omega)
            return AddResult.RESET
        ts = self._t[self._start:self._stop]
        i = int(np.searchsorted(ts, t))
        if i < n and ts[i] == t:
            self.counters.n_duplicates += 1
            return AddResult.DUPLICATE
        if t < newest - self.horizon:
            self.counters.n_too_old += 1
            return AddResult.TOO_OLD
        self.counters.n_out_of_order += 1
        self._insert(t, omega)
        return AddResult.OUT_OF_ORDER

    def _append(self, t: float, omega: np.ndarray) -> None:
        if self._stop == len(self._t):
            self._compact(grow=self._stop - self._start >= len(self._t) // 2)
        self._t[self._stop] = t
        self._w[self._stop] = omega
        self._stop += 1

    def _insert(self, t: float, omega: np.ndarray) -> None:
        self._append(t, omega)  # makes room (may compact); the new sample sits last for now
        k = self._start + int(np.searchsorted(self._t[self._start:self._stop - 1], t))
        self._t[k + 1:self._stop] = self._t[k:self._stop - 1].copy()
        self._w[k + 1:self._stop] = self._w[k:self._stop - 1].copy()
        self._t[k] = t
        self._w[k] = omega

    def _compact(self, grow: bool) -> None:
        n = self._stop - self._start
        cap = len(self._t) * 2 if grow else len(self._t)
        t = np.empty(cap)
        w = np.empty((cap, 3))
        t[:n] = self._t[self._start:self._stop]
        w[:n] = self._w[self._start:self._stop]
        self._t, self._w, self._start, self._stop = t, w, 0, n

    def _trim(self, t_min: float) -> None:
        # Keep one sample before t_min so interpolation at the horizon edge stays possible.
        k = int(np.searchsorted(self._t[self._start:self._stop], t_min)) - 1
        if k > 0:
            self._start += k

    # -- reading -------------------------------------------------------------------------------
    def __len__(self) -> int:
        with self._lock:
            return self._stop - self._start

    @property
    def latest_time(self) -> float | None:
        """Newest sample time, or None when empty."""
        with self._lock:
            return float(self._t[self._stop - 1]) if self._stop > self._start else None

    @property
    def oldest_time(self) -> float | None:
        with self._lock:
            return float(self._t[self._start]) if self._stop > self._start else None

    def covers(self, t0: float, t1: float) -> bool:
        """True when samples exist at or before ``t0`` and at or after ``t1``."""
        with self._lock:
            if self._stop == self._start:
                return False
            return bool(self._t[self._start] <= t0 and self._t[self._stop - 1] >= t1)

    def snapshot(self, t0: float | None = None, t1: float | None = None, margin: int = 2) -> ImuSamples:
        """Copy of the samples (optionally only those around ``[t0, t1]`` plus ``margin`` neighbours)."""
        with self._lock:
            ts = self._t[self._start:self._stop]
            lo, hi = 0, len(ts)
            if t0 is not None:
                lo = max(0, int(np.searchsorted(ts, t0, side="right")) - margin)
            if t1 is not None:
                hi = min(len(ts), int(np.searchsorted(ts, t1, side="left")) + margin)
            t = ts[lo:hi].copy()
            w = self._w[self._start + lo:self._start + hi].copy()
        return ImuSamples(t, w)  # re-checks the invariants the buffer keeps
