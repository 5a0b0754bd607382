"""ImuBuffer: same cleaning rules as motion.validate_imu (the reference), horizon, time jumps."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from eggnet_ros.core import AddResult, ImuBuffer
from eggnet_ros.motion import validate_imu


def _stream(n: int = 200, rate: float = 200.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = 100.0 + np.arange(n) / rate
    return t, rng.normal(size=(n, 3))


def test_clean_stream_is_kept_verbatim() -> None:
    t, w = _stream()
    buf = ImuBuffer(horizon=10.0)
    assert all(r is AddResult.OK for r in buf.extend(t, w))
    snap = buf.snapshot()
    np.testing.assert_array_equal(snap.t, t)
    np.testing.assert_array_equal(snap.omega, w)
    assert buf.latest_time == t[-1] and buf.oldest_time == t[0]


def test_dirty_stream_matches_validate_imu() -> None:
    # Swap neighbours (jitter), repeat stamps, inject NaNs: the buffer fed sample by sample must
    # end up with exactly what validate_imu makes of the whole recording.
    t, w = _stream(300)
    t, w = t.copy(), w.copy()
    for i in range(10, 290, 37):
        t[[i, i + 1]] = t[[i + 1, i]]
        w[[i, i + 1]] = w[[i + 1, i]]
    t = np.insert(t, [50, 120], [t[49], t[119]])
    w = np.insert(w, [50, 120], [[9.0, 9.0, 9.0], [8.0, 8.0, 8.0]], axis=0)
    w[200, 1] = np.nan
    t[230] = np.inf

    buf = ImuBuffer(horizon=100.0)
    results = buf.extend(t, w)
    ref, report = validate_imu(t, w)
    snap = buf.snapshot()
    np.testing.assert_array_equal(snap.t, ref.t)
    np.testing.assert_array_equal(snap.omega, ref.omega)
    assert results.count(AddResult.NONFINITE) == report.n_nonfinite == 2
    assert results.count(AddResult.DUPLICATE) == report.n_duplicates == 2
    assert results.count(AddResult.OUT_OF_ORDER) == buf.counters.n_out_of_order > 0


def test_horizon_keeps_one_sample_before_the_window() -> None:
    t, w = _stream(1000, rate=100.0)  # 10 s
    buf = ImuBuffer(horizon=2.0)
    buf.extend(t, w)
    snap = buf.snapshot()
    assert snap.t[-1] == t[-1]
    assert snap.t[0] < t[-1] - 2.0 <= snap.t[1]
    assert buf.covers(t[-1] - 2.0, t[-1]) and not buf.covers(t[-1] - 3.0, t[-1])


def test_time_jump_backwards_resets_once() -> None:
    t, w = _stream(100)
    buf = ImuBuffer(horizon=5.0, jump_threshold=0.5)
    buf.extend(t, w)
    t2 = t - 10.0  # bag restarted
    results = buf.extend(t2, w)
    assert results[0] is AddResult.RESET
    assert results[1:].count(AddResult.RESET) == 0 and all(r is AddResult.OK for r in results[1:])
    assert buf.counters.n_resets == 1
    np.testing.assert_array_equal(buf.snapshot().t, t2)


def test_small_lateness_is_not_a_jump_but_too_old_is_dropped() -> None:
    buf = ImuBuffer(horizon=0.1, jump_threshold=0.5)
    buf.extend(np.arange(0, 0.3, 0.01), np.zeros((30, 3)))
    assert buf.add(0.285, (0, 0, 0)) is AddResult.OUT_OF_ORDER
    assert buf.add(0.05, (0, 0, 0)) is AddResult.TOO_OLD
    assert buf.counters.n_resets == 0


def test_snapshot_window_has_neighbours() -> None:
    t, w = _stream(200)
    buf = ImuBuffer(horizon=10.0)
    buf.extend(t, w)
    snap = buf.snapshot(t[50] + 1e-4, t[60] - 1e-4, margin=1)
    np.testing.assert_array_equal(snap.t, t[50:61])


def test_concurrent_writers_and_readers_keep_invariants() -> None:
    # One writer may run ahead of the other by any amount; a jump threshold beyond the whole
    # stream keeps that from counting as a clock reset, so the newest sample is known.
    buf = ImuBuffer(horizon=0.5, jump_threshold=100.0)
    errors: list[Exception] = []

    def writer(offset: float) -> None:
        for i in range(2000):
            buf.add(offset + i * 1e-3, (1.0, 2.0, 3.0))

    def reader() -> None:
        try:
            for _ in range(300):
                s = buf.snapshot()  # ImuSamples raises if unsorted/duplicated
                assert len(s) == 0 or np.all(np.diff(s.t) > 0)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(0.0,)), threading.Thread(target=writer, args=(0.0005,)),
               threading.Thread(target=reader)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    s = buf.snapshot()
    assert np.all(np.diff(s.t) > 0) and s.t[-1] == pytest.approx(1.9995)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ImuBuffer(horizon=0)
    with pytest.raises(ValueError):
        ImuBuffer().extend(np.zeros(3), np.zeros((2, 3)))
