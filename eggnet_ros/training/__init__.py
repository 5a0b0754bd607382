"""Training and evaluation of EggNet on synthetic gyro-image pairs (torch, never ROS).

Runs unchanged on GPU machines that have no ROS install (and no matplotlib or yaml): optional
dependencies are imported where they are used.
"""
