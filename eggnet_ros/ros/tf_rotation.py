"""Optional tf2 lookup of the camera<-IMU rotation.

tf2_ros is part of every ROS install but not of the PyPI rclpy wheels, so it is imported lazily:
without it (or without a transform), the ``rotation_cam_imu`` parameter is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Unit quaternion (ROS x, y, z, w order) -> 3x3 rotation matrix."""
    q = np.array((x, y, z, w), dtype=np.float64)
    n = np.linalg.norm(q)
    if not n > 0:
        raise ValueError("zero quaternion")
    x, y, z, w = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


class TfRotationLookup:
    """Looks up R (omega_cam = R omega_imu) from tf: the transform IMU frame -> camera frame.

    ``lookup_transform(target=camera, source=imu)`` returns the pose of the IMU frame in the camera
    frame; its rotation maps IMU-frame vectors into camera-frame vectors, i.e. exactly R.
    """

    def __init__(self, node: Any) -> None:
        import tf2_ros

        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    def lookup(self, camera_frame: str, imu_frame: str) -> np.ndarray | None:
        """Latest rotation camera<-IMU, or None while tf does not know it yet."""
        from rclpy.time import Time

        try:
            tf = self._buffer.lookup_transform(camera_frame, imu_frame, Time())
        except Exception:  # tf2 raises a family of lookup exceptions; all mean "not yet"
            return None
        q = tf.transform.rotation
        return quaternion_to_matrix(q.x, q.y, q.z, q.w)


def make_tf_lookup(node: Any) -> TfRotationLookup | None:
    """A lookup when tf2_ros is importable, else None."""
    try:
        return TfRotationLookup(node)
    except ImportError:
        return None
