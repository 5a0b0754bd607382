"""Exposure-window synchronisation: which waiting frame to process next, and when.

A frame can only be deblurred once the gyro has reported past the end of its exposure window,
and IMU messages often arrive after the image. So frames wait here, in stamp order, until

- the IMU covers the window end (``ready``), or
- they have waited ``max_wait`` seconds (``timed out``: processed with whatever IMU exists, which
  the processor turns into the configured fallback) -

never longer, so one frame without IMU cannot hold back the frames behind it. When the model is
slower than the camera the queue overflows and the *oldest* frames are dropped: the newest frame
wins, which is what a robot wants from a live image stream.

Stamps released by :meth:`FrameQueue.pop` strictly increase, so the output topic is in stamp
order. A frame whose stamp is far behind the last one means the clock went backwards (bag loop):
the queue resets and says so once. ROS-free so the rules are unit-tested without DDS.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Any


class PushOutcome(enum.Enum):
    ACCEPTED = "accepted"
    OUT_OF_ORDER = "out_of_order"  # stamp not after the last released / a pending one: rejected
    RESET = "reset"  # clock jumped back: queue cleared, frame accepted as the first of a new run


@dataclass(order=True)
class PendingFrame:
    """A frame waiting for IMU coverage. Ordered by stamp only."""

    stamp: float
    #: IMU-clock time the gyro must reach before processing (end of the exposure window).
    ready_at: float = field(compare=False)
    #: Monotonic arrival time (s), for ``max_wait``.
    arrival: float = field(compare=False)
    payload: Any = field(default=None, compare=False)


@dataclass
class PushResult:
    outcome: PushOutcome
    #: Frames evicted to keep at most ``queue_size`` pending (oldest first).
    evicted: list[PendingFrame] = field(default_factory=list)


class FrameQueue:
    """Bounded stamp-ordered queue. Not thread-safe on its own: the node guards it with a lock.

    Args:
        queue_size: most frames kept waiting; older ones are evicted first.
        max_wait: seconds a frame may wait for IMU coverage.
        jump_threshold: a stamp this far (s) behind the newest known one is a clock reset.
    """

    def __init__(self, queue_size: int = 2, max_wait: float = 0.1, jump_threshold: float = 0.5) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        if max_wait < 0:
            raise ValueError(f"max_wait must be >= 0, got {max_wait}")
        self.queue_size = int(queue_size)
        self.max_wait = float(max_wait)
        self.jump_threshold = float(jump_threshold)
        self._pending: list[PendingFrame] = []
        self._last_released: float | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def clear(self) -> list[PendingFrame]:
        """Forget all pending frames and the stamp history; returns the frames removed."""
        removed, self._pending, self._last_released = self._pending, [], None
        return removed

    def _newest_stamp(self) -> float | None:
        if self._pending:
            return self._pending[-1].stamp
        return self._last_released

    def push(self, frame: PendingFrame) -> PushResult:
        newest = self._newest_stamp()
        outcome = PushOutcome.ACCEPTED
        evicted: list[PendingFrame] = []
        if newest is not None and frame.stamp < newest - self.jump_threshold:
            evicted = self.clear()
            outcome = PushOutcome.RESET
        elif self._last_released is not None and frame.stamp <= self._last_released:
            return PushResult(PushOutcome.OUT_OF_ORDER)
        i = bisect.bisect_left(self._pending, frame)
        if i < len(self._pending) and self._pending[i].stamp == frame.stamp:
            return PushResult(PushOutcome.OUT_OF_ORDER)
        self._pending.insert(i, frame)
        while len(self._pending) > self.queue_size:
            evicted.append(self._pending.pop(0))
        return PushResult(outcome, evicted)

    def pop(self, imu_latest: float | None, now: float, imu_stalled: bool = False,
            camera_known: bool = True) -> tuple[PendingFrame, bool] | None:
        """The oldest frame if it is ready (``(frame, False)``) or timed out (``(frame, True)``).

        ``imu_stalled``: the IMU stream has stopped (nothing received for ``max_wait``); waiting
        cannot help, so frames are released at once instead of each waiting ``max_wait`` - which
        at camera rate would overflow the queue and drop frames the fallback should pass through.
        ``camera_known``: False until the first camera_info arrived; a frame is not ready before
        that (drivers often publish the first image a moment before its camera_info), so it waits
        like for late IMU instead of falling back at once.
        """
        if not self._pending:
            return None
        head = self._pending[0]
        ready = camera_known and imu_latest is not None and imu_latest >= head.ready_at
        timed_out = imu_stalled or now - head.arrival >= self.max_wait
        if not (ready or timed_out):
            return None
        self._pending.pop(0)
        self._last_released = head.stamp
        return head, not ready

    def seconds_until_timeout(self, now: float) -> float | None:
        """How long the worker may sleep before the head frame times out (None: queue empty)."""
        if not self._pending:
            return None
        return max(0.0, self._pending[0].arrival + self.max_wait - now)
