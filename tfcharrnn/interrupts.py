"""Ctrl-C and SIGTERM as a polite request: finish the current step, save, stop.

Training checks `stop.requested` between steps, so a checkpoint is never written from the
middle of an update. A second Ctrl-C while the first is being handled interrupts at once.
"""

import signal
import threading


class GracefulStop:

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = None  # the signal's name once one arrived
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self):
        # Handlers can only be installed from the main thread; elsewhere, signals keep their
        # default behaviour.
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False
