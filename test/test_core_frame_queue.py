"""FrameQueue: stamp order, bounded waiting for IMU coverage, newest-wins eviction, clock resets."""

from __future__ import annotations

import pytest

from eggnet_ros.core import FrameQueue, PendingFrame, PushOutcome


def _f(stamp: float, arrival: float = 0.0) -> PendingFrame:
    return PendingFrame(stamp=stamp, ready_at=stamp + 0.01, arrival=arrival, payload=f"frame{stamp}")


def test_waits_for_imu_coverage_then_releases() -> None:
    q = FrameQueue(queue_size=3, max_wait=1.0)
    q.push(_f(1.0))
    assert q.pop(imu_latest=None, now=0.0) is None
    assert q.pop(imu_latest=1.009, now=0.5) is None
    frame, timed_out = q.pop(imu_latest=1.01, now=0.5)
    assert frame.stamp == 1.0 and not timed_out


def test_times_out_after_max_wait_without_blocking_later_frames() -> None:
    q = FrameQueue(queue_size=5, max_wait=0.1)
    q.push(_f(1.0, arrival=0.0))
    q.push(_f(1.1, arrival=0.05))
    assert q.seconds_until_timeout(0.02) == pytest.approx(0.08)
    assert q.pop(imu_latest=0.5, now=0.09) is None
    frame, timed_out = q.pop(imu_latest=0.5, now=0.1)
    assert frame.stamp == 1.0 and timed_out
    # The IMU now covers the second frame: released at once, not after another max_wait.
    frame, timed_out = q.pop(imu_latest=1.2, now=0.101)
    assert frame.stamp == 1.1 and not timed_out
    assert q.seconds_until_timeout(0.2) is None


def test_releases_in_stamp_order_even_if_pushed_out_of_order() -> None:
    q = FrameQueue(queue_size=5, max_wait=1.0)
    for s in (1.2, 1.0, 1.1):
        assert q.push(_f(s)).outcome is PushOutcome.ACCEPTED
    out = [q.pop(imu_latest=10.0, now=0.0)[0].stamp for _ in range(3)]
    assert out == [1.0, 1.1, 1.2]


def test_full_queue_evicts_oldest_newest_wins() -> None:
    q = FrameQueue(queue_size=2, max_wait=1.0)
    q.push(_f(1.0))
    q.push(_f(1.1))
    res = q.push(_f(1.2))
    assert [f.stamp for f in res.evicted] == [1.0]
    assert [q.pop(10.0, 0.0)[0].stamp for _ in range(2)] == [1.1, 1.2]


def test_frames_not_after_the_last_released_are_rejected() -> None:
    q = FrameQueue(queue_size=3, max_wait=1.0, jump_threshold=0.5)
    q.push(_f(2.0))
    q.pop(10.0, 0.0)
    assert q.push(_f(1.9)).outcome is PushOutcome.OUT_OF_ORDER
    assert q.push(_f(2.0)).outcome is PushOutcome.OUT_OF_ORDER
    q.push(_f(2.1))
    assert q.push(_f(2.1)).outcome is PushOutcome.OUT_OF_ORDER  # duplicate stamp
    assert len(q) == 1


def test_clock_jump_backwards_resets_queue() -> None:
    q = FrameQueue(queue_size=3, max_wait=1.0, jump_threshold=0.5)
    q.push(_f(10.0))
    q.pop(20.0, 0.0)
    q.push(_f(10.1))
    res = q.push(_f(0.5))  # bag looped
    assert res.outcome is PushOutcome.RESET and [f.stamp for f in res.evicted] == [10.1]
    assert q.pop(20.0, 0.0)[0].stamp == 0.5
    assert q.push(_f(0.6)).outcome is PushOutcome.ACCEPTED


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        FrameQueue(queue_size=0)
    with pytest.raises(ValueError):
        FrameQueue(max_wait=-1)


def test_stalled_imu_releases_frames_at_once() -> None:
    q = FrameQueue(queue_size=2, max_wait=10.0)
    q.push(_f(1.0, arrival=0.0))
    assert q.pop(imu_latest=0.5, now=0.01) is None
    frame, timed_out = q.pop(imu_latest=0.5, now=0.01, imu_stalled=True)
    assert frame.stamp == 1.0 and timed_out


def test_frame_waits_for_the_first_camera_info_then_times_out() -> None:
    q = FrameQueue(queue_size=2, max_wait=1.0)
    q.push(_f(1.0, arrival=0.0))
    # IMU covers the exposure, but no camera model yet: not ready, and not timed out either.
    assert q.pop(imu_latest=2.0, now=0.5, camera_known=False) is None
    frame, timed_out = q.pop(imu_latest=2.0, now=0.6, camera_known=True)
    assert frame.stamp == 1.0 and not timed_out
    q.push(_f(2.0, arrival=1.0))
    frame, timed_out = q.pop(imu_latest=3.0, now=2.0, camera_known=False)
    assert frame.stamp == 2.0 and timed_out  # max_wait ran out: released for the fallback
