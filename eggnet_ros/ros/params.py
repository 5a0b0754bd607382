"""The node's ROS parameters: one table mapping each to a field of :class:`NodeConfig`.

Defaults come from the config dataclasses (never restated here), so ``config/deblur.yaml``, the
CLIs and the node cannot drift apart; ``test_node_params`` checks the YAML against this table.
Every parameter is declared with a :class:`ParameterDescriptor` (description, range) and
validated both at start-up (a bad YAML stops the node with the reason) and on live changes
(rejected with the reason, the running configuration untouched).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from eggnet_ros.config import NodeConfig
from eggnet_ros.core.validation import rotation_problem

NODE_NAME = "eggnet_deblur"


class ParameterError(ValueError):
    """A parameter value is invalid (message names the parameter and the reason)."""


def _odd(value: int) -> str | None:
    return None if value % 2 == 1 else f"must be odd (a centre sample is needed), got {value}"


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: where it lives in NodeConfig and what values are legal."""

    name: str
    path: tuple[str, ...]  # attribute path inside NodeConfig
    description: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False
    check: Callable[[Any], str | None] | None = None
    #: Field in ProcessorConfig/MotionConfig/ExposureTiming (for DeblurProcessor.update), if any.
    processor_field: str | None = None

    def default(self, config: NodeConfig | None = None) -> Any:
        obj: Any = config or NodeConfig()
        for p in self.path:
            obj = getattr(obj, p)
        return list(obj) if isinstance(obj, tuple) else obj

    def coerce(self, value: Any) -> Any:
        """Accept integers where doubles are expected (YAML ``1`` vs ``1.0``); raise on other types."""
        default = self.default()
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(default, list):
            if isinstance(value, str) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                 for v in value):
                raise ParameterError(f"parameter '{self.name}' must be a list of numbers, got {value!r}")
            return tuple(float(v) for v in value)
        if type(value) is not type(default):
            raise ParameterError(f"parameter '{self.name}' must be of type {type(default).__name__}, "
                                 f"got {value!r}")
        return value

    def validate(self, value: Any) -> str | None:
        """None when ``value`` is legal, else the reason."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be finite, got {value}"
        if self.lo is not None and value < self.lo:
            return f"must be >= {self.lo}, got {value}"
        if self.hi is not None and value > self.hi:
            return f"must be <= {self.hi}, got {value}"
        if self.choices and value not in self.choices:
            return f"must be one of {list(self.choices)}, got {value!r}"
        return self.check(value) if self.check else None

    def descriptor(self) -> ParameterDescriptor:
        default = self.default()
        ptype = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                 float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
                 list: ParameterType.PARAMETER_DOUBLE_ARRAY}[type(default)]
        # Doubles accept integers too (coerce()), so their type is checked by us, not by rclpy.
        d = ParameterDescriptor(name=self.name, type=ptype, description=self.description,
                                read_only=self.read_only,
                                dynamic_typing=ptype in (ParameterType.PARAMETER_DOUBLE,
                                                         ParameterType.PARAMETER_DOUBLE_ARRAY))
        constraints = []
        if self.choices:
            constraints.append(f"one of {', '.join(self.choices)}")
        if self.lo is not None or self.hi is not None:
            if ptype == ParameterType.PARAMETER_INTEGER:
                d.integer_range = [IntegerRange(from_value=int(self.lo), to_value=int(self.hi), step=0)]
            elif ptype == ParameterType.PARAMETER_DOUBLE:
                rng = FloatingPointRange(from_value=float(self.lo), to_value=float(self.hi), step=0.0)
                d.floating_point_range = [rng]
        if self.check is rotation_problem:
            constraints.append("9 values, row-major rotation matrix")
        if self.read_only:
            constraints.append("read-only after start-up")
        d.additional_constraints = "; ".join(constraints)
        return d


P, M, T = ("processor",), ("processor", "motion"), ("processor", "motion", "timing")

PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("model", (*P, "model"), "Model weights: a .safetensors path (JSON card beside it), a shipped "
              "model name looked up in the package's models/ directory, or auto = eggnet_full on CUDA, "
              "eggnet_lite on CPU.", read_only=True),
    ParamSpec("device", (*P, "device"), "Inference device; auto = CUDA when available, else CPU.",
              choices=("auto", "cpu", "cuda"), read_only=True),
    ParamSpec("precision", (*P, "precision"), "Inference precision; auto = bf16 autocast on CUDA, fp32 on "
              "CPU.",
              choices=("auto", "fp32", "bf16", "fp16"), read_only=True),
    ParamSpec("deform_backend", (*P, "deform_backend"), "Deformable-convolution implementation.",
              choices=("auto", "torchvision", "pytorch", "triton"), read_only=True),
    ParamSpec("require_cuda", (*P, "require_cuda"), "Exit at start-up instead of falling back to CPU when "
              "CUDA is requested but unavailable.", read_only=True),
    ParamSpec("stamp_convention", (*T, "stamp_convention"), "Which instant of the frame's exposure span the "
              "image stamp marks: start (first row starts), middle, or end (last row ends).",
              choices=("start", "middle", "end"), processor_field="stamp_convention"),
    ParamSpec("exposure_time", (*T, "exposure_time"), "Exposure time per row (s); overridden per frame by "
              "exposure_time_topic when that is set and publishing.", lo=1e-6, hi=1.0,
              processor_field="exposure_time"),
    ParamSpec("exposure_time_topic", ("exposure_time_topic",), "Optional std_msgs/Float64 topic carrying the "
              "current exposure time in seconds (e.g. relayed from the camera driver); empty = fixed "
              "exposure_time.", read_only=True),
    ParamSpec("time_offset", (*T, "time_offset"), "Camera-IMU clock offset (s), Kalibr convention: "
              "t_imu = t_cam + time_offset.", lo=-1.0, hi=1.0, processor_field="time_offset"),
    ParamSpec("readout_time", (*T, "readout_time"), "Rolling-shutter readout time (s) from the first to the "
              "last row starting exposure; 0 = global shutter.", lo=0.0, hi=0.5,
              processor_field="readout_time"),
    ParamSpec("rotation_cam_imu", (*M, "rotation_cam_imu"), "Row-major camera<-IMU rotation "
              "(omega_cam = R omega_imu, camera optical frame). Used when use_tf is false or tf2 has no "
              "transform from the IMU frame to the image frame.", check=rotation_problem,
              processor_field="rotation_cam_imu"),
    ParamSpec("use_tf", ("use_tf",), "Look up the camera<-IMU rotation with tf2 (IMU message frame -> image "
              "frame) when tf2_ros is installed; falls back to rotation_cam_imu.", read_only=True),
    ParamSpec("n_samples", (*M, "n_samples"), "Sub-exposure sample times per row for the MGVs (paper: 13).",
              lo=3, hi=101, check=_odd, processor_field="n_samples"),
    ParamSpec("max_imu_gap", (*M, "max_imu_gap"), "IMU gaps longer than this (s) inside a frame's exposure "
              "window make the frame fall back.", lo=1e-4, hi=1.0, processor_field="max_imu_gap"),
    ParamSpec("min_blur_px", (*P, "min_blur_px"), "Skip the network and pass the frame through when the "
              "predicted blur streak is shorter than this (px).", lo=0.0, hi=1000.0,
              processor_field="min_blur_px"),
    ParamSpec("fallback", (*P, "fallback"), "What to publish for a frame that cannot be deblurred (no IMU "
              "coverage, bad input, unsupported encoding): passthrough = the input image, drop = nothing.",
              choices=("passthrough", "drop"), processor_field="fallback"),
    ParamSpec("max_wait", ("max_wait",), "Longest wait (s) for IMU samples covering a frame's exposure "
              "window (and for the first camera_info) before the frame falls back.", lo=0.0, hi=5.0),
    ParamSpec("queue_size", ("queue_size",), "Frames waiting for IMU/the model; when full the oldest is "
              "dropped (newest frame wins).", lo=1, hi=100, read_only=True),
    ParamSpec("imu_buffer_seconds", ("imu_buffer_seconds",), "Seconds of gyro history kept.",
              lo=0.1, hi=60.0, read_only=True),
    ParamSpec("time_jump_threshold", ("time_jump_threshold",), "A stamp this far (s) behind the newest one "
              "means time jumped backwards (bag loop): buffers reset.", lo=0.01, hi=60.0, read_only=True),
)
BY_NAME: dict[str, ParamSpec] = {p.name: p for p in PARAMETERS}


def _set_path(config: Any, path: tuple[str, ...], value: Any) -> Any:
    if len(path) == 1:
        return dataclasses.replace(config, **{path[0]: value})
    child = getattr(config, path[0])
    return dataclasses.replace(config, **{path[0]: _set_path(child, path[1:], value)})


def build_config(values: dict[str, Any], base: NodeConfig | None = None) -> NodeConfig:
    """NodeConfig from parameter values; raises :class:`ParameterError` naming every bad one."""
    errors = []
    config = base or NodeConfig()
    for name, value in values.items():
        spec = BY_NAME.get(name)
        if spec is None:
            continue
        try:
            value = spec.coerce(value)
        except ParameterError as exc:
            errors.append(str(exc))
            continue
        reason = spec.validate(value)
        if reason:
            errors.append(f"parameter '{name}' {reason}")
            continue
        config = _set_path(config, spec.path, value)
    timing = config.processor.motion.timing
    span = timing.exposure_time + timing.readout_time + abs(timing.time_offset)
    if config.imu_buffer_seconds <= 2 * span:
        errors.append("parameter 'imu_buffer_seconds' must exceed 2 * (exposure_time + readout_time + "
                      "|time_offset|): a frame's whole exposure must fit in the gyro history")
    if errors:
        raise ParameterError("; ".join(errors))
    return config
