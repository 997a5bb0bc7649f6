"""Making a batch of finished jobs durable with one flush: `syncfs`.

A SIGKILL loses nothing the kernel already has: the page cache outlives the
process. Only a power cut (or a kernel crash) loses what is not yet on disk,
and against that exmake needs one ordering, not a flush per file: nothing
may point at a job (the trace index, `<name>-LATEST`, published links, the
build log) before every byte of it is on disk. So finished jobs are written
without fsync and, a batch at a time, `syncfs()` flushes the workdir's
filesystem once, then one LMDB transaction indexes the batch (exmake.ledger).
A job directory that a power cut caught before its batch was indexed is
unknown to the index and is never reused; its number is skipped.

`syncfs(2)` flushes one filesystem (Linux 2.6.39); Python's os has no
binding for it, so it is called through libc, with `sync()` (every
filesystem) where that is missing.
"""

import ctypes
import ctypes.util
import os

_libc = None


def _syncfs_function():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            _libc = False
    return getattr(_libc, "syncfs", None) if _libc else None


def sync_filesystem(path):
    """Flush to disk everything written on the filesystem that holds `path`."""
    syncfs = _syncfs_function()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)
