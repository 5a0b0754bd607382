"""The two public phone recordings, read in place from ../shared/realdata (never copied).

Expected values come from the sources' own statements (shared/realdata/README.md): stamps,
sample counts, which SHIELD frames the gyro log covers (that fixes the sign of the time offset
independently of our derivation), the Galaxy Nexus row-exposure formula, and the blur size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eggnet_ros.capture.adapters import from_galaxy, from_shield, galaxy_rotation
from eggnet_ros.capture.layout import read_capture
from eggnet_ros.capture.offset_sweep import sweep_offset
from eggnet_ros.capture.overlay import render_overlay
from eggnet_ros.capture.sync import capture_imu, frame_sync
from eggnet_ros.motion import MotionError

REALDATA = Path(
    os.environ.get("EGGNET_REALDATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata")
)
SHIELD = REALDATA / "shield_tablet"
GALAXY = REALDATA / "galaxy_nexus"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(
        not (SHIELD.is_dir() and GALAXY.is_dir()),
        reason=f"real captures not found at {REALDATA} (set EGGNET_REALDATA to the shared/realdata folder)",
    ),
]


@pytest.fixture(scope="module")
def shield(tmp_path_factory):
    return read_capture(from_shield(SHIELD, tmp_path_factory.mktemp("shield")))


@pytest.fixture(scope="module")
def galaxy(tmp_path_factory):
    return read_capture(from_galaxy(GALAXY, tmp_path_factory.mktemp("galaxy")))


def test_shield_layout_values(shield):
    assert len(shield) == 7 and shield.frames[0].file == "0001.jpg"
    assert shield.frames[0].stamp == pytest.approx(767.700989, abs=1e-9)
    assert shield.frames[0].exposure == pytest.approx(0.020)
    assert shield.imu_t.size == 23  # gyroscope (type 4) lines only
    np.testing.assert_allclose(shield.imu_omega[0], [-3.1111047, -0.1292299, -0.5319997])
    assert shield.rig.stamp_convention == "start"
    assert shield.rig.readout_time == pytest.approx(0.0244944)
    # "camera-clock time = gyro stamp + 17.552017 ms"  =>  t_imu = t_cam - 0.017552017
    assert shield.rig.time_offset == pytest.approx(-0.017552017, abs=1e-12)
    # IMU -> camera: x and y swapped (sign: camera motion, proper rotation)
    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(shield.rig.rotation_matrix @ w, -np.array([2.0, 1.0, 3.0]))
    assert shield.camera.K[0, 0] == pytest.approx(1558.6899) and shield.camera.width == 1920


def test_shield_gyro_covers_frames_0002_to_0006_only(shield):
    """The README's coverage statement, which only holds with the derived sign of the offset."""
    imu = capture_imu(shield)
    covered = []
    for i in range(len(shield)):
        try:
            frame_sync(shield, i, imu)
            covered.append(shield.frames[i].file)
        except MotionError:
            pass
    assert covered == ["0002.jpg", "0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg"]


def test_shield_row_windows_and_blur_size(shield):
    imu = capture_imu(shield)
    sync = frame_sync(shield, 2, imu, scale=0.5, n_rows=1080)
    f = shield.frames[2]
    # row r exposed over [stamp + r tr / H, ... + exposure] on the camera clock, minus 17.55 ms
    for r in (0, 540, 1079):
        start = f.stamp + r * 0.0244944 / 1080 - 0.017552017
        assert sync.motion.times[r, 0] == pytest.approx(start, abs=1e-9)
        assert sync.motion.times[r, -1] == pytest.approx(start + 0.020, abs=1e-9)
    image, _, paths = render_overlay(shield, 2, scale=0.5, cols=8)
    length = np.linalg.norm(paths[:, -1] - paths[:, 0], axis=1)
    # "about 100 px at full resolution, 50 px at half", mostly horizontal
    assert 40 < np.median(length) < 65
    dx, dy = np.abs(paths[:, -1] - paths[:, 0]).T
    assert np.median(dx) > 5 * np.median(dy)
    assert image.shape == (540, 960, 3)


def test_shield_axis_mapping_beats_the_usual_mistakes(shield):
    """Gradient energy along the predicted streaks is far lower with the rig's mapping."""
    off = np.array([shield.rig.time_offset])
    frames = [2, 3]
    right = sweep_offset(shield, off, frames=frames, scale=0.25).scores[0]
    identity = sweep_offset(shield, off, frames=frames, scale=0.25, rotation=np.eye(3)).scores[0]
    assert right > 0.5 > identity


def test_galaxy_layout_values(galaxy):
    assert len(galaxy) == 1 and galaxy.imu_t.size == 100
    assert galaxy.frames[0].stamp == pytest.approx(0.683163086, abs=1e-12)
    assert galaxy.frames[0].exposure == pytest.approx(0.06)
    assert galaxy.rig.stamp_convention == "end" and galaxy.rig.time_offset == pytest.approx(-0.005684)
    np.testing.assert_allclose(galaxy.imu_t[:2], [0.0, 0.01083374], atol=1e-12)
    np.testing.assert_allclose(galaxy.imu_omega[1], [-0.00852691, 0.0447656, -0.00319792])
    # rotation by hand with scipy (x, y, z, w order): source numbers read as (w, x, y, z)
    w_, x_, y_, z_ = -0.0470602, 0.698666, 0.71093, -0.0650423
    rq = Rotation.from_quat([x_, y_, z_, w_]).as_matrix()
    np.testing.assert_allclose(galaxy.rig.rotation_matrix, -(rq @ np.diag([1.0, 1.0, -1.0])), atol=1e-6)
    assert np.linalg.det(galaxy.rig.rotation_matrix) == pytest.approx(1.0)
    np.testing.assert_allclose(galaxy_rotation("wxyz"), galaxy.rig.rotation_matrix)
    assert galaxy.camera.K[0, 2] == pytest.approx(1023.5) and galaxy.camera.K[1, 2] == pytest.approx(767.5)


def test_galaxy_row_window_matches_the_source_formula(galaxy):
    """Row r: [T_cap - T_exp - tr + offset + r tr/H, T_cap - tr + offset + r tr/H] (gyro time)."""
    sync = frame_sync(galaxy, 0, capture_imu(galaxy), n_rows=1536)
    t_cap, t_exp, tr, off, h = 0.683163086, 0.06, 0.03283, -0.005684, 1536
    for r in (0, 768, 1535):
        assert sync.motion.times[r, 0] == pytest.approx(t_cap - t_exp - tr + off + r * tr / h, abs=1e-9)
        assert sync.motion.times[r, -1] == pytest.approx(t_cap - tr + off + r * tr / h, abs=1e-9)


def test_auto_scale_brings_the_shield_blur_into_the_training_range(shield, galaxy):
    from eggnet_ros.capture.batch import TRAINING_BLUR_PX, auto_scale

    scale, blur = auto_scale(shield, target_blur_px=20.0)
    assert 80 < blur < 160  # "about 100 px at full resolution" (95th percentile over the grid)
    assert scale * blur == pytest.approx(20.0) and scale * blur <= TRAINING_BLUR_PX[1]
    g_scale, g_blur = auto_scale(galaxy, target_blur_px=20.0)
    assert g_scale == 1.0 and g_blur < 20.0  # "mild blur, a few pixels"
