"""Exceptions of the motion package."""

from __future__ import annotations


class MotionError(ValueError):
    """The gyro data cannot describe a frame's motion (no coverage, gaps, bad timing).

    A ``ValueError`` subclass so callers that only guard against bad input still catch it; the
    processing core catches it specifically to pass a frame through instead of deblurring it.
    """
