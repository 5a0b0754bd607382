"""Bag tools: synthesise, evaluate, replay and record rosbag2 files.

Import rules: ``io``, ``synth``, ``evaluate``, ``vo`` and ``report`` are ROS-free (rosbags only), so
offline evaluation runs without a ROS installation; only ``play`` and ``record`` import rclpy, and
only when called. Nothing is imported here so that ``import eggnet_ros.bag.vo`` stays light.
"""
