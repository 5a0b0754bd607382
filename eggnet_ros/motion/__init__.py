"""Gyro -> camera motion -> motion guidance vectors (pure numpy + OpenCV; never torch or ROS).

Pipeline: :func:`validate_imu` cleans raw samples into :class:`ImuSamples`;
:func:`exposure_window` turns a frame stamp into per-row exposure windows (stamp convention,
Kalibr time offset, rolling-shutter readout); :func:`frame_motion` integrates the gyro exactly
on SO(3) into rotations relative to each row's exposure centre; :func:`mgv_field` turns them
into the 6-channel MGV field of EggNet (channel meaning: :data:`MGV_CHANNELS`, documented in
:mod:`eggnet_ros.motion.mgv`) for a :class:`CameraModel`.
"""

from .camera import DISTORTION_MODELS, CameraModel
from .errors import MotionError
from .exposure import ExposureWindow, exposure_window
from .imu import ImuReport, ImuSamples, validate_imu
from .io import read_imu_csv, write_imu_csv
from .mgv import (
    DEFAULT_TOLERANCE_PX,
    MGV_CHANNELS,
    CoarseMGV,
    blur_extent_coarse,
    blur_extent_px,
    error_bound,
    mgv_coarse,
    mgv_field,
    pinhole_error_coefficient,
    upsample_mgv,
)
from .so3 import exp_so3, log_so3, skew
from .trajectory import FrameMotion, frame_motion, orientation_track

__all__ = [
    "DEFAULT_TOLERANCE_PX",
    "DISTORTION_MODELS",
    "MGV_CHANNELS",
    "CameraModel",
    "CoarseMGV",
    "ExposureWindow",
    "FrameMotion",
    "ImuReport",
    "ImuSamples",
    "MotionError",
    "blur_extent_coarse",
    "blur_extent_px",
    "error_bound",
    "exp_so3",
    "exposure_window",
    "frame_motion",
    "log_so3",
    "mgv_coarse",
    "mgv_field",
    "orientation_track",
    "pinhole_error_coefficient",
    "read_imu_csv",
    "skew",
    "upsample_mgv",
    "validate_imu",
    "write_imu_csv",
]
