"""``eggnet_deblur_node``: image_raw + camera_info + imu in, image_deblurred out.

A thin shell over the ROS-free core: callbacks only convert messages and enqueue (never block
the executor); one worker thread takes frames in stamp order once the IMU covers their
exposure window (or ``max_wait`` ran out), runs :class:`~eggnet_ros.core.DeblurProcessor`
and publishes. Topics (relative, so ``__ns`` and remaps work as in image_pipeline):

- in:  ``image_raw`` (sensor_msgs/Image), ``camera_info`` (sensor_msgs/CameraInfo),
  ``imu`` (sensor_msgs/Imu), all sensor-data QoS; optional ``exposure_time_topic``
  (std_msgs/Float64, seconds).
- out: ``image_deblurred`` (same header and encoding as the input), ``camera_info_deblurred``
  (the latest camera_info re-stamped with the image's header, one per output image - remap both
  to ``<x>/image`` and ``<x>/camera_info`` for image_transport consumers), ``/diagnostics``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import sys
import threading
import time
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, Imu
from std_msgs.msg import Float64

from eggnet_ros.config import NodeConfig
from eggnet_ros.core import (
    SUPPORTED_ENCODINGS,
    AddResult,
    CudaUnavailableError,
    DeblurProcessor,
    FrameQueue,
    FrameResult,
    ImuBuffer,
    ModelNotFoundError,
    NodeStats,
    PendingFrame,
    PushOutcome,
)
from eggnet_ros.model import WeightsError
from eggnet_ros.ros.convert import (
    array_to_image,
    camera_info_to_model,
    image_to_array,
    imu_to_sample,
    stamp_to_sec,
)
from eggnet_ros.ros.diagnostics import build_array, build_status
from eggnet_ros.ros.params import BY_NAME, NODE_NAME, PARAMETERS, ParameterError, build_config
from eggnet_ros.ros.shutdown import ShutdownRequest
from eggnet_ros.ros.tf_rotation import make_tf_lookup

#: Per-frame problems are logged at most this often (s).
THROTTLE_S = 5.0
OUTPUT_QOS_DEPTH = 5
#: Longest executor wait (s) before the main loop looks at the stop request again: the worst-case
#: reaction to Ctrl-C (the Python signal handler runs only once the wait returns).
STOP_POLL_S = 0.1
#: Sensor-data QoS (best effort, volatile: matches any publisher) but a deeper queue: keep-last 5
#: at a 1 kHz gyro loses samples whenever the executor is busy for 5 ms, and every lost sample is
#: a hole in some frame's exposure window.
IMU_QOS = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE,
                     history=HistoryPolicy.KEEP_LAST, depth=200)


class RclpyLogHandler(logging.Handler):
    """Forwards the library's ``logging`` records (processor, model loading) to the node's rclpy
    logger, so they reach the console and /rosout like the node's own messages."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self._logger = node.get_logger()

    def emit(self, record: logging.LogRecord) -> None:
        msg = self.format(record)
        if record.levelno >= logging.CRITICAL:
            self._logger.fatal(msg)
        elif record.levelno >= logging.ERROR:
            self._logger.error(msg)
        elif record.levelno >= logging.WARNING:
            self._logger.warning(msg)
        elif record.levelno >= logging.INFO:
            self._logger.info(msg)
        else:
            self._logger.debug(msg)


