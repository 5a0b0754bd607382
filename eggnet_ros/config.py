"""Configuration dataclasses: the one place where defaults live.

The node declares its ROS parameters from these defaults, the CLIs build their argparse
defaults from them, and ``config/deblur.yaml`` mirrors them for users. Keeping them here (and
ROS-free) means live and offline processing cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StampConvention = Literal["start", "middle", "end"]
FallbackPolicy = Literal["passthrough", "drop"]

IDENTITY_3X3: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class ExposureTiming:
    """How a frame's stamp relates to the time its rows were exposed, in the IMU clock.

    The frame's exposure spans ``[first row start, last row end]`` with
    ``last row end = first row start + readout_time + exposure_time``; ``stamp_convention`` says
    which instant of that span the stamp marks (``start``: row 0 starts exposing, as Android and
    most drivers stamp; ``end``: the last row finishes; ``middle``: the midpoint). The camera-IMU
    offset follows Kalibr (``t_imu = t_cam + time_offset``). ``readout_time`` is the
    rolling-shutter delay: row r starts ``r * readout_time / height`` after row 0 (0 = global
    shutter).
    """

    exposure_time: float = 0.02
    stamp_convention: StampConvention = "middle"
    time_offset: float = 0.0
    readout_time: float = 0.0


@dataclass(frozen=True)
class MotionConfig:
    """Gyro -> rotation -> MGV settings."""

    timing: ExposureTiming = field(default_factory=ExposureTiming)
    #: Row-major camera<-IMU rotation (omega_cam = R @ omega_imu), camera optical frame (REP 103).
    rotation_cam_imu: tuple[float, ...] = IDENTITY_3X3
    #: Number of sub-exposure sample times (paper: N = 13).
    n_samples: int = 13
    #: IMU gaps longer than this (s) make the frame's motion unreliable.
    max_imu_gap: float = 0.05


@dataclass(frozen=True)
class ProcessorConfig:
    """Settings of the ROS-free processing core (frame + IMU + camera -> deblurred frame)."""

    motion: MotionConfig = field(default_factory=MotionConfig)
    #: Path to a .safetensors file (its JSON card beside it) or a shipped model name; "auto" =
    #: eggnet_full on CUDA (eggnet_lite if not installed), eggnet_lite on CPU.
    model: str = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: "auto" = bf16 autocast on CUDA, fp32 on CPU.
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    #: "auto" picks the fastest backend validated on this machine.
    deform_backend: Literal["auto", "torchvision", "pytorch", "triton"] = "auto"
    #: Fail at start-up instead of falling back to CPU when CUDA is requested but missing.
    require_cuda: bool = False
    #: Skip the network (pass the frame through) when the longest MGV is below this (px).
    min_blur_px: float = 0.5
    #: What to publish when a frame cannot be deblurred (no IMU coverage, bad input...).
    fallback: FallbackPolicy = "passthrough"


@dataclass(frozen=True)
class NodeConfig:
    """Settings of the live node on top of the processing core (synchronisation, buffers, topics)."""

    processor: ProcessorConfig = field(default_factory=ProcessorConfig)
    #: Longest time (s) a frame waits for IMU samples covering the end of its exposure window
    #: before it is handled by ``fallback``; bounds the latency added by synchronisation.
    max_wait: float = 0.1
    #: Frames waiting for IMU/the model; when full, the oldest is dropped (newest frame wins).
    queue_size: int = 2
    #: Seconds of gyro history kept; must hold the exposure window of a frame that arrives late
    #: (camera latency), so well above exposure + readout + |time_offset|.
    imu_buffer_seconds: float = 2.0
    #: Optional std_msgs/Float64 topic with the current exposure time in seconds (e.g. from the
    #: camera driver); empty = use the fixed ``exposure_time``.
    exposure_time_topic: str = ""
    #: Look up the camera<-IMU rotation with tf2 (IMU frame -> image frame) when tf2_ros exists.
    use_tf: bool = True
    #: A stamp this far (s) behind the newest one means time jumped backwards (bag loop): reset.
    time_jump_threshold: float = 0.5
