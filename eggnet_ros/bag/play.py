"""Replay a rosbag2 over real DDS with its original timing (``eggnet-bag play``).

For machines without ``ros2 bag`` (the pip-installed rclpy wheels): the bag is read with
``rosbags`` and each record's raw CDR bytes are published unchanged through an rclpy publisher of
the message's type (``Publisher.publish`` accepts serialised bytes), so what subscribers receive is
bit-identical to what was recorded, for any message type whose Python package is installed.

Timing follows the log (receive) times: message k is published at
``wall_start + (log_k - log_first) / rate``. Header stamps are not touched; the node reads those.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eggnet_ros.bag.io import BagReader

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayOptions:
    #: Playback speed factor (2 = twice as fast).
    rate: float = 1.0
    #: Start this many seconds into the bag.
    start_offset: float = 0.0
    loop: bool = False
    #: Stop after this many passes when looping (None = until stopped).
    max_loops: int | None = None
    #: Topics to play (None = all); names with or without the leading slash.
    topics: tuple[str, ...] | None = None
    #: Topic renames applied when publishing, e.g. {"/imu": "/camera/imu"}.
    remap: dict[str, str] = field(default_factory=dict)
    #: Before the first message, wait up to this long (s) for each topic to have a subscriber
    #: (DDS discovery takes ~0.1-1 s; messages published before a match are lost).
    wait_for_subscribers: float = 0.0
    #: Publisher queue depth; None = :func:`default_depth` per type.
    qos_depth: int | None = None

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.start_offset < 0:
            raise ValueError(f"start_offset must be >= 0, got {self.start_offset}")


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0
    #: Types without an importable Python message package (their topics were not played).
    skipped_types: dict[str, str] = field(default_factory=dict)


def message_class(msgtype: str) -> Any:
    """``pkg/msg/Name`` -> the rclpy message class ``pkg.msg.Name`` (ImportError if not installed)."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise ImportError(f"cannot parse message type {msgtype!r}")
    pkg, kind, name = parts
    module = importlib.import_module(f"{pkg}.{kind}")
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"{pkg}.{kind} has no message {name}") from None


def default_depth(msgtype: str) -> int:
    """Queue depth for a type: ~1 s of a 1 kHz IMU for small messages, a few for images.

    A shallow keep-last queue silently loses samples while the other side is busy (e.g. writing a
    large image); a deep one of megabyte images would hold gigabytes.
    """
    return 30 if msgtype.endswith(("/Image", "/CompressedImage", "/PointCloud2")) else 1000


def _sleep_until(target: float, stop: threading.Event | None) -> bool:
    """Sleep until ``time.monotonic() >= target``; False if ``stop`` was set meanwhile."""
    while True:
        left = target - time.monotonic()
        if stop is not None and stop.is_set():
            return False
        if left <= 0:
            return True
        time.sleep(min(left, 0.05) if left > 0.002 else 0.0)


def play_bag(path: str | Path, options: PlayOptions | None = None, node: Any = None,
             stop: threading.Event | None = None) -> PlayStats:
    """Publish the bag's messages on ``node`` (an rclpy Node; one is made in the default context
    when None, which needs ``rclpy.init()`` first). Returns what was published.
    """
    from rclpy.qos import QoSProfile

    opts = options or PlayOptions()
    own_node = node is None
    if own_node:
        import rclpy

        node = rclpy.create_node("eggnet_bag_player")
    stats = PlayStats()
    t_begin = time.monotonic()
    try:
        with BagReader(path) as reader:
            wanted = None if opts.topics is None else {"/" + t.lstrip("/") for t in opts.topics}
            publishers: dict[str, Any] = {}
            for info in reader.topics.values():
                if wanted is not None and info.topic not in wanted:
                    continue
                try:
                    cls = message_class(info.msgtype)
                except ImportError as exc:
                    stats.skipped_types[info.topic] = str(exc)
                    _LOG.warning("not playing %s: %s", info.topic, exc)
                    continue
                out_topic = opts.remap.get(info.topic, opts.remap.get(info.topic.lstrip("/"), info.topic))
                qos = QoSProfile(depth=opts.qos_depth or default_depth(info.msgtype))
                publishers[info.topic] = node.create_publisher(cls, out_topic, qos)
            if not publishers:
                raise ValueError(f"nothing to play in {path}: topics {list(reader.topics)}")
            _wait_for_subscribers(publishers, opts.wait_for_subscribers, stop)

            first = reader.start_ns + round(opts.start_offset * 1e9)
            while True:
                wall0 = time.monotonic()
                for topic, _, log_ns, raw in reader.messages(list(publishers), start_ns=first):
                    if not _sleep_until(wall0 + (log_ns - first) * 1e-9 / opts.rate, stop):
                        return stats
                    publishers[topic].publish(bytes(raw))
                    stats.published[topic] = stats.published.get(topic, 0) + 1
                stats.loops += 1
                if not opts.loop or (opts.max_loops is not None and stats.loops >= opts.max_loops):
                    break
                if stop is not None and stop.is_set():
                    break
    finally:
        stats.wall_s = time.monotonic() - t_begin
        if own_node:
            node.destroy_node()
    return stats


def _wait_for_subscribers(publishers: dict[str, Any], timeout: float, stop: threading.Event | None) -> None:
    if timeout <= 0:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
        if all(p.get_subscription_count() > 0 for p in publishers.values()):
            return
        time.sleep(0.02)
    missing = [t for t, p in publishers.items() if p.get_subscription_count() == 0]
    if missing:
        _LOG.info("no subscriber after %.1f s on %s; playing anyway", timeout, ", ".join(missing))
