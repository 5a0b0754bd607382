"""The ROS 2 node (rclpy). Kept thin: all processing lives in :mod:`eggnet_ros.core`."""
