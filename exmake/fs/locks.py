"""Per-key locks that die with their holder.

A lock is an `flock` on `<workdir>/.exmake/locks/<key>`. The kernel drops it
when the last process holding the descriptor exits, so a build killed with
SIGKILL never leaves a stale lock behind. The descriptor is passed to the
job's processes too: a job orphaned by a killed exmake keeps its key locked
until it ends, so no second build runs the same key beside it.
"""

import fcntl
import os


class KeyLock:
    """An exclusive lock on one job key."""

    def __init__(self, lock_dir, key):
        self.path = os.path.join(lock_dir, key)
        self.fd = None

    def acquire(self, blocking=True):
        """Take the lock; False if `blocking` is off and another holder has it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:  # the first lock of a workdir
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self):
        """Unlock, then close. The unlock matters: the job's processes share this
        open file description, and a daemon a job started may outlive the job
        with it; closing our descriptor alone would leave the key locked for as
        long as that daemon lives. (A SIGKILLed exmake never gets here: then the
        job processes it leaves behind keep the key locked, as they should.)"""
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def is_locked(path):
    """True while some process holds the flock on `path`."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
