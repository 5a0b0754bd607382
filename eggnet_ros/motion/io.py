"""Small readers for gyro logs used by the CLIs, tests and benchmarks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .imu import ImuSamples, validate_imu

_LOG = logging.getLogger(__name__)
_COLUMNS = ("t", "wx", "wy", "wz")


def read_imu_csv(path: str | Path, max_gap: float = 0.05) -> ImuSamples:
    """Gyro samples from a CSV file with header ``t,wx,wy,wz`` (seconds, rad/s; any column order).

    The samples go through :func:`validate_imu`; what it fixed is logged as a warning, because
    a log file with duplicates or holes usually points at a recording problem worth knowing.
    """
    path = Path(path)
    with path.open() as fh:
        header = [h.strip().lower() for h in fh.readline().strip().split(",")]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: CSV header must contain {_COLUMNS}, missing {missing} (got {header})")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    if data.size == 0:
        data = np.zeros((0, len(header)))
    if data.shape[1] != len(header):
        raise ValueError(f"{path}: rows have {data.shape[1]} columns, header has {len(header)}")
    cols = [header.index(c) for c in _COLUMNS]
    samples, report = validate_imu(data[:, cols[0]], data[:, cols[1:]], max_gap=max_gap)
    if not report.clean:
        _LOG.warning("%s: %s", path, report)
    return samples


def write_imu_csv(path: str | Path, imu: ImuSamples) -> None:
    """Write ``imu`` as ``t,wx,wy,wz`` CSV (full float64 precision), the inverse of read_imu_csv."""
    data = np.column_stack([imu.t, imu.omega])
    np.savetxt(path, data, delimiter=",", header=",".join(_COLUMNS), comments="", fmt="%.17g")
