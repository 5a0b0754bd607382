"""Console-script entry of ``eggnet_deblur_node``: stop signals handled before the slow imports.

The node module imports torch and rclpy (seconds on a small computer); a Ctrl-C meanwhile would
raise ``KeyboardInterrupt`` out of some import with a traceback. Installing the
:class:`~eggnet_ros.ros.shutdown.ShutdownRequest` first (standard library only) turns it into a
clean exit once the imports are done.
"""

from __future__ import annotations

from eggnet_ros.ros.shutdown import ShutdownRequest


def main(args: list[str] | None = None) -> int:
    """``eggnet_deblur_node``'s process: exit status 0 on SIGINT/SIGTERM at any point."""
    stop = ShutdownRequest()
    from eggnet_ros.ros.node import run

    return run(args, stop)


if __name__ == "__main__":
    import sys

    sys.exit(main())
