"""Message <-> numpy conversions and the tf quaternion helper (no DDS needed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from eggnet_ros.ros.convert import (
    array_to_image,
    camera_info_to_model,
    image_to_array,
    sec_to_stamp,
    stamp_to_sec,
)
from eggnet_ros.ros.tf_rotation import quaternion_to_matrix


@pytest.mark.parametrize(("encoding", "shape", "dtype"),
                         [("rgb8", (5, 7, 3), np.uint8), ("mono16", (5, 7), np.uint16),
                          ("bayer_rggb8", (4, 6), np.uint8)])
def test_array_image_round_trip(encoding, shape, dtype) -> None:
    arr = np.random.default_rng(0).integers(0, np.iinfo(dtype).max, shape).astype(dtype)
    hdr = Header(stamp=sec_to_stamp(12.5), frame_id="cam")
    msg = array_to_image(arr, hdr, encoding)
    assert msg.step == shape[1] * arr.itemsize * (shape[2] if len(shape) == 3 else 1)
    assert msg.header.frame_id == "cam" and stamp_to_sec(msg.header.stamp) == 12.5
    np.testing.assert_array_equal(image_to_array(msg), arr)


def test_padded_rows_and_big_endian_are_decoded_by_hand() -> None:
    arr = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    msg = Image(height=3, width=4, encoding="mono16", is_bigendian=1, step=12)  # 4 padding bytes per row
    raw = np.zeros((3, 12), np.uint8)
    raw[:, :8] = arr.astype(">u2").view(np.uint8).reshape(3, 8)
    msg.data = raw.tobytes()
    out = image_to_array(msg)
    np.testing.assert_array_equal(out, arr)
    assert out.dtype == np.uint16


def test_truncated_and_unknown_images_raise() -> None:
    msg = Image(height=3, width=4, encoding="mono8", step=4)
    msg.data = bytes(5)
    with pytest.raises(ValueError, match="inconsistent"):
        image_to_array(msg)
    msg.encoding = "weird"
    with pytest.raises(ValueError):
        image_to_array(msg)


def test_stamp_conversion_carries() -> None:
    s = sec_to_stamp(3.9999999999)
    assert (s.sec, s.nanosec) == (4, 0)
    assert stamp_to_sec(sec_to_stamp(1700000000.123456789)) == pytest.approx(1700000000.123456789, abs=1e-6)


def test_camera_info_with_binning() -> None:
    info = CameraInfo(width=640, height=480, k=[500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
                      distortion_model="plumb_bob", d=[0.0] * 5, binning_x=2, binning_y=2)
    cam = camera_info_to_model(info)
    assert (cam.width, cam.height) == (320, 240)
    assert cam.K[0, 0] == pytest.approx(250.0)
    with pytest.raises(ValueError, match="uncalibrated"):
        camera_info_to_model(CameraInfo(width=640, height=480))


def test_quaternion_matrix_matches_scipy() -> None:
    for q in Rotation.random(5, random_state=1).as_quat():  # scipy uses (x, y, z, w) like ROS
        np.testing.assert_allclose(quaternion_to_matrix(*q), Rotation.from_quat(q).as_matrix(), atol=1e-12)


def test_diagnostic_levels_point_at_the_problem() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from eggnet_ros.ros.diagnostics import build_status

    ok = {"frames_in": 10, "input_rate_hz": 10.0, "output_rate_hz": 10.0, "imu_rate_hz": 200.0,
          "imu_coverage_fraction": 1.0}
    s = build_status("n", "cpu", ok)
    assert s.level == DiagnosticStatus.OK and {kv.key for kv in s.values} >= set(ok)
    assert build_status("n", "cpu", {"frames_in": 0}).message == "no images received"
    assert "no IMU" in build_status("n", "cpu", {**ok, "imu_rate_hz": 0.0}).message
    low = build_status("n", "cpu", {**ok, "imu_coverage_fraction": 0.5})
    assert low.level == DiagnosticStatus.WARN and "50%" in low.message
