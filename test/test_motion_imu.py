"""IMU sample validation, windowing and interpolation (hand-computed expectations)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eggnet_ros.motion import ImuSamples, read_imu_csv, validate_imu, write_imu_csv


def _omega(n: int) -> np.ndarray:
    return np.arange(3 * n, dtype=float).reshape(n, 3)


def test_validate_drops_nonfinite_rows() -> None:
    t = np.array([0.0, 0.01, 0.02, np.inf, 0.04, 0.05])
    w = _omega(6)
    w[2, 1] = np.nan
    imu, rep = validate_imu(t, w)
    assert rep.n_input == 6 and rep.n_nonfinite == 2 and rep.n_valid == 4
    np.testing.assert_array_equal(imu.t, [0.0, 0.01, 0.04, 0.05])
    np.testing.assert_array_equal(imu.omega[2], [12, 13, 14])
    assert not rep.clean


def test_validate_drops_duplicates_keeping_first_arrival() -> None:
    t = np.array([0.0, 0.01, 0.01, 0.02, 0.02, 0.02])
    imu, rep = validate_imu(t, _omega(6))
    assert rep.n_duplicates == 3 and rep.n_out_of_order == 0
    np.testing.assert_array_equal(imu.t, [0.0, 0.01, 0.02])
    np.testing.assert_array_equal(imu.omega[:, 0], [0, 3, 9])


def test_validate_sorts_out_of_order_samples() -> None:
    t = np.array([0.0, 0.02, 0.01, 0.03, 0.05, 0.04])
    imu, rep = validate_imu(t, _omega(6))
    assert rep.n_out_of_order == 2 and rep.n_duplicates == 0
    np.testing.assert_array_equal(imu.t, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    np.testing.assert_array_equal(imu.omega[:, 0], [0, 6, 3, 9, 15, 12])


def test_validate_reports_gaps_only_above_threshold() -> None:
    t = np.array([0.0, 0.01, 0.1, 0.11, 0.15, 0.3])
    _, rep = validate_imu(t, _omega(6), max_gap=0.04)
    assert rep.gaps == [(0.01, 0.1), (0.15, 0.3)]
    _, rep = validate_imu(t, _omega(6), max_gap=0.2)
    assert rep.gaps == [] and rep.clean


def test_validate_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        validate_imu(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError):
        validate_imu(np.zeros(3), np.zeros((4, 3)))


def test_samples_enforce_invariants() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        ImuSamples(np.array([0.0, 0.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        ImuSamples(np.array([0.0, np.nan]), np.zeros((2, 3)))
    imu = ImuSamples(np.array([0.0, 1.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        imu.t[0] = 5.0  # read-only


def test_window_covers_and_max_gap() -> None:
    t = np.array([0.0, 0.01, 0.02, 0.03, 0.1, 0.11, 0.12])
    imu = ImuSamples(t, _omega(7))
    w = imu.window(0.015, 0.025)
    np.testing.assert_array_equal(w.t, [0.01, 0.02, 0.03])
    np.testing.assert_array_equal(imu.window(0.015, 0.025, margin=2).t, [0.0, 0.01, 0.02, 0.03, 0.1])
    # a bound that hits a stamp exactly is bracketed by that stamp itself
    np.testing.assert_array_equal(imu.window(0.01, 0.02).t, [0.01, 0.02])
    assert imu.covers(0.0, 0.12) and not imu.covers(-0.001, 0.05) and not imu.covers(0.05, 0.13)
    assert imu.max_gap(0.011, 0.019) == pytest.approx(0.01)
    assert imu.max_gap(0.02, 0.05) == pytest.approx(0.07)
    assert imu.max_gap(0.105, 0.12) == pytest.approx(0.01)
    assert imu.max_gap(0.05, 0.2) == np.inf


def test_interpolate_is_linear_between_samples() -> None:
    imu = ImuSamples(
        np.array([0.0, 0.01, 0.03]), np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 0.0], [3.0, 0.0, 0.0]])
    )
    got = imu.interpolate(np.array([0.005, 0.02, 0.0225]))
    np.testing.assert_allclose(got, [[0.5, 1.0, 1.0], [2.0, 0.5, 0.0], [2.25, 0.375, 0.0]])


def test_rotated_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3))
    rot = Rotation.from_rotvec([0.3, -1.2, 0.7])
    imu = ImuSamples(np.arange(5) * 0.01, w).rotated(rot.as_matrix().ravel())
    np.testing.assert_allclose(imu.omega, rot.apply(w), atol=1e-12)
    with pytest.raises(ValueError):
        ImuSamples(np.arange(5) * 0.01, w).rotated(np.diag([1.0, 1.0, -1.0]))


def test_csv_round_trip_any_column_order(tmp_path) -> None:
    path = tmp_path / "imu.csv"
    path.write_text("wz,t,wx,wy\n3,0.0,1,2\n6,0.01,4,5\nnan,0.02,7,8\n9,0.005,7,8\n")
    imu = read_imu_csv(path)
    np.testing.assert_array_equal(imu.t, [0.0, 0.005, 0.01])
    np.testing.assert_array_equal(imu.omega, [[1, 2, 3], [7, 8, 9], [4, 5, 6]])
    out = tmp_path / "out.csv"
    write_imu_csv(out, imu)
    back = read_imu_csv(out)
    np.testing.assert_array_equal(back.t, imu.t)
    np.testing.assert_array_equal(back.omega, imu.omega)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,wx,wy,wz\n0,1,2,3\n")
    with pytest.raises(ValueError, match="header"):
        read_imu_csv(bad)
