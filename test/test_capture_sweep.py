"""Time-offset sweep and overlay on synthetic recordings with a known calibration.

Frames are rendered by the training-data renderer (eggnet_ros.data.synth: its own rotation
integration and warping) from a built-in photo and a gyro trace whose direction turns, so the
sweep is tested against an independent ground truth, not against its own geometry.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from eggnet_ros.capture.adapters import shield_rotation
from eggnet_ros.capture.layout import CameraCalibration, RigParams, read_capture
from eggnet_ros.capture.offset_sweep import anisotropy, streak_axes, sweep_offset, write_sweep
from eggnet_ros.capture.overlay import draw_streaks, render_overlay
from eggnet_ros.capture.synthetic import synth_capture, turning_shake
from eggnet_ros.motion import ImuSamples

IMAGES = Path(__file__).resolve().parents[1] / "eggnet_ros" / "data" / "images"
W, H = 320, 240
R = shield_rotation()


def _sharp(name: str = "brick.png") -> np.ndarray:
    img = cv2.cvtColor(cv2.imread(str(IMAGES / name)), cv2.COLOR_BGR2RGB)
    crop = img[: img.shape[0] * 3 // 4 // 4 * 4, : img.shape[1]]
    return cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _camera() -> CameraCalibration:
    return CameraCalibration(W, H, np.array([[300.0, 0, (W - 1) / 2], [0, 300.0, (H - 1) / 2], [0, 0, 1]]))


def _capture(tmp_path: Path, omega_cam: np.ndarray, t: np.ndarray, offset: float, image: str = "brick.png"):
    imu = ImuSamples(t, omega_cam @ R)  # omega_imu = R^T omega_cam, row-wise
    truth = RigParams(tuple(R.ravel()), offset, 0.02, "start")
    written = RigParams(tuple(R.ravel()), 0.0, 0.02, "start")
    synth_capture(tmp_path, _sharp(image), imu, [0.1, 0.2, 0.3], 0.02, _camera(), truth, written,
                  noise=0.003, renderer="data")
    return read_capture(tmp_path)


@pytest.mark.parametrize(
    ("true_offset", "image"), [(0.0123, "brick.png"), (-0.0074, "gravel.png"), (0.008, "camera.png")]
)
def test_sweep_recovers_a_known_offset_within_2ms(tmp_path, true_offset, image):
    t = np.arange(0.0, 0.6, 1 / 200)  # 200 Hz gyro
    cap = _capture(tmp_path, turning_shake(t, 2.0, 6.0, 0.3), t, true_offset, image)
    offsets = np.arange(-0.03, 0.0301, 0.001)
    res = sweep_offset(cap, offsets, scale=1.0)
    assert abs(res.best - true_offset) < 0.002, (res.best, true_offset)
    assert res.contains(true_offset)
    assert res.width < 0.03  # the optimum is a peak, not the whole range
    write_sweep(res, tmp_path / "s.csv", tmp_path / "s.png", reference=true_offset)
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[0] == "offset_ms,score" and len(rows) == offsets.size + 1
    assert cv2.imread(str(tmp_path / "s.png")) is not None


def test_constant_rotation_rate_gives_a_flat_curve_and_a_wide_optimum(tmp_path):
    t = np.arange(0.0, 0.6, 1 / 200)
    omega = np.tile([0.2, 2.0, 0.0], (t.size, 1))  # steady pan: same streak at every offset
    cap = _capture(tmp_path, omega, t, 0.01)
    offsets = np.arange(-0.03, 0.0301, 0.002)
    res = sweep_offset(cap, offsets, scale=1.0)
    assert np.ptp(res.scores) < 0.05
    assert res.low == offsets[0] and res.high == offsets[-1]


def test_overlay_streaks_follow_the_rendered_blur_and_wrong_axes_score_lower(tmp_path):
    t = np.arange(0.0, 0.6, 1 / 200)
    cap = _capture(tmp_path, turning_shake(t, 2.0, 6.0, 0.3), t, 0.0)
    image, _, paths = render_overlay(cap, 1, cols=6)
    assert image.shape == (H, W, 3)
    # streak lengths by hand at the image centre: |omega| * exposure * f within the RS spread
    _, length = streak_axes(paths)
    rate = np.linalg.norm(turning_shake(np.array([0.2]), 2.0, 6.0, 0.3)[0, :2])
    assert np.median(length) == pytest.approx(rate * 0.02 * 300.0, rel=0.35)
    right = sweep_offset(cap, np.array([0.0]), scale=1.0).scores[0]
    wrong = sweep_offset(cap, np.array([0.0]), scale=1.0, rotation=np.eye(3)).scores[0]
    assert right > 0.2 and right > wrong + 0.2


def test_anisotropy_of_hand_made_tensors():
    # gradients only along x: a streak along y loses nothing (+1), a streak along x everything (-1)
    J = np.array([[[1.0, 0.0], [0.0, 0.0]]] * 3)
    dirs = np.array([[0.0, 1.0], [1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)]])
    np.testing.assert_allclose(anisotropy(J, dirs), [1.0, -1.0, 0.0], atol=1e-12)
    paths = np.stack([np.stack([np.linspace(0, 10, 5), np.linspace(0, 5, 5)], 1)])
    d, length = streak_axes(paths)
    np.testing.assert_allclose(np.abs(d[0]), np.array([2.0, 1.0]) / np.sqrt(5.0), atol=1e-12)
    assert length[0] == pytest.approx(np.hypot(10, 5))


def test_draw_streaks_marks_start_and_end_pixels():
    img = np.zeros((40, 60, 3), np.uint8)
    path = np.array([[[10.0, 20.0], [30.0, 20.0], [50.0, 20.0]]])
    out = draw_streaks(img, path)
    assert out[20, 10, 1] > 150 and out[20, 10, 0] < 100  # green start
    assert out[20, 50, 0] > 150 and out[20, 50, 1] < 100  # red end
    assert img.max() == 0  # input untouched


def test_cli_overlay_sweep_and_axis_check(tmp_path, capsys):
    from eggnet_ros.capture.cli import main

    t = np.arange(0.0, 0.6, 1 / 200)
    _capture(tmp_path / "cap", turning_shake(t, 2.0, 6.0, 0.3), t, 0.004)
    cap = str(tmp_path / "cap")
    assert main(["overlay", cap, "--frame", "1", "--gain", "2", "--out", str(tmp_path / "o.png")]) == 0
    assert cv2.imread(str(tmp_path / "o.png")).shape == (H, W, 3)
    args = ["sweep-offset", cap, "--from-ms", "-10", "--to-ms", "10", "--step-ms", "2", "--scale", "1"]
    assert main([*args, "--csv", str(tmp_path / "s.csv"), "--png", str(tmp_path / "s.png")]) == 0
    assert "best offset" in capsys.readouterr().out
    assert main(["check-axes", cap, "--scale", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    scores = {line[:32].strip(): float(line.split("score")[1]) for line in lines}
    assert scores["rig.yaml"] > scores["identity"]
    assert main(["overlay", str(tmp_path / "missing"), "--out", str(tmp_path / "x.png")]) == 2
