"""sensor_msgs <-> numpy / core types (the only place that knows message field layouts).

Images are decoded with rosbags-image (``message_to_cvimage`` works on rclpy messages: it reads
``msg.data`` through the buffer protocol, zero-copy) when rows are tightly packed; rows padded
by the driver (``step`` > width * pixel size) are cut out here, because rosbags-image ignores
``step``. Encoding a numpy array back into an Image is a few lines, so no cv_bridge.
"""

from __future__ import annotations

import array
import sys

import numpy as np
from builtin_interfaces.msg import Time
from rosbags.image import message_to_cvimage
from rosbags.image.image import ImageFormatError, to_cvtype
from sensor_msgs.msg import CameraInfo, Image, Imu
from std_msgs.msg import Header

from eggnet_ros.motion import CameraModel


def stamp_to_sec(stamp: Time) -> float:
    """``builtin_interfaces/Time`` -> float seconds (float64 keeps ~0.2 us at epoch scale)."""
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    sec = int(np.floor(t))
    nanosec = round((t - sec) * 1e9)
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=sec, nanosec=nanosec)


def image_to_array(msg: Image) -> np.ndarray:
    """Image message -> (H, W) or (H, W, C) array in the message's encoding (no colour conversion).

    Raises ``ValueError`` for an unknown encoding or a truncated/inconsistent buffer.
    """
    try:
        _, _, typestr, nchan = to_cvtype(msg.encoding)
    except ImageFormatError as exc:
        raise ValueError(str(exc)) from None
    dtype = np.dtype(typestr)
    row = msg.width * nchan * dtype.itemsize
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"image buffer inconsistent: {msg.width}x{msg.height} {msg.encoding} needs step >= "
                         f"{row} and step*height bytes; got step {msg.step}, {len(msg.data)} bytes")
    if msg.step == row:
        return message_to_cvimage(msg)
    raw = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    arr = np.ascontiguousarray(raw[:, :row]).view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    arr = arr.astype(dtype, copy=False)
    return arr.reshape((msg.height, msg.width) if nchan == 1 else (msg.height, msg.width, nchan))


def array_to_image(arr: np.ndarray, header: Header, encoding: str) -> Image:
    """Array -> Image with ``header`` (stamp, frame_id) and ``encoding`` unchanged, rows packed."""
    arr = np.ascontiguousarray(arr)
    msg = Image()
    msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big" and arr.dtype.itemsize > 1)
    msg.step = int(arr.strides[0])
    data = array.array("B")
    data.frombytes(arr.data.cast("B"))  # one copy, no per-element checks
    msg.data = data
    return msg


def camera_info_to_model(msg: CameraInfo) -> CameraModel:
    """CameraInfo -> CameraModel of the published (binned/ROI-cropped) image; raises ValueError."""
    return CameraModel.from_camera_info(
        msg.width, msg.height, list(msg.k), list(msg.d), msg.distortion_model or "plumb_bob", list(msg.p),
        msg.binning_x, msg.binning_y, msg.roi)


def imu_to_sample(msg: Imu) -> tuple[float, np.ndarray]:
    """Imu -> (stamp s, angular velocity rad/s in the message's frame, REP 145)."""
    w = msg.angular_velocity
    return stamp_to_sec(msg.header.stamp), np.array((w.x, w.y, w.z), dtype=np.float64)
