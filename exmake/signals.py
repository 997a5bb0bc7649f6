"""SIGINT and SIGTERM during a build: stop at a safe point, never mid-record.

`SignalGuard` turns both signals into KeyboardInterrupt, except inside a
`critical()` section (writing post.json, renaming a job directory, recording
the trace): there the signal is held until the next `checkpoint()`, which
the scheduler calls once it has also recorded the job's outcome, so an
interrupt never leaves a finished job unrecorded or a record half-made.
"""

import contextlib
import signal


class SignalGuard:
    def __init__(self):
        self.depth = 0
        self.pending = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.depth:
            self.pending = signum
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @contextlib.contextmanager
    def critical(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def checkpoint(self):
        """Raise the interrupt held back by a critical section, if any."""
        if not self.depth and self.pending:
            signum, self.pending = self.pending, None
            raise KeyboardInterrupt(signal.Signals(signum).name)
