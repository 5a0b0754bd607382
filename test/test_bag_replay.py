"""Replay over real DDS: original spacing, rate factor, loop, start offset; recorder round trip.

Each test runs player and recorder in one process on a private rclpy context in a random DDS
domain (other test sessions on the machine use DDS concurrently). Timing bounds are loose on
purpose: they check that spacing is reproduced, not scheduler precision on a loaded CI box.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.context import Context  # noqa: E402

from eggnet_ros.bag.io import BagReader, BagWriter, header_stamp_ns, typestore  # noqa: E402
from eggnet_ros.bag.play import PlayOptions, play_bag  # noqa: E402
from eggnet_ros.bag.record import RecordOptions, record_bag  # noqa: E402

DOMAIN = random.SystemRandom().randint(120, 230)
N = 9
SPACING_S = 0.05
T0_NS = 1_700_000_000_000_000_000


@pytest.fixture
def context() -> Iterator[Context]:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture(scope="module")
def imu_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "bag"
    with BagWriter(path, storage="mcap") as w:
        for k in range(N):
            t = T0_NS + round(k * SPACING_S * 1e9)
            w.write_imu("/imu", t, "imu", (0.01 * k, 0.0, 0.0), log_time_ns=t)
    return path


def _play_and_record(ctx: Context, bag: Path, out: Path, opts: PlayOptions, expected: int) -> None:
    recorder = rclpy.create_node("test_recorder", context=ctx)
    player = rclpy.create_node("test_player", context=ctx)
    ready = threading.Event()
    rec_opts = RecordOptions(topics=("/imu",), expected={"/imu": expected}, duration=20.0, idle_timeout=3.0)
    thread = threading.Thread(target=record_bag, args=(out, rec_opts),
                              kwargs={"node": recorder, "types": {"/imu": "sensor_msgs/msg/Imu"},
                                      "ready": ready})
    thread.start()
    assert ready.wait(10.0)
    stats = play_bag(bag, opts, node=player)
    thread.join(30.0)
    assert not thread.is_alive()
    assert stats.published == {"/imu": expected}


def _received(path: Path) -> tuple[np.ndarray, list[int], list[bytes]]:
    """(receive times s, header stamps ns, raw CDR) of the recorded /imu messages."""
    times, stamps, raws = [], [], []
    with BagReader(path) as r:
        for _, msgtype, log_ns, raw in r.messages(["/imu"]):
            times.append(log_ns * 1e-9)
            stamps.append(header_stamp_ns(typestore().deserialize_cdr(raw, msgtype)))
            raws.append(bytes(raw))
    return np.asarray(times), stamps, raws


def test_replay_keeps_spacing_and_bytes(context: Context, imu_bag: Path, tmp_path: Path) -> None:
    _play_and_record(context, imu_bag, tmp_path / "rec", PlayOptions(wait_for_subscribers=5.0), N)
    times, stamps, raws = _received(tmp_path / "rec")
    assert len(times) == N
    span = times[-1] - times[0]
    assert 0.75 * (N - 1) * SPACING_S < span < 1.6 * (N - 1) * SPACING_S
    assert 0.6 * SPACING_S < np.median(np.diff(times)) < 1.5 * SPACING_S
    with BagReader(imu_bag) as r:
        original = [bytes(raw) for *_, raw in r.messages(["/imu"])]
    assert raws == original  # bit-identical CDR through DDS
    assert stamps == sorted(stamps)


def test_rate_two_halves_the_duration(context: Context, imu_bag: Path, tmp_path: Path) -> None:
    _play_and_record(context, imu_bag, tmp_path / "rec", PlayOptions(rate=2.0, wait_for_subscribers=5.0), N)
    times, _, _ = _received(tmp_path / "rec")
    span = times[-1] - times[0]
    expected = (N - 1) * SPACING_S / 2
    assert 0.7 * expected < span < 1.6 * expected
    assert np.median(np.diff(times)) < 0.8 * SPACING_S


def test_loop_and_start_offset(context: Context, imu_bag: Path, tmp_path: Path) -> None:
    # start 0.2 s in: messages 4..8 (5 of them), played twice
    opts = PlayOptions(rate=2.0, loop=True, max_loops=2, start_offset=0.2, wait_for_subscribers=5.0)
    _play_and_record(context, imu_bag, tmp_path / "rec", opts, 10)
    _, stamps, _ = _received(tmp_path / "rec")
    one_pass = [T0_NS + round(k * SPACING_S * 1e9) for k in range(4, N)]
    assert stamps == one_pass + one_pass
