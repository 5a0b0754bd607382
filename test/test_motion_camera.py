"""CameraModel against OpenCV projections and hand-computed ROS camera_info scaling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eggnet_ros.motion import CameraModel

K = np.array([[800.0, 0.0, 330.2], [0.0, 790.0, 242.7], [0.0, 0.0, 1.0]])
MODELS = {
    "plumb_bob": np.array([-0.28, 0.09, 0.0012, -0.0007, -0.012]),
    "rational_polynomial": np.array([0.4, -0.2, 0.001, 0.0005, 0.05, 0.7, -0.1, 0.08]),
    "equidistant": np.array([-0.02, 0.015, -0.008, 0.002]),
}
#: Equidistant with zero coefficients is still a fisheye (r = f theta), not a pinhole.
MODELS_WITH_ZERO_FISHEYE = {**MODELS, "equidistant_zero": np.zeros(4)}
CRIT = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)


def _rays(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-0.45, 0.45, size=(n, 2))
    return np.column_stack([xy, np.ones(n)]) * rng.uniform(0.5, 3.0, size=(n, 1))


def _cv_project(model: str, rays: np.ndarray, D: np.ndarray) -> np.ndarray:
    pts = rays.reshape(-1, 1, 3)
    if model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(pts, np.zeros(3), np.zeros(3), K, D)
    else:
        uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K, D)
    return uv.reshape(-1, 2)


@pytest.mark.parametrize("name", sorted(MODELS_WITH_ZERO_FISHEYE))
def test_project_matches_opencv(name: str) -> None:
    model, D = name.replace("_zero", ""), MODELS_WITH_ZERO_FISHEYE[name]
    cam = CameraModel(660, 490, K, model, D)
    rays = _rays(200)
    np.testing.assert_allclose(cam.project(rays), _cv_project(model, rays, D), atol=1e-9)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_undistort_round_trip_through_opencv(model: str) -> None:
    cam = CameraModel(660, 490, K, model, MODELS[model])
    rng = np.random.default_rng(1)
    uv = rng.uniform([0, 0], [659, 489], size=(300, 2))
    rays = cam.undistort_pixels(uv)
    assert rays.shape == (300, 3) and np.all(rays[:, 2] == 1)
    np.testing.assert_allclose(_cv_project(model, rays, MODELS[model]), uv, atol=1e-6)
    # and against OpenCV's own inversion with tight criteria
    pts = uv.reshape(-1, 1, 2)
    if model == "equidistant":
        ref = cv2.fisheye.undistortPoints(pts, K, MODELS[model], criteria=CRIT)
    else:
        ref = cv2.undistortPoints(pts, K, MODELS[model], criteria=CRIT)
    np.testing.assert_allclose(rays[:, :2], ref.reshape(-1, 2), atol=1e-8)


def test_pinhole_round_trip_and_zero_coefficients_are_undistorted() -> None:
    cam = CameraModel(660, 490, K, "plumb_bob", np.zeros(5))
    assert not cam.is_distorted
    rays = _rays(20)
    uv = cam.project(rays)
    np.testing.assert_allclose(uv[:, 0], K[0, 0] * rays[:, 0] / rays[:, 2] + K[0, 2])
    np.testing.assert_allclose(cam.undistort_pixels(uv)[:, :2], rays[:, :2] / rays[:, 2:], atol=1e-12)


def test_camera_info_roi_and_binning_scale_intrinsics() -> None:
    k = [1000.0, 0.0, 960.5, 0.0, 1002.0, 540.5, 0.0, 0.0, 1.0]
    cam = CameraModel.from_camera_info(
        1920, 1080, k, [0.1, 0, 0, 0, 0], "plumb_bob", binning_x=2, binning_y=2, roi=(100, 50, 600, 800)
    )
    assert (cam.width, cam.height) == (400, 300)
    # ROI: cx 960.5 -> 860.5; 2x binning of pixel centres: (x + 0.5) / 2 - 0.5
    np.testing.assert_allclose(cam.K, [[500.0, 0, 430.0], [0, 501.0, 245.0], [0, 0, 1]])
    np.testing.assert_allclose(cam.D, [0.1, 0, 0, 0, 0])
    # a point's binned pixel is the mean of the 2x2 full-res pixel centres it covers
    full = CameraModel.from_camera_info(1920, 1080, k, [0.1, 0, 0, 0, 0], "plumb_bob")
    ray = np.array([[0.05, -0.03, 1.0]])
    u_full = full.project(ray)[0] - [100, 50]
    np.testing.assert_allclose(cam.project(ray)[0], (u_full - 0.5) / 2, atol=1e-9)
    # ROS semantics: zero-size ROI and binning 0 mean "none"
    same = CameraModel.from_camera_info(1920, 1080, k, (), "plumb_bob", roi=(0, 0, 0, 0))
    assert (same.width, same.height, same.distortion_model) == (1920, 1080, "none")


def test_rectified_uses_projection_matrix() -> None:
    p = [700.0, 0, 320, 0, 0, 705.0, 240, 0, 0, 0, 1, 0]
    cam = CameraModel.from_camera_info(640, 480, K.ravel(), MODELS["plumb_bob"], p=p, rectified=True)
    np.testing.assert_allclose(cam.K, [[700, 0, 320], [0, 705, 240], [0, 0, 1]])
    assert not cam.is_distorted
    raw = CameraModel.from_camera_info(640, 480, K.ravel(), MODELS["plumb_bob"], p=p)
    np.testing.assert_allclose(raw.K, K)
    assert raw.is_distorted


def test_resized_keeps_pixel_centres() -> None:
    cam = CameraModel(660, 490, K, "plumb_bob", MODELS["plumb_bob"])
    small = cam.resized(220, 245)  # x / 3, y / 2
    rays = _rays(10)
    uv, uv_s = cam.project(rays), small.project(rays)
    np.testing.assert_allclose(uv_s[:, 0], (uv[:, 0] + 0.5) / 3 - 0.5, atol=1e-9)
    np.testing.assert_allclose(uv_s[:, 1], (uv[:, 1] + 0.5) / 2 - 0.5, atol=1e-9)


def test_calibration_yaml(tmp_path) -> None:
    text = """image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [800.0, 0.0, 330.2, 0.0, 790.0, 242.7, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.28, 0.09, 0.0012, -0.0007, -0.012]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [700, 0, 320, 0, 0, 705, 240, 0, 0, 0, 1, 0]
