"""Forked slice workers: run `work(sliceno)` in N child processes at once.

The caller forks *after* its preparation, so whatever it prepared is shared
copy-on-write with every worker. Each worker writes its pickled result to a
file in `result_dir` and exits 0, or writes its exception and traceback and
exits 1. The parent waits for any worker to end; the first failure (an
exception, a non-zero exit, or a death by signal, SIGKILL included) kills
the other workers at once and raises SliceFailed. Every worker is reaped:
no zombie is left.
"""

import os
import pickle
import signal
import sys
import time
import traceback


class SliceFailed(Exception):
    """A slice raised or died; carries which slice, why and its traceback."""

    def __init__(self, sliceno, reason, exception=None, tb=None):
        super().__init__(f"slice {sliceno}: {reason}")
        self.sliceno, self.reason, self.exception, self.traceback = sliceno, reason, exception, tb


def run_slices(n, work, result_dir, setup_child=None):
    """[work(0), ..., work(n-1)] computed in n forked processes, and their times in seconds.

    `setup_child(sliceno)` runs first in each child (redirect output, limits).
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or buffered text would be written once per child
    children, started = {}, {}
    try:
        for sliceno in range(n):
            pid = os.fork()
            if pid == 0:
                _child(sliceno, work, result_dir, setup_child)  # never returns
            children[pid] = sliceno
            started[sliceno] = time.monotonic()
        timings = _wait_all(children, started, result_dir)
    except BaseException:
        _kill_all(children)
        raise
    return [_read_result(result_dir, i) for i in range(n)], timings


def _child(sliceno, work, result_dir, setup_child):
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if setup_child:
            setup_child(sliceno)
        result = work(sliceno)
        _write(os.path.join(result_dir, f".slice-{sliceno}.pickle"), result)
        status = 0
    except BaseException as exc:  # noqa: BLE001 - everything must reach the parent
        failure = (f"{type(exc).__name__}: {exc}", traceback.format_exc())
        try:
            _write(os.path.join(result_dir, f".slice-{sliceno}.failure"), failure)
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(status)  # never run the parent's cleanup in a child


def _write(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.rename(tmp, path)


def _wait_all(children, started, result_dir):
    timings = {}
    while children:
        pid, status = os.waitpid(-1, 0)
        sliceno = children.pop(pid, None)
        if sliceno is None:
            continue  # not one of ours
        timings[sliceno] = time.monotonic() - started[sliceno]
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            continue
        _kill_all(children)
        raise _failure(sliceno, status, result_dir)
    return [round(timings[i], 6) for i in sorted(timings)]


def _failure(sliceno, status, result_dir):
    path = os.path.join(result_dir, f".slice-{sliceno}.failure")
    if os.path.exists(path):
        with open(path, "rb") as f:
            exception, tb = pickle.load(f)
        os.unlink(path)
        return SliceFailed(sliceno, exception, exception, tb)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return SliceFailed(sliceno, f"killed by {name}")
    return SliceFailed(sliceno, f"exit status {os.WEXITSTATUS(status)}")


def _kill_all(children):
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in list(children):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        children.pop(pid, None)


def _read_result(result_dir, sliceno):
    path = os.path.join(result_dir, f".slice-{sliceno}.pickle")
    with open(path, "rb") as f:
        result = pickle.load(f)
    os.unlink(path)
    return result
