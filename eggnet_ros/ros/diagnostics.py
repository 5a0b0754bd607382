"""NodeStats snapshot -> diagnostic_msgs/DiagnosticArray (one status per node, ~1 Hz)."""

from __future__ import annotations

import math

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

#: Below this fraction of frames with full IMU coverage the status turns WARN.
MIN_COVERAGE = 0.9


def _fmt(v: float | int | str) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def build_status(name: str, hardware_id: str, snap: dict[str, float | int | str]) -> DiagnosticStatus:
    """Level and message from the numbers: what an operator should look at first."""
    level, message = DiagnosticStatus.OK, "deblurring"
    coverage = snap.get("imu_coverage_fraction", math.nan)
    in_rate, out_rate = snap.get("input_rate_hz", 0.0), snap.get("output_rate_hz", 0.0)
    if not snap.get("frames_in"):
        level, message = DiagnosticStatus.WARN, "no images received"
    elif in_rate > 0 and snap.get("imu_rate_hz", 0.0) == 0:
        level, message = DiagnosticStatus.WARN, "images but no IMU samples"
    elif isinstance(coverage, float) and not math.isnan(coverage) and coverage < MIN_COVERAGE:
        level, message = DiagnosticStatus.WARN, f"only {coverage:.0%} of frames had full IMU coverage"
    elif in_rate > 0 and out_rate == 0 and snap.get("fallback_dropped", 0):
        level, message = DiagnosticStatus.WARN, "frames are being dropped"
    values = [KeyValue(key=k, value=_fmt(v)) for k, v in snap.items()]
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id, values=values)


def build_array(status: DiagnosticStatus, stamp) -> DiagnosticArray:
    arr = DiagnosticArray()
    arr.header.stamp = stamp
    arr.status = [status]
    return arr
