"""Running counters and rates for the node's /diagnostics (ROS-free, thread-safe).

Why a separate object: the executor thread (frames and IMU in) and the worker thread (results
out) both record events, and the diagnostics timer reads a consistent snapshot. Rates and
latencies are over a sliding window so a stall shows up within seconds; counts are cumulative.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable


class _Window:
    """(time, value) events of the last ``span`` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.events: deque[tuple[float, float]] = deque()

    def add(self, now: float, value: float = 1.0) -> None:
        self.events.append((now, value))
        self.prune(now)

    def prune(self, now: float) -> None:
        while self.events and self.events[0][0] < now - self.span:
            self.events.popleft()

    def rate(self, now: float) -> float:
        self.prune(now)
        return len(self.events) / self.span

    def values(self, now: float) -> list[float]:
        self.prune(now)
        return [v for _, v in self.events]


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else math.nan


def _p95(v: list[float]) -> float:
    if not v:
        return math.nan
    s = sorted(v)
    return s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]


class NodeStats:
    """Event counters of the deblur pipeline.

    Outcomes per frame are one of: ``deblurred``, ``passthrough_small_blur`` (network skipped on
    purpose), ``fallback_passthrough`` / ``fallback_dropped`` (could not deblur), ``dropped_queue``
    (evicted: the model is slower than the camera), ``dropped_out_of_order``.
    """

    def __init__(self, span: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.span = span
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self._frames_in = _Window(span)
        self._frames_out = _Window(span)
        self._imu_in = _Window(span)
        self._latency = _Window(span)
        self._timings: dict[str, _Window] = {}
        self._covered = 0
        self._processed = 0

    def frame_in(self) -> None:
        with self._lock:
            self.counts["frames_in"] += 1
            self._frames_in.add(self._clock())

    def imu_in(self, n: int = 1) -> None:
        with self._lock:
            self.counts["imu_in"] += n
            now = self._clock()
            for _ in range(n):
                self._imu_in.add(now)

    def event(self, name: str, n: int = 1) -> None:
        """Count a named event (``dropped_queue``, ``imu_reset``, ``unsupported_encoding``...)."""
        with self._lock:
            self.counts[name] += n

    def result(self, outcome: str, reason: str, imu_covered: bool, timings: dict[str, float],
               latency_ms: float | None, published: bool) -> None:
        """Record one processed frame (``latency_ms`` = receive to publish, when published)."""
        with self._lock:
            now = self._clock()
            self.counts[outcome] += 1
            self._processed += 1
            self._covered += bool(imu_covered)
            if reason and outcome != "deblurred":
                # Reasons carry numbers (gap sizes...); group by their first words.
                self.reasons[" ".join(reason.split()[:3])] += 1
            for k, v in timings.items():
                self._timings.setdefault(k, _Window(self.span)).add(now, v)
            if published:
                self._frames_out.add(now)
                if latency_ms is not None:
                    self._latency.add(now, latency_ms)

    def snapshot(self) -> dict[str, float | int | str]:
        """Flat key -> value map (what /diagnostics shows)."""
        with self._lock:
            now = self._clock()
            lat = self._latency.values(now)
            out: dict[str, float | int | str] = {
                "input_rate_hz": self._frames_in.rate(now),
                "output_rate_hz": self._frames_out.rate(now),
                "imu_rate_hz": self._imu_in.rate(now),
                "latency_mean_ms": _mean(lat),
                "latency_p95_ms": _p95(lat),
                "imu_coverage_fraction": self._covered / self._processed if self._processed else math.nan,
                "frames_processed": self._processed,
            }
            for k, w in sorted(self._timings.items()):
                out[f"{k}_mean_ms"] = _mean(w.values(now))
            for k, v in sorted(self.counts.items()):
                out[k] = v
            if self.reasons:
                out["top_fallback_reason"] = self.reasons.most_common(1)[0][0]
            return out
