"""Forked slice workers: run `work(sliceno)` in N child processes at once.

The caller forks *after* its preparation, so whatever it prepared is shared
copy-on-write with every worker. Each worker sends its pickled result, or
its exception and traceback, back through a pipe of its own (no file
system round trip: starting slices must cost little more than the forks).
The parent reads every pipe as data arrives, so a large result never
blocks its writer. The first failure (an exception, a non-zero exit, or a
death by signal, SIGKILL included) kills the other workers at once and
raises SliceFailed. Every worker is reaped: no zombie is left, and a worker
is signalled only while unreaped (its pid cannot be someone else's then).
Workers stay in their parent's process group (killing a job kills its
slices); forking and the child's set-up are exmake.process's.
"""

import os
import pickle
import selectors
import signal
import sys
import time
import traceback

from exmake.process import fork_child, pidfd_or_none

READ_BYTES = 1 << 16
POLL_S = 0.01          # where pidfds do not exist, look for ended workers this often
RESULT, FAILURE = b"R", b"F"   # the first byte a worker sends says which follows


class SliceFailed(Exception):
    """A slice raised or died; carries which slice, why and its traceback."""

    def __init__(self, sliceno, reason, exception=None, tb=None):
        super().__init__(f"slice {sliceno}: {reason}")
        self.sliceno, self.reason, self.exception, self.traceback = sliceno, reason, exception, tb


def run_slices(n, work, setup_child=None, on_done=None, format_failure=None, rusages=None, meanwhile=None):
    """([work(0), ..., work(n-1)], [seconds per slice]) computed in n forked processes.

    `setup_child(sliceno)` runs first in each child (redirect output, limits);
    `on_done(count)` runs in the parent each time a slice has finished;
    `format_failure(exc)` is the traceback text of a slice's exception
    (default: the whole traceback); `rusages`, a dict, gets each finished
    slice's wait4 rusage (what it and what it reaped used) by slice number;
    `meanwhile()` runs in the parent once every worker is forked, before
    their results are collected (a worker that finishes first waits on its
    pipe); if it raises, the workers are killed.
    """
    workers = {}  # read fd -> _Worker
    try:
        for sliceno in range(n):
            read_fd, write_fd = os.pipe()
            try:
                # The child keeps its own pipe's write end and nothing else of
                # ours (not the read ends of the workers forked before it).
                pid = fork_child(lambda: _child(sliceno, work, setup_child, write_fd, format_failure),
                                 keep_fds=(write_fd,))
            finally:
                os.close(write_fd)  # EOF then means "done"
            workers[read_fd] = _Worker(sliceno, pid, read_fd)
        if meanwhile:
            meanwhile()
        finished = _collect(workers, on_done)
    except BaseException:
        _kill_all(workers.values())
        for fd in workers:
            os.close(fd)
        raise
    if rusages is not None:
        rusages.update((i, finished[i].rusage) for i in range(n))
    return [finished[i].result for i in range(n)], [round(finished[i].seconds, 6) for i in range(n)]


class _Worker:
    def __init__(self, sliceno, pid, read_fd):
        self.sliceno, self.pid, self.read_fd = sliceno, pid, read_fd
        self.pidfd = None
        self.pipe_open = True
        self.started = time.monotonic()
        self.chunks = []
        self.status = None
        self.rusage = None
        self.result = None
        self.seconds = None


def _child(sliceno, work, setup_child, write_fd, format_failure):
    """A worker's body (in the forked child); returns its exit status."""
    status = 1
    try:
        if setup_child:
            setup_child(sliceno)
        payload = RESULT + pickle.dumps(work(sliceno), protocol=pickle.HIGHEST_PROTOCOL)
        status = 0
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        text = format_failure(exc) if format_failure else traceback.format_exc()
        payload = FAILURE + pickle.dumps((f"{type(exc).__name__}: {exc}", text))
        try:
            sys.stderr.write(text)
        except BaseException:  # noqa: BLE001
            pass
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BaseException:  # noqa: BLE001
        status = 1
    return status


def _collect(workers, on_done=None):
    """Read every worker's pipe until the worker exits; raise at the first failure.

    A worker is done when its *process* ends (seen through a pidfd, or by
    polling where there is none), not when its pipe closes: a process the
    work forked may hold the pipe open long after the worker died.
    """
    finished = {}
    by_pidfd = {}
    with selectors.DefaultSelector() as selector:
        for fd, worker in workers.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, worker)
            worker.pidfd = pidfd_or_none(worker.pid)
            if worker.pidfd is not None:
                by_pidfd[worker.pidfd] = worker
                selector.register(worker.pidfd, selectors.EVENT_READ, worker)
        try:
            while len(finished) < len(workers):
                timeout = None if len(by_pidfd) == len(workers) else POLL_S
                for key, _ in selector.select(timeout):
                    if key.fd in by_pidfd:
                        _reap(key.data, selector, finished, block=True)
                        if on_done:
                            on_done(len(finished))
                    else:
                        _drain(key.data, key.fd, selector)
                for worker in workers.values():  # no pidfd: poll
                    if worker.pidfd is None and worker.sliceno not in finished:
                        _reap(worker, selector, finished, block=False)
        finally:
            for fd in by_pidfd:
                os.close(fd)
    for fd in workers:
        os.close(fd)
    workers.clear()
    return finished


def _drain(worker, fd, selector):
    """Read what the pipe holds now; unregister it at EOF."""
    while True:
        try:
            chunk = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        if not chunk:
            selector.unregister(fd)
            worker.pipe_open = False
            return
        worker.chunks.append(chunk)


def _reap(worker, selector, finished, block):
    pid, status, rusage = os.wait4(worker.pid, 0 if block else os.WNOHANG)
    if not pid:
        return
    worker.status, worker.pid, worker.rusage = status, None, rusage
    worker.seconds = time.monotonic() - worker.started
    if worker.pidfd is not None:
        selector.unregister(worker.pidfd)
    if worker.pipe_open:  # everything it wrote is in the pipe now
        _drain(worker, worker.read_fd, selector)
        if worker.pipe_open:
            selector.unregister(worker.read_fd)
    failure = _failure(worker)
    if failure:
        raise failure
    finished[worker.sliceno] = worker


def _failure(worker):
    data = b"".join(worker.chunks)
    status = worker.status
    if data[:1] == RESULT and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        worker.result = pickle.loads(data[1:])
        return None
    if data[:1] == FAILURE:
        exception, tb = pickle.loads(data[1:])
        return SliceFailed(worker.sliceno, exception, exception, tb)
    if os.WIFSIGNALED(status):
        return SliceFailed(worker.sliceno, f"killed by {signal.Signals(os.WTERMSIG(status)).name}")
    return SliceFailed(worker.sliceno, f"exit status {os.WEXITSTATUS(status)}")


def _kill_all(workers):
    for worker in workers:
        if worker.pid is not None:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for worker in workers:
        if worker.pid is not None:
            try:
                os.waitpid(worker.pid, 0)
            except ChildProcessError:
                pass
            worker.pid = None
