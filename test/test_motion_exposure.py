"""Exposure windows: stamp conventions, Kalibr time offset and rolling-shutter rows (hand values)."""

from __future__ import annotations

import numpy as np
import pytest

from eggnet_ros.config import ExposureTiming, MotionConfig
from eggnet_ros.motion import ImuSamples, exposure_window, frame_motion

EXP, TR, H = 0.02, 0.03, 600


@pytest.mark.parametrize(
    ("convention", "first_row_start"),
    [("start", 10.0), ("middle", 10.0 - (EXP + TR) / 2), ("end", 10.0 - EXP - TR)],
)
def test_stamp_conventions_refer_to_whole_frame_span(convention: str, first_row_start: float) -> None:
    w = exposure_window(10.0, ExposureTiming(EXP, convention, 0.0, TR), H)
    assert w.start == pytest.approx(first_row_start, abs=1e-12)
    assert w.end == pytest.approx(first_row_start + TR + EXP, abs=1e-12)
    assert w.centre == pytest.approx(first_row_start + (TR + EXP) / 2, abs=1e-12)
    # row r starts r * readout / height after row 0
    rows = np.array([0, 1, 300, 599])
    np.testing.assert_allclose(w.row_start(rows), first_row_start + rows * TR / H, atol=1e-12)
    np.testing.assert_allclose(w.row_end(rows), first_row_start + rows * TR / H + EXP, atol=1e-12)
    np.testing.assert_allclose(w.row_centre(rows), first_row_start + rows * TR / H + EXP / 2, atol=1e-12)


def test_time_offset_follows_kalibr_sign() -> None:
    base = exposure_window(5.0, ExposureTiming(EXP, "start", 0.0, TR), H)
    shifted = exposure_window(5.0, ExposureTiming(EXP, "start", 0.0123, TR), H)
    # t_imu = t_cam + offset: the window moves later in the IMU clock by the offset
    assert shifted.start - base.start == pytest.approx(0.0123, abs=1e-12)
    assert shifted.end - base.end == pytest.approx(0.0123, abs=1e-12)


def test_shield_and_galaxy_nexus_timings_from_realdata_readme() -> None:
    # SHIELD: stamp = start of row 0; camera clock = gyro clock + 17.552017 ms -> offset negative.
    stamp, tr, exp = 100.0, 0.0244944, 0.02
    w = exposure_window(stamp, ExposureTiming(exp, "start", -0.017552017, tr), 1080)
    r = 700
    assert w.row_start(r) == pytest.approx(stamp - 0.017552017 + r * tr / 1080, abs=1e-12)
    # Galaxy Nexus: row r over [T - Texp - tr + off + r tr/H, T - tr + off + r tr/H].
    T, exp, tr, off, h = 1.0, 0.04999, 0.03283, -0.005684, 1536
    w = exposure_window(T, ExposureTiming(exp, "end", off, tr), h)
    assert w.row_start(r) == pytest.approx(T - exp - tr + off + r * tr / h, abs=1e-12)
    assert w.row_end(r) == pytest.approx(T - tr + off + r * tr / h, abs=1e-12)


def test_global_shutter_and_bad_timing() -> None:
    w = exposure_window(1.0, ExposureTiming(0.01, "middle", 0.0, 0.0), 480)
    assert w.row_start(0) == w.row_start(479) == pytest.approx(0.995)
    with pytest.raises(ValueError):
        exposure_window(1.0, ExposureTiming(0.0), 480)
    with pytest.raises(ValueError):
        exposure_window(1.0, ExposureTiming(0.01, "centre"), 480)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        exposure_window(1.0, ExposureTiming(0.01, readout_time=-1.0), 480)


def test_frame_motion_sample_times_follow_window() -> None:
    imu = ImuSamples(np.linspace(0, 2, 401), np.zeros((401, 3)))
    timing = ExposureTiming(EXP, "end", 0.004, TR)
    m = frame_motion(imu, 1.0, H, MotionConfig(timing=timing, n_samples=5), n_rows=3)
    first = 1.0 - EXP - TR + 0.004
    sensor_rows = np.array([0.0, (H - 1) / 2, H - 1.0])
    np.testing.assert_allclose(m.rows, (sensor_rows + 0.5) / H)
    expected = first + sensor_rows[:, None] * TR / H + np.linspace(0, EXP, 5)[None, :]
    np.testing.assert_allclose(m.times, expected, atol=1e-12)
    np.testing.assert_allclose(m.rotations, np.broadcast_to(np.eye(3), m.rotations.shape), atol=1e-15)


def test_offset_and_convention_move_the_motion_window() -> None:
    t = np.linspace(0, 2, 801)
    w = np.column_stack([np.sin(7 * t), 2 * np.cos(5 * t), 0.5 * t])  # time-varying: windows differ
    imu = ImuSamples(t, w)

    def rot(stamp: float, convention: str, offset: float) -> np.ndarray:
        timing = ExposureTiming(EXP, convention, offset, TR)
        return frame_motion(imu, stamp, H, MotionConfig(timing=timing), n_rows=4).rotations

    base = rot(1.0, "start", 0.0)
    # Kalibr offset: t_imu = t_cam + offset, i.e. the same as stamping offset later
    np.testing.assert_allclose(rot(1.0 - 0.013, "start", 0.013), base, atol=1e-12)
    # "end" stamps are (readout + exposure) later than "start" stamps of the same frame
    np.testing.assert_allclose(rot(1.0 + TR + EXP, "end", 0.0), base, atol=1e-12)
    np.testing.assert_allclose(rot(1.0 + (TR + EXP) / 2, "middle", 0.0), base, atol=1e-12)
    assert np.abs(rot(1.0, "start", 0.013) - base).max() > 1e-3
