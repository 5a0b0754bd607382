"""Record DDS topics into a rosbag2 without ``ros2 bag`` (``eggnet-bag record``).

Subscriptions are raw (``raw=True``): the CDR bytes that arrive are written unchanged, so the bag
holds exactly what the publisher sent. Types are discovered from the graph (like ``ros2 bag
record``), and each subscription's reliability follows the publishers': a reliable subscription
would never match a best-effort publisher, a best-effort one matches both but may drop.
The log time of each record is its receive time on the host clock, as ``ros2 bag`` writes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eggnet_ros.bag.io import BagWriter, Storage
from eggnet_ros.bag.play import default_depth, message_class

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordOptions:
    topics: tuple[str, ...]
    storage: Storage = "mcap"
    #: Stop after this long (s); None = no limit.
    duration: float | None = None
    #: Stop when nothing arrived for this long (s) after the first message; None = never.
    idle_timeout: float | None = None
    #: Stop once this many messages arrived on every topic (e.g. the frames of a known bag).
    expected: dict[str, int] | None = None
    #: Give up waiting for topics to appear in the graph after this long (s).
    discovery_timeout: float = 10.0


@dataclass
class RecordStats:
    received: dict[str, int] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def _absolute(topic: str) -> str:
    return "/" + topic.lstrip("/")


def _discover(node: Any, topics: list[str], timeout: float, stop: threading.Event | None,
              known: dict[str, str]) -> dict[str, str]:
    """topic -> type for every topic that appears within ``timeout``."""
    found = dict(known)
    deadline = time.monotonic() + timeout
    while True:
        for name, types in node.get_topic_names_and_types():
            if name in topics and name not in found and types:
                found[name] = types[0]
        stopped = stop is not None and stop.is_set()
        if all(t in found for t in topics) or time.monotonic() > deadline or stopped:
            return found
        time.sleep(0.05)


def _qos_for(node: Any, topic: str, msgtype: str) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    infos = node.get_publishers_info_by_topic(topic)
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    return QoSProfile(depth=default_depth(msgtype), reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                      else ReliabilityPolicy.RELIABLE)


def record_bag(path: str | Path, options: RecordOptions, node: Any = None,
               stop: threading.Event | None = None, types: dict[str, str] | None = None,
               ready: threading.Event | None = None) -> RecordStats:
    """Record ``options.topics`` to a new bag at ``path`` until a stop condition holds.

    ``node``: an rclpy Node to subscribe on (made in the default context when None; it must not be
    spun by anyone else: this function spins it). ``types``: topic -> type for topics that may not
    exist yet when recording starts (skips discovery for them). ``ready`` is set once subscribed.
    """
    from rclpy.executors import SingleThreadedExecutor

    own_node = node is None
    if own_node:
        import rclpy

        node = rclpy.create_node("eggnet_bag_recorder")
    topics = [_absolute(t) for t in options.topics]
    stats = RecordStats()
    t0 = time.monotonic()
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        known = {_absolute(k): v for k, v in (types or {}).items()}
        found = _discover(node, topics, options.discovery_timeout, stop, known)
        stats.types = found
        stats.missing = [t for t in topics if t not in found]
        for t in stats.missing:
            _LOG.warning("topic %s did not appear within %.1f s: not recorded", t, options.discovery_timeout)
        if not found:
            raise TimeoutError(f"none of {topics} appeared within {options.discovery_timeout} s")
        last = [time.monotonic(), False]
        with BagWriter(path, storage=options.storage) as writer:

            def callback_for(topic: str, msgtype: str) -> Any:
                def on_message(raw: bytes) -> None:
                    writer.write_raw(topic, msgtype, time.time_ns(), raw)
                    stats.received[topic] = stats.received.get(topic, 0) + 1
                    last[0], last[1] = time.monotonic(), True

                return on_message

            for topic, msgtype in found.items():
                writer.add_topic(topic, msgtype)
            for topic, msgtype in found.items():
                node.create_subscription(message_class(msgtype), topic, callback_for(topic, msgtype),
                                         _qos_for(node, topic, msgtype), raw=True)
            if ready is not None:
                ready.set()
            while not _done(options, stats, t0, last, stop):
                executor.spin_once(timeout_sec=0.02)
    finally:
        stats.wall_s = time.monotonic() - t0
        executor.remove_node(node)
        executor.shutdown()
        if own_node:
            node.destroy_node()
        if ready is not None:
            ready.set()
    return stats


def _done(opts: RecordOptions, stats: RecordStats, t0: float, last: list,
          stop: threading.Event | None) -> bool:
    now = time.monotonic()
    if stop is not None and stop.is_set():
        return True
    if opts.duration is not None and now - t0 >= opts.duration:
        return True
    if opts.idle_timeout is not None and last[1] and now - last[0] >= opts.idle_timeout:
        return True
    if opts.expected:
        return all(stats.received.get(_absolute(t), 0) >= n for t, n in opts.expected.items())
    return False
