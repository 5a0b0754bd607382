"""eggnet_ros: gyroscope-guided single-image deblurring (EggNet) for ROS 2.

Layering (enforced by test/test_layering.py):
- ``eggnet_ros.motion``   pure geometry + IMU sync: numpy (+ OpenCV), never torch or ROS.
- ``eggnet_ros.model``, ``eggnet_ros.data``, ``eggnet_ros.training``: torch, never ROS.
- ``eggnet_ros.core``     the ROS-free processing core shared by node, CLIs and bag tools.
- ``eggnet_ros.ros``, ``eggnet_ros.bag`` (replay/record): the only places that import rclpy.
"""

__version__ = "0.1.0"
