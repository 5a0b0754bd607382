"""When each image row was exposed, in the IMU clock.

The frame span runs from the start of row 0's exposure to the end of the last row's exposure:
``[start, start + readout_time + exposure_time]``. ``readout_time`` is the rolling-shutter
delay from row 0 to the (virtual) row ``height``, i.e. ``height`` line times, so row ``r``
starts ``r * readout_time / height`` after row 0 (0 = global shutter). Defining the span with
the full ``readout_time`` (not ``(height-1)/height`` of it) matches how phone pipelines state
their timing, e.g. the Galaxy Nexus capture in shared/realdata, whose stamp is
``start + readout + exposure``.

Stamp conventions refer to this whole-frame span: ``"start"`` = start of row 0's exposure
(SHIELD tablet, most V4L2 drivers), ``"end"`` = end of the frame (Galaxy Nexus, some Android
HALs), ``"middle"`` = the span's midpoint. The camera-IMU offset follows Kalibr:
``t_imu = t_cam + time_offset`` (so the SHIELD data, whose camera clock is 17.55 ms ahead of the
gyro clock, has ``time_offset = -0.017552``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eggnet_ros.config import ExposureTiming

_CONVENTIONS = ("start", "middle", "end")


@dataclass(frozen=True)
class ExposureWindow:
    """A frame's exposure timing in the IMU clock (see module docstring for the definitions)."""

    first_row_start: float
    exposure_time: float
    readout_time: float
    height: int

    def __post_init__(self) -> None:
        if not (np.isfinite(self.first_row_start) and self.exposure_time > 0 and self.readout_time >= 0):
            raise ValueError(
                f"bad exposure window: start={self.first_row_start}, exposure={self.exposure_time}, "
                f"readout={self.readout_time}"
            )
        if int(self.height) < 1:
            raise ValueError("height must be >= 1")

    @property
    def line_time(self) -> float:
        """Delay between the starts of consecutive rows (s)."""
        return self.readout_time / self.height

    def row_start(self, row: np.ndarray | float) -> np.ndarray | float:
        """Start of exposure of ``row`` (scalar or array, fractional rows allowed)."""
        return self.first_row_start + np.asarray(row, dtype=np.float64) * self.line_time

    def row_end(self, row: np.ndarray | float) -> np.ndarray | float:
        """End of exposure of ``row``."""
        return self.row_start(row) + self.exposure_time

    def row_centre(self, row: np.ndarray | float) -> np.ndarray | float:
        """Middle of ``row``'s exposure: the instant the deblurred row should show."""
        return self.row_start(row) + 0.5 * self.exposure_time

    @property
    def start(self) -> float:
        """Start of row 0's exposure."""
        return float(self.first_row_start)

    @property
    def end(self) -> float:
        """End of the frame span: ``start + readout_time + exposure_time``."""
        return float(self.first_row_start + self.readout_time + self.exposure_time)

    @property
    def centre(self) -> float:
        """Midpoint of the frame span (for a global shutter, the exposure centre)."""
        return 0.5 * (self.start + self.end)


def exposure_window(stamp: float, timing: ExposureTiming, height: int) -> ExposureWindow:
    """The exposure window of a frame stamped ``stamp`` (camera clock), in the IMU clock.

    The stamp is first placed in the frame span according to ``timing.stamp_convention``
    (whole-frame span, see module docstring), then shifted by ``timing.time_offset``
    (Kalibr: ``t_imu = t_cam + time_offset``).
    """
    if timing.stamp_convention not in _CONVENTIONS:
        raise ValueError(f"stamp_convention must be one of {_CONVENTIONS}, got {timing.stamp_convention!r}")
    if not timing.exposure_time > 0:
        raise ValueError(f"exposure_time must be > 0, got {timing.exposure_time}")
    if not timing.readout_time >= 0:
        raise ValueError(f"readout_time must be >= 0, got {timing.readout_time}")
    span = timing.readout_time + timing.exposure_time
    back = {"start": 0.0, "middle": 0.5 * span, "end": span}[timing.stamp_convention]
    return ExposureWindow(
        first_row_start=float(stamp) - back + timing.time_offset,
        exposure_time=float(timing.exposure_time),
        readout_time=float(timing.readout_time),
        height=int(height),
    )
