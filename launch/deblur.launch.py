"""Launch eggnet_deblur_node: ``ros2 launch eggnet_ros deblur.launch.py namespace:=camera``.

Topics are relative to ``namespace`` (image_raw, camera_info, imu in; image_deblurred,
camera_info_deblurred out) and each input can be remapped with a launch argument, e.g.
``imu:=/imu/data``. ``params_file`` defaults to the installed config/deblur.yaml.
"""

from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("eggnet_ros"), "config", "deblur.yaml")
    args = [
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the camera topics"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="parameters YAML"),
        DeclareLaunchArgument("image", default_value="image_raw", description="input image topic"),
        DeclareLaunchArgument("camera_info", default_value="camera_info", description="camera_info topic"),
        DeclareLaunchArgument("imu", default_value="imu", description="input sensor_msgs/Imu topic"),
        DeclareLaunchArgument("output", default_value="image_deblurred", description="output image topic"),
        DeclareLaunchArgument("device", default_value="auto", description="auto | cpu | cuda"),
    ]
    node = Node(
        package="eggnet_ros",
        executable="eggnet_deblur_node",
        name="eggnet_deblur",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[LaunchConfiguration("params_file"), {"device": LaunchConfiguration("device")}],
        remappings=[
            ("image_raw", LaunchConfiguration("image")),
            ("camera_info", LaunchConfiguration("camera_info")),
            ("imu", LaunchConfiguration("imu")),
            ("image_deblurred", LaunchConfiguration("output")),
        ],
    )
    return LaunchDescription([*args, node])
