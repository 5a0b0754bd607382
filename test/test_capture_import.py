"""eggnet-capture import: a capture folder becomes a real rosbag2 the node and bag tools replay."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from eggnet_ros.bag.io import BagReader
from eggnet_ros.capture.cli import main
from eggnet_ros.capture.importer import import_capture, params_path_for
from eggnet_ros.capture.layout import CameraCalibration, FrameEntry, RigParams, read_capture, write_capture

W, H = 64, 48
R = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    frames = []
    for i, (stamp, exp) in enumerate([(10.00, 0.02), (10.05, 0.01), (10.10, 0.02)]):
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
        frames.append(FrameEntry(f"{i}.png", stamp, exp))
    t = np.arange(9.9, 10.3, 0.005)
    omega = np.stack([np.sin(t), np.cos(t), 0.1 * t], axis=1)
    cam = CameraCalibration(
        W, H, np.array([[50.0, 0, 31.5], [0, 52.0, 23.5], [0, 0, 1]]), np.array([0.01, -0.002, 0.0, 0.0, 0.0])
    )
    rig = RigParams(tuple(R.ravel()), -0.0123, 0.015, "end")
    write_capture(tmp_path, frames, t, omega, cam, rig)
    return tmp_path


def test_import_writes_a_bag_with_the_capture_contents(folder, tmp_path_factory):
    bag = tmp_path_factory.mktemp("bags") / "cap_bag"
    params_path = import_capture(folder, bag)
    assert params_path == params_path_for(bag) and params_path.is_file()
    cap = read_capture(folder)
    with BagReader(bag) as reader:
        topics = reader.topics
        assert topics["/camera/image_raw"].count == 3
        assert topics["/camera/camera_info"].count == 3
        assert topics["/imu"].count == cap.imu_t.size
        assert topics["/camera/exposure_time"].count == 3  # exposures differ between frames
        imu, _ = reader.imu_samples("imu")
        np.testing.assert_allclose(imu.t, cap.imu_t, atol=1e-9)
        np.testing.assert_allclose(imu.omega, cap.imu_omega, rtol=1e-8)
        records = list(reader.frames("camera/image_raw", "camera/camera_info", "imu", time_offset=-0.0123))
        # log times: a frame when its last row is read out (stamp = end here); gyro on the camera clock
        logs = {topic: [] for topic in ("/camera/image_raw", "/imu")}
        for topic, _, log_ns, _ in reader.messages(list(logs)):
            logs[topic].append(log_ns)
    for rec, entry in zip(records, cap.frames, strict=True):
        assert rec.stamp == pytest.approx(entry.stamp, abs=1e-9)
        expected = cv2.cvtColor(cv2.imread(str(folder / entry.file)), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(rec.image, expected)
        assert rec.encoding == "rgb8"
        np.testing.assert_allclose(rec.camera.K, cap.camera.K)
        np.testing.assert_allclose(rec.camera.D, [0.01, -0.002, 0.0, 0.0, 0.0])
    assert logs["/camera/image_raw"] == [round(f.stamp * 1e9) for f in cap.frames]
    assert logs["/imu"][0] == round((cap.imu_t[0] + 0.0123) * 1e9)


def test_params_yaml_is_accepted_by_the_node_parameter_validation(folder, tmp_path_factory):
    params_mod = pytest.importorskip("eggnet_ros.ros.params")
    bag = tmp_path_factory.mktemp("bags") / "b"
    doc = yaml.safe_load(import_capture(folder, bag).read_text())
    values = doc[params_mod.NODE_NAME]["ros__parameters"]
    assert values["stamp_convention"] == "end"
    assert values["time_offset"] == pytest.approx(-0.0123)
    assert values["readout_time"] == pytest.approx(0.015)
    assert values["exposure_time"] == pytest.approx(0.02)  # median
    assert values["exposure_time_topic"] == "camera/exposure_time"
    cfg = params_mod.build_config(values)
    timing = cfg.processor.motion.timing
    assert (timing.stamp_convention, timing.time_offset, timing.readout_time) == ("end", -0.0123, 0.015)
    np.testing.assert_allclose(cfg.processor.motion.rotation_cam_imu, R.ravel())


def test_cli_import_with_scale_and_errors(folder, tmp_path_factory, capsys):
    bag = tmp_path_factory.mktemp("bags") / "half"
    assert main(["import", str(folder), "--out", str(bag), "--scale", "0.5"]) == 0
    assert "ros__parameters" in capsys.readouterr().out
    with BagReader(bag) as reader:
        rec = next(reader.frames("camera/image_raw", "camera/camera_info", "imu"))
    assert rec.image.shape == (24, 32, 3)
    assert rec.camera.K[0, 0] == pytest.approx(25.0) and rec.camera.K[0, 2] == pytest.approx(15.5)
    assert main(["import", str(folder), "--out", str(bag)]) == 2  # exists already: clear error, no traceback
    assert main(["import", str(folder.parent / "nope"), "--out", str(bag) + "x"]) == 2


def test_gyro_starting_before_zero_on_the_camera_clock_shifts_log_times(tmp_path, tmp_path_factory):
    img = np.zeros((H, W, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    t = np.arange(0.0, 0.2, 0.01)
    cam = CameraCalibration(W, H, np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]]))
    # t_cam = t_imu - 0.05: the first gyro sample sits at -0.05 s on the camera clock
    rig = RigParams(time_offset=0.05, stamp_convention="start")
    write_capture(tmp_path, [FrameEntry("a.png", 0.02, 0.01)], t, np.zeros((t.size, 3)), cam, rig)
    bag = tmp_path_factory.mktemp("bags") / "shifted"
    import_capture(tmp_path, bag)
    with BagReader(bag) as reader:
        logs = {topic: log for topic, _, log, _ in reader.messages(["/imu", "/camera/image_raw"])}
        first_imu_log = min(log for topic, _, log, _ in reader.messages(["/imu"]))
    assert first_imu_log == 0
    assert logs["/camera/image_raw"] == round((0.02 + 0.01 + 0.05) * 1e9)  # frame end + shift
    write_capture(tmp_path, [FrameEntry("a.png", -0.5, 0.01)], t, np.zeros((t.size, 3)), cam, rig)
    with pytest.raises(ValueError, match="negative"):
        import_capture(tmp_path, tmp_path_factory.mktemp("bags") / "neg")
