"""Command-line tools (``eggnet-deblur``); each is a thin argparse shell over :mod:`eggnet_ros.core`."""