class DeblurNode(Node):
    """The deblurring node. Raises at construction for bad parameters, a missing/corrupt model or
    unavailable required CUDA (``main`` turns these into a fatal log line and exit code 1)."""

    def __init__(self, node_name: str = NODE_NAME, *, processor: DeblurProcessor | None = None,
                 **kwargs: Any) -> None:
        """``processor``: an already built one (benchmarks, embedding); by default it is built from
        the parameters. ``kwargs`` go to :class:`rclpy.node.Node` (context, namespace, overrides)."""
        super().__init__(node_name, **kwargs)
        self._log_handler = RclpyLogHandler(self)
        pkg_logger = logging.getLogger("eggnet_ros")
        pkg_logger.addHandler(self._log_handler)
        if pkg_logger.level == logging.NOTSET:
            pkg_logger.setLevel(logging.INFO)
        try:
            self.config = self._declare_parameters()
            self.processor = processor or DeblurProcessor(self.config.processor)
        except (ModelNotFoundError, WeightsError, CudaUnavailableError) as exc:
            pkg_logger.removeHandler(self._log_handler)
            raise StartupError(str(exc)) from exc
        except ParameterError:
            pkg_logger.removeHandler(self._log_handler)
            raise
        cfg = self.config
        self.stats = NodeStats()
        self.imu = ImuBuffer(horizon=cfg.imu_buffer_seconds, jump_threshold=cfg.time_jump_threshold)
        self.queue = FrameQueue(cfg.queue_size, cfg.max_wait, cfg.time_jump_threshold)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._camera_info: CameraInfo | None = None
        self._camera = None
        self._camera_error: str | None = None
        self._exposure_override: float | None = None
        self._imu_frame = ""
        self._last_imu_arrival: float | None = None  # monotonic
        self._first_frame_arrival: float | None = None
        self._last_encoding = ""
        self._warmed: tuple[int, int, str] | None = None
        self._rotation_source = "parameter"
        self._tf = make_tf_lookup(self) if cfg.use_tf else None
        self._tf_deadline: float | None = None
        if cfg.use_tf and self._tf is None:
            self.get_logger().info("tf2_ros not installed: camera<-IMU rotation from rotation_cam_imu")

        qos = qos_profile_sensor_data
        self.create_subscription(Image, "image_raw", self._on_image, qos)
        self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        self.create_subscription(Imu, "imu", self._on_imu, IMU_QOS)
        if cfg.exposure_time_topic:
            self.create_subscription(Float64, cfg.exposure_time_topic, self._on_exposure_time, 10)
        self.pub_image = self.create_publisher(Image, "image_deblurred", OUTPUT_QOS_DEPTH)
        self.pub_info = self.create_publisher(CameraInfo, "camera_info_deblurred", OUTPUT_QOS_DEPTH)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._worker = threading.Thread(target=self._work, name="eggnet_deblur_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(f"started: {self.processor.describe()}")

    # -- parameters --------------------------------------------------------------------------------
    def _declare_parameters(self) -> NodeConfig:
        """Declare all parameters; report every invalid one at once (not just the first)."""
        values, errors = {}, []
        for spec in PARAMETERS:
            try:
                p = self.declare_parameter(spec.name, spec.default(), spec.descriptor())
            except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
                errors.append(f"parameter '{spec.name}': {exc}")
                p = self.declare_parameter(spec.name, spec.default(), spec.descriptor(), ignore_override=True)
            values[spec.name] = p.value
        try:
            config = build_config(values)
        except ParameterError as exc:
            errors.append(str(exc))
        if errors:
            raise ParameterError("; ".join(errors))
        return config

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        changes = {p.name: p.value for p in params if p.name in BY_NAME}
        if not changes:
            return SetParametersResult(successful=True)
        try:
            new = build_config(changes, base=self.config)
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        updates = {}
        for name in changes:
            spec = BY_NAME[name]
            if spec.processor_field:
                updates[spec.processor_field] = spec.default(new)
        if "rotation_cam_imu" in updates:
            updates["rotation_cam_imu"] = tuple(updates["rotation_cam_imu"])
            if self._rotation_source == "tf":
                self.get_logger().warning("rotation_cam_imu changed, but the rotation comes from tf: ignored")
                del updates["rotation_cam_imu"]
        self.processor.update(**updates)
        with self._cond:
            self.queue.max_wait = new.max_wait
        self.config = new
        self.get_logger().info(f"parameters updated: {sorted(changes)}")
        return SetParametersResult(successful=True)

    # -- callbacks (executor thread: convert and enqueue, never block) ------------------------------
    def _on_camera_info(self, msg: CameraInfo) -> None:
        prev = self._camera_info
        self._camera_info = msg
        if prev is not None and (prev.width, prev.height, list(prev.k), list(prev.d), prev.binning_x,
                                 prev.binning_y, prev.roi) == (msg.width, msg.height, list(msg.k),
                                                               list(msg.d), msg.binning_x, msg.binning_y,
                                                               msg.roi):
            return
        try:
            self._camera, self._camera_error = camera_info_to_model(msg), None
        except ValueError as exc:
            self._camera, self._camera_error = None, f"camera_info unusable: {exc}"
            self.get_logger().error(self._camera_error, throttle_duration_sec=THROTTLE_S)
        if prev is None and len(self.queue):  # frames that arrived first were waiting for this
            with self._cond:
                self._cond.notify()

    def _on_exposure_time(self, msg: Float64) -> None:
        if math.isfinite(msg.data) and 0 < msg.data <= 1.0:
            self._exposure_override = float(msg.data)
        else:
            self.get_logger().warning(f"ignoring exposure time {msg.data} s (expected (0, 1])",
                                      throttle_duration_sec=THROTTLE_S)

    def _on_imu(self, msg: Imu) -> None:
        t, omega = imu_to_sample(msg)
        self._imu_frame = msg.header.frame_id
        self._last_imu_arrival = time.monotonic()
        result = self.imu.add(t, omega)
        self.stats.imu_in()
        if result is AddResult.RESET:
            self.stats.event("imu_time_reset")
            self.get_logger().warning("IMU time jumped backwards (bag loop?): IMU buffer reset")
        elif result is not AddResult.OK:
            self.stats.event(f"imu_{result.value}")
            self.get_logger().warning(f"IMU sample {result.value.replace('_', ' ')} at t={t:.6f}: handled",
                                      throttle_duration_sec=THROTTLE_S)
        if len(self.queue):
            with self._cond:
                self._cond.notify()

    def _on_image(self, msg: Image) -> None:
        self.stats.frame_in()
        stamp = stamp_to_sec(msg.header.stamp)
        exposure = self._exposure_override
        try:
            ready_at = self.processor.exposure_window(stamp, max(msg.height, 1), exposure).end
        except ValueError:
            ready_at = stamp  # nonsense timing: let the processor report it
        frame = PendingFrame(stamp, ready_at, time.monotonic(), (msg, exposure))
        self._last_encoding = msg.encoding
        if self._first_frame_arrival is None:
            self._first_frame_arrival = frame.arrival
        with self._cond:
            res = self.queue.push(frame)
            self._cond.notify()
        if res.outcome is PushOutcome.RESET:
            self.stats.event("image_time_reset")
            self.get_logger().warning("image stamps jumped backwards (bag loop?): frame queue reset")
        elif res.outcome is PushOutcome.OUT_OF_ORDER:
            self.stats.event("dropped_out_of_order")
            self.get_logger().warning(f"dropped frame stamped {stamp:.6f}: not after the last processed one",
                                      throttle_duration_sec=THROTTLE_S)
        if res.outcome is not PushOutcome.RESET and res.evicted:
            self.stats.event("dropped_queue", len(res.evicted))

    # -- worker --------------------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                now = time.monotonic()
                camera_known = self._camera is not None or self._camera_error is not None
                item = self.queue.pop(self.imu.latest_time, now, imu_stalled=self._imu_stalled(now),
                                      camera_known=camera_known)
                warm = item is None and not len(self.queue) and self._warm_key() not in (None, self._warmed)
                if item is None and not warm:
                    wait = self.queue.seconds_until_timeout(now)
                    self._cond.wait(timeout=0.05 if wait is None else min(max(wait, 1e-3), 0.05))
                    continue
            if item is None:
                self._warm_up()
                continue
            frame, timed_out = item
            try:
                self._handle(frame, timed_out)
            except Exception as exc:  # a bug must cost one frame (handled by `fallback`), never the node
                self.stats.event("internal_error")
                self.get_logger().error(f"frame {frame.stamp:.6f} failed: {exc!r}",
                                        throttle_duration_sec=THROTTLE_S)
                with contextlib.suppress(Exception):
                    result = self.processor.reject(None, f"internal error: {exc!r}")
                    self._publish(frame.payload[0], result, frame)

    def _warm_key(self) -> tuple[int, int, str] | None:
        cam = self._camera
        return None if cam is None else (cam.width, cam.height, self._last_encoding)

    def _warm_up(self) -> None:
        """Pay the network's first-call cost for the camera's size while no frame waits."""
        key = self._warm_key()
        if key is None:
            return
        width, height, encoding = key
        h, w = height, width
        with contextlib.suppress(ValueError):  # unknown/unsupported encoding: warm at camera size
            if encoding:
                h, w = self.processor.conversion(encoding).chw_shape(height, width)[1:]
        try:
            ms = self.processor.warmup(h, w)
        except Exception as exc:  # shows again (and is handled) on the first frame
            self.get_logger().warning(f"model warm-up at {w}x{h} failed: {exc!r}")
            return
        finally:
            self._warmed = key  # set when done (tried once either way), so it also says "warm-up over"
        self.get_logger().info(f"model warmed up for {w}x{h} in {ms:.0f} ms")

    def _imu_stalled(self, now: float) -> bool:
        """No IMU for ``max_wait`` (or none at all ``max_wait`` after the first frame): waiting is futile."""
        last = self._last_imu_arrival if self._last_imu_arrival is not None else self._first_frame_arrival
        return last is not None and now - last > self.queue.max_wait

    def _handle(self, frame: PendingFrame, timed_out: bool) -> None:
        msg, exposure = frame.payload
        if timed_out:
            self.stats.event("imu_wait_timeout")
        self._update_rotation(msg.header.frame_id)
        camera = self._camera
        if msg.encoding not in SUPPORTED_ENCODINGS:
            result = self.processor.reject(None, f"unsupported image encoding {msg.encoding!r}")
            self.get_logger().error(
                f"unsupported image encoding {msg.encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)}); "
                f"fallback={self.processor.config.fallback}", throttle_duration_sec=THROTTLE_S)
        else:
            try:
                image = image_to_array(msg)
            except ValueError as exc:
                result = self.processor.reject(None, f"cannot decode image: {exc}")
            else:
                if camera is None and self._camera_error:
                    result = self.processor.reject(image, self._camera_error)
                else:
                    try:
                        window = self.processor.exposure_window(frame.stamp, msg.height, exposure)
                        imu = self.imu.snapshot(window.start, window.end)
                    except ValueError:  # e.g. an empty image: the processor names the problem
                        imu = None
                    result = self.processor.process(image, msg.encoding, frame.stamp, imu, camera,
                                                    exposure_time=exposure)
        self._publish(msg, result, frame)

    def _publish(self, msg: Image, result: FrameResult, frame: PendingFrame) -> None:
        published = result.status != "dropped"
        if result.status == "deblurred":
            self.pub_image.publish(array_to_image(result.image, msg.header, msg.encoding))
        elif result.status == "passthrough":
            self.pub_image.publish(msg)  # the input, bit for bit
        if published and self._camera_info is not None:
            info = copy.copy(self._camera_info)
            info.header = msg.header
            self.pub_info.publish(info)
        latency = (time.monotonic() - frame.arrival) * 1e3
        outcome = result.status if not result.fallback else f"fallback_{result.status}"
        if result.status == "passthrough" and not result.fallback:
            outcome = "passthrough_small_blur"
        self.stats.result(outcome, result.reason, result.imu_covered, result.timings,
                          latency if published else None, published)
        if result.fallback:
            self.get_logger().warning(f"frame {frame.stamp:.6f}: {result.reason} -> {result.status}",
                                      throttle_duration_sec=THROTTLE_S)

    def _update_rotation(self, camera_frame: str) -> None:
        """Try tf for the camera<-IMU rotation for a while, then settle for the parameter."""
        if self._tf is None or self._rotation_source != "parameter":
            return
        if not camera_frame or not self._imu_frame:
            return
        now = time.monotonic()
        if self._tf_deadline is None:
            self._tf_deadline = now + 5.0
        R = self._tf.lookup(camera_frame, self._imu_frame)
        if R is not None:
            self.processor.update(rotation_cam_imu=tuple(float(v) for v in R.reshape(-1)))
            self._rotation_source = "tf"
            self.get_logger().info(f"camera<-IMU rotation from tf ({self._imu_frame} -> {camera_frame}): "
                                   f"{np.round(R, 4).tolist()}")
        elif now > self._tf_deadline:
            self._rotation_source = "parameter (no tf)"
            self.get_logger().warning(f"no tf from {self._imu_frame} to {camera_frame} after 5 s: using "
                                      "parameter rotation_cam_imu")

    # -- diagnostics / shutdown ---------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        snap = self.stats.snapshot()
        snap["rotation_source"] = self._rotation_source
        snap["pending_frames"] = len(self.queue)
        last = self._last_imu_arrival
        snap["imu_silent_s"] = math.inf if last is None else time.monotonic() - last
        status = build_status(f"{self.get_fully_qualified_name()}: deblur", str(self.processor.device), snap)
        self.pub_diag.publish(build_array(status, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        # Also called after a failed __init__ (bad model, bad parameters): tear down what exists.
        if hasattr(self, "_stop"):
            self._stop.set()
            with self._cond:
                self._cond.notify_all()
            if self._worker.is_alive():
                self._worker.join(timeout=30.0)
        if hasattr(self, "_log_handler"):
            logging.getLogger("eggnet_ros").removeHandler(self._log_handler)
        super().destroy_node()


class StartupError(RuntimeError):
    """Configuration that cannot work (model missing/corrupt, CUDA required but absent)."""


def main(args: list[str] | None = None) -> int:
    """Console-script entry point; returns the process exit status (0 after SIGINT/SIGTERM).

    Handles the stop signals only from here on: a Ctrl-C during this module's imports (torch:
    seconds) still raises. :func:`eggnet_ros.ros.entry.main` covers that window too.
    """
    return run(args, ShutdownRequest())


def run(args: list[str] | None, stop: ShutdownRequest) -> int:
    """Start the node, spin until ``stop`` is requested, tear down; the process exit status.

    SIGINT/SIGTERM only set ``stop`` (see :mod:`eggnet_ros.ros.shutdown`), so start-up and
    teardown are never interrupted half-way; rclpy's own signal handlers are not installed (they
    would shut the context down under the node being built). The executor waits at most
    ``STOP_POLL_S`` at a time, which bounds the reaction to a stop signal. ``stop`` is closed
    for good on return: the process exits next.
    """
    if stop.requested:  # stopped during the imports: nothing to tear down
        stop.close(exiting=True)
        return 0
    node = executor = None
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        if not stop.requested:
            node = DeblurNode()
        if not stop.requested:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while not stop.requested and executor.context.ok():
                executor.spin_once(timeout_sec=STOP_POLL_S)
        if stop.requested:
            rclpy.logging.get_logger(NODE_NAME).info(f"{stop.signal_name}: shutting down")
    except (ParameterError, StartupError) as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        return 1
    except ExternalShutdownException:
        pass  # the context was shut down by someone else: a normal exit
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        stop.close(exiting=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
