"""Capture folder -> a real rosbag2 recording (camera/image_raw, camera/camera_info, imu).

Why: once a phone capture is a bag, the node (``ros2 bag play``) and ``eggnet-bag eval`` replay it
exactly like a robot recording, through the same processing core, so real-sensor problems (sparse
gyro, rolling shutter, clock offset) are exercised end to end rather than in a side path.

Clocks in the bag: image and camera_info headers carry the frame stamps (camera clock), Imu
headers the gyro stamps (IMU clock), untouched; the calibration that relates them (rotation,
Kalibr offset, readout, stamp convention, exposure) is not in the messages, so it is written
to ``<bag>.params.yaml`` in the node's ``ros__parameters`` format and logged. *Log* times (what
replay timing follows) model a zero-latency recorder on one host clock: an image is logged when
its last row has been read out, a gyro sample at its time converted to the camera clock, so
replay delivers the gyro covering an exposure before (or with) the frame, as a live driver would.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from eggnet_ros.bag.io import BagWriter, Storage, s_to_ns
from eggnet_ros.motion import exposure_window

from .layout import Capture, read_capture
from .sync import capture_camera, load_frame

_LOG = logging.getLogger(__name__)

NODE_NAME = "eggnet_deblur"  # eggnet_ros.ros.params.NODE_NAME (not imported: rclpy-free module)
EXPOSURE_TOPIC = "camera/exposure_time"


@dataclass(frozen=True)
class ImportTopics:
    image: str = "camera/image_raw"
    camera_info: str = "camera/camera_info"
    imu: str = "imu"
    camera_frame: str = "camera_optical_frame"
    imu_frame: str = "imu_link"


def node_parameters(capture: Capture, exposure_topic: str | None = None) -> dict:
    """The node parameters that make it use this capture's calibration (``ros__parameters``).

    The node has one ``exposure_time``; when frames differ, the median is given and the per-frame
    values are published on ``exposure_topic`` (set as ``exposure_time_topic``).
    """
    exposures = np.array([f.exposure for f in capture.frames])
    params = {
        "stamp_convention": capture.rig.stamp_convention,
        "exposure_time": float(np.median(exposures)),
        "time_offset": float(capture.rig.time_offset),
        "readout_time": float(capture.rig.readout_time),
        "rotation_cam_imu": [float(v) for v in capture.rig.rotation_cam_imu],
        "use_tf": False,
    }
    if exposure_topic:
        params["exposure_time_topic"] = exposure_topic
    return {NODE_NAME: {"ros__parameters": params}}


def eval_command(capture: Capture, bag: str | Path, topics: ImportTopics | None = None) -> str:
    """The ``eggnet-bag eval`` command line that replays ``bag`` with this capture's calibration."""
    topics = topics or ImportTopics()
    p = node_parameters(capture)[NODE_NAME]["ros__parameters"]
    rot = " ".join(f"{v:.9g}" for v in p["rotation_cam_imu"])
    return (
        f"eggnet-bag eval {bag} --image-topic /{topics.image} --camera-info-topic /{topics.camera_info} "
        f"--imu-topic /{topics.imu} --sharp-topic '' --exposure-time {p['exposure_time']:.9g} "
        f"--stamp-convention {p['stamp_convention']} --time-offset {p['time_offset']:.9g} "
        f"--readout-time {p['readout_time']:.9g} --rotation-cam-imu {rot}"
    )


def params_path_for(bag: str | Path) -> Path:
    bag = Path(bag)
    return bag.with_name(bag.name + ".params.yaml")


def import_capture(
    folder: str | Path,
    out: str | Path,
    scale: float = 1.0,
    storage: Storage = "mcap",
    topics: ImportTopics | None = None,
) -> Path:
    """Write the capture ``folder`` as a rosbag2 at ``out``; returns the params YAML path.

    ``scale`` < 1 stores downscaled frames with the matching camera_info (full-resolution phone
    frames are 6 MB each as rgb8). Frames are ``rgb8`` ``sensor_msgs/Image``.
    """
    if not (0 < scale <= 1 and math.isfinite(scale)):
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    topics = topics or ImportTopics()
    capture = read_capture(folder)
    camera = capture_camera(capture, scale)
    exposures = np.array([f.exposure for f in capture.frames])
    varying = bool(np.ptp(exposures) > 1e-9)
    offset = capture.rig.time_offset
    if capture.imu_t.min() < 0 or min(f.stamp for f in capture.frames) < 0:
        raise ValueError("ROS stamps cannot be negative: shift frames.csv and imu.csv by the same constant")
    frame_ends = [
        exposure_window(f.stamp, capture.rig.timing(f.exposure, 0.0), capture.camera.height).end
        for f in capture.frames
    ]  # camera clock (no offset): when the last row has been read out
    # Log times share one clock (the camera's); shift them if the gyro starts "before zero" on it.
    log_shift = max(0.0, -(float(capture.imu_t.min()) - offset))

    with BagWriter(out, storage=storage) as writer:
        # Gyro: header = IMU clock; log time = same instant on the camera clock.
        for t, w in zip(capture.imu_t, capture.imu_omega, strict=True):
            log_ns = s_to_ns(t - offset + log_shift)
            writer.write_imu(topics.imu, s_to_ns(t), topics.imu_frame, w, log_time_ns=log_ns)
        for i, entry in enumerate(capture.frames):
            image = load_frame(capture, i, scale)
            stamp_ns, log_ns = s_to_ns(entry.stamp), s_to_ns(frame_ends[i] + log_shift)
            writer.write_camera_info(
                topics.camera_info, stamp_ns, topics.camera_frame, camera, log_time_ns=log_ns
            )
            if varying:
                _write_exposure(writer, EXPOSURE_TOPIC, stamp_ns, entry.exposure, log_ns)
            writer.write_image(topics.image, stamp_ns, topics.camera_frame, image, "rgb8", log_time_ns=log_ns)

    params = node_parameters(capture, EXPOSURE_TOPIC if varying else None)
    path = params_path_for(out)
    header = (
        f"# Node parameters for replaying {Path(out).name} (written by eggnet-capture import from\n"
        f"# {Path(folder).resolve()}):\n"
        f"#   ros2 run eggnet_ros eggnet_deblur_node --ros-args --params-file {path.name}\n"
        f"# Offline, through the same core:\n#   {eval_command(capture, out, topics)}\n"
    )
    path.write_text(header + yaml.safe_dump(params, sort_keys=False, default_flow_style=None))
    _LOG.info("wrote %s (%d frames at %dx%d, %d gyro samples) and %s", out, len(capture),
              camera.width, camera.height, capture.imu_t.size, path)
    return path


def _write_exposure(writer: BagWriter, topic: str, stamp_ns: int, exposure: float, log_ns: int) -> None:
    from eggnet_ros.bag.io import typestore

    msg = typestore().types["std_msgs/msg/Float64"](data=float(exposure))
    writer.write_message(topic, msg, log_ns)
