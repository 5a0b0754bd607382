"""SIGINT/SIGTERM as a shutdown *request* for the node's process, never an exception.

Why: by default Python turns SIGINT into ``KeyboardInterrupt``, raised in the main thread at
whatever bytecode it happens to be running, and rclpy's own handlers additionally shut the
default context down from a helper thread. A Ctrl-C (or launch's SIGINT) during start-up or
shutdown therefore lands inside library code that is not written to be interrupted half-way:
``rclpy.spin`` building its executor (``Executor.__init__`` interrupted before ``_sigint_gc``
is set, then ``Executor.__del__`` prints an ``AttributeError`` traceback at exit), a node
creating its publishers on a context that just went away, or the cleanup in ``finally`` being
interrupted by a second Ctrl-C (the process then dies by SIGINT). Here the handlers only set an
event; the node's main loop polls it between executor waits, and start-up finishes its current
step before the process exits cleanly with status 0.

Imports only the standard library, so the console script can install it before the slow
imports (torch, rclpy) of the node module: see :func:`eggnet_ros.ros.entry.main`.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

#: Signals that request a clean shutdown (Ctrl-C; launch escalates SIGINT -> SIGTERM).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ShutdownRequest:
    """Installs handlers that record SIGINT/SIGTERM; the previous handlers come back on close.

    Use as a context manager in the main thread (Python runs signal handlers there only). In
    another thread installing handlers is impossible, so it is then a plain, never-set flag.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._signal: int | None = None
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of the main thread, possibly inside rclpy or torch: only
        # record the request (no exception, no logging, no locks).
        if self._signal is None:
            self._signal = signum
        self._event.set()

    @property
    def requested(self) -> bool:
        """Whether a stop signal has arrived."""
        return self._event.is_set()

    @property
    def signal_name(self) -> str:
        """Name of the first stop signal received ("" if none)."""
        return "" if self._signal is None else signal.Signals(self._signal).name

    def close(self, *, exiting: bool = False) -> None:
        """Restore the handlers that were installed before (idempotent).

        ``exiting``: the process is about to end (console script): ignore the stop signals from
        now on instead. Restoring Python's default would let a late Ctrl-C raise
        ``KeyboardInterrupt`` between ``main`` returning and the interpreter exiting, and leaving
        a Python handler installed is no better: interpreter finalisation resets it to the OS
        default, which kills the process by SIGINT (exit status -2) in the middle of teardown.
        """
        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if exiting else handler)

    def __enter__(self) -> ShutdownRequest:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
