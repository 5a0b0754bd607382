"""The ROS-free processing core: frame + gyro samples + camera model -> deblurred frame.

Shared by the ROS node (:mod:`eggnet_ros.ros`), ``eggnet-deblur`` and the bag tools, so live and
offline processing cannot diverge. Never imports rclpy or message packages.
"""

from eggnet_ros.core.encodings import (
    SUPPORTED_ENCODINGS,
    Conversion,
    UnsupportedConversionError,
    UnsupportedEncodingError,
    encoding_info,
    plan_conversion,
)
from eggnet_ros.core.frame_queue import FrameQueue, PendingFrame, PushOutcome, PushResult
from eggnet_ros.core.imu_buffer import AddResult, ImuBuffer, ImuCounters
from eggnet_ros.core.model_paths import (
    AUTO_MODEL,
    ModelNotFoundError,
    auto_model_name,
    model_dirs,
    resolve_model_path,
)
from eggnet_ros.core.processor import (
    CudaUnavailableError,
    DeblurProcessor,
    FrameResult,
    select_device,
    select_dtype,
)
from eggnet_ros.core.stats import NodeStats
from eggnet_ros.core.validation import rotation_problem

__all__ = [
    "AUTO_MODEL",
    "SUPPORTED_ENCODINGS",
    "AddResult",
    "Conversion",
    "CudaUnavailableError",
    "DeblurProcessor",
    "FrameQueue",
    "FrameResult",
    "ImuBuffer",
    "ImuCounters",
    "ModelNotFoundError",
    "NodeStats",
    "PendingFrame",
    "PushOutcome",
    "PushResult",
    "UnsupportedConversionError",
    "UnsupportedEncodingError",
    "auto_model_name",
    "encoding_info",
    "model_dirs",
    "plan_conversion",
    "resolve_model_path",
    "rotation_problem",
    "select_device",
    "select_dtype",
]