"""
    path = tmp_path / "cam.yaml"
    path.write_text(text)
    cam = CameraModel.from_calibration_yaml(path)
    assert cam == CameraModel(640, 480, K, "plumb_bob", MODELS["plumb_bob"])
    import yaml

    assert CameraModel.from_calibration_yaml(yaml.safe_load(text)) == cam
    with pytest.raises(ValueError, match="camera_calibration"):
        CameraModel.from_calibration_yaml({"image_width": 3})


def test_bad_cameras_are_rejected() -> None:
    with pytest.raises(ValueError, match="uncalibrated"):
        CameraModel.from_camera_info(640, 480, np.zeros(9))
    with pytest.raises(ValueError, match="unsupported"):
        CameraModel(640, 480, K, "kannala_brandt_8")
    with pytest.raises(ValueError, match="at most"):
        CameraModel(640, 480, K, "equidistant", np.ones(5))


def _project_in_worker(cam: CameraModel, rays: np.ndarray) -> tuple[CameraModel, np.ndarray]:
    return cam, cam.project(rays)


def test_camera_travels_to_worker_processes() -> None:
    """DataLoader/ProcessPool workers (spawn) receive cameras by value, cache included."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    cam = CameraModel(660, 490, K, "rational_polynomial", MODELS["rational_polynomial"])
    cam.grid_geometry(np.arange(3.0), np.arange(2.0))  # populate the cache
    rays = _rays(5)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        back, projected = pool.submit(_project_in_worker, cam, rays).result(timeout=120)
    assert back == cam
    np.testing.assert_array_equal(projected, cam.project(rays))
