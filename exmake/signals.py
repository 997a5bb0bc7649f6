"""SIGINT and SIGTERM during a build: stop at a safe point, never mid-record.

`SignalGuard` turns both signals into KeyboardInterrupt, except inside a
`critical()` section (writing post.json, renaming a job directory, recording
the trace; starting a job, from reserving its directory until the scheduler
holds it for cancellation; cancelling): there the signal is held until the
next `checkpoint()`, which the scheduler calls once it has also recorded the
job's outcome, so an interrupt never leaves a finished job unrecorded, a
started job unknown to the code that would stop it, or a record half-made.

Signal dispositions belong to the process, not to an object, so the guard
in force is also known module-wide: `held()` holds signals in it (if any)
for code that has no guard at hand (the scheduler).
"""

import contextlib
import signal

_active = []   # the guards entered and not yet left, innermost last


class SignalGuard:
    def __init__(self):
        self.depth = 0
        self.pending = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        _active.append(self)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        if self in _active:
            _active.remove(self)

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

    def discard(self):
        """Forget a held signal: the build is being interrupted already."""
        self.pending = None


@contextlib.contextmanager
def held():
    """Hold SIGINT and SIGTERM in the guard in force, if there is one."""
    if not _active:
        yield None
        return
    guard = _active[-1]
    with guard.critical():
        yield guard


def checkpoint():
    """Raise a signal held by the guard in force, if any."""
    if _active:
        _active[-1].checkpoint()
