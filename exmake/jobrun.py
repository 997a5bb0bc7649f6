"""One job run locally, from its key lock to its finished directory.

A `LocalJobRun` is a task for the scheduler (see exmake.schedule): it waits
for the job key's lock (another build may be running the same key: then it
reuses that build's result), reserves the job directory, writes setup.json,
starts the command, enforces the time limit, and on exit writes post.json
and moves the directory into place.
"""

import os
import time
from datetime import datetime, timezone

from exmake.execute import Process, command_argv, describe_exit
from exmake.fs import atomic
from exmake.fs.hashing import hash_file
from exmake.fs.jobdir import FORMAT, POST, SETUP
from exmake.fs.locks import KeyLock
from exmake.recipe import RESERVED_FILES
from exmake.schedule import Outcome

LOCK_POLL_S = 0.05        # how often to retry a key another build holds
STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 16384
NOT_OUTPUTS = {SETUP, POST, "stderr.txt", ".lock"}


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class LocalJobRun:
    """Scheduler task running one stale job on this machine."""

    def __init__(self, build, job, setup, reasons):
        self.build = build
        self.job = job
        self.setup = setup
        self.reasons = reasons
        self.key_lock = KeyLock(build.ws.jobdirs.lock_dir, setup["key"])
        self.dir_lock = None
        self.process = None
        self.jobid = self.building = None
        self.deadline = None
        if self.key_lock.acquire(blocking=False):
            self._start()

    # -- scheduler protocol ----------------------------------------------

    def fds(self):
        return [self.process.pidfd] if self.process and self.process.pidfd is not None else []

    def wake_at(self):
        if self.process is None:
            return time.monotonic() + LOCK_POLL_S
        return self.deadline

    def advance(self):
        if self.process is None:
            if not self.key_lock.acquire(blocking=False):
                return None
            reused = self.build.reuse_if_traced(self.job, self.setup)
            if reused:  # the other build made it
                self.key_lock.release()
                return reused
            self._start()
        status = self.process.poll()
        if status is None:
            if self.deadline and time.monotonic() > self.deadline:
                self.process.kill(f"time limit of {self.job.resources['time']} s exceeded")
            return None
        with self.build.guard.critical():
            return self._finish()

    def cancel(self):
        if self.process is not None:
            self.process.kill("interrupted")
            self.process.reap()
            self.build.ws.jobdirs.abandon(self.jobid, self.building)
        self._release()

    # -- steps -------------------------------------------------------------

    def _start(self):
        jobdirs = self.build.ws.jobdirs
        self.jobid, self.building = jobdirs.reserve(self.job.name)
        self.dir_lock = KeyLock(self.building, ".lock")
        self.dir_lock.path = os.path.join(self.building, ".lock")
        self.dir_lock.acquire()
        self.setup.update(jobid=self.jobid, created=utc_now())
        atomic.write_json(os.path.join(self.building, SETUP), self.setup, fsync=False)
        values = self.build.placeholder_values(self.job)
        env = {**os.environ, **self.job.env, "EXMAKE_JOBID": self.jobid, "EXMAKE_JOB": self.job.name}
        self.started_at = utc_now()
        self.process = Process(
            command_argv(self.job.run, values), self.building, env,
            os.path.join(self.building, "stdout.txt"), os.path.join(self.building, "stderr.txt"),
            pass_fds=(self.key_lock.fd, self.dir_lock.fd), mem_mib=self.job.resources.get("mem"))
        limit = self.job.resources.get("time")
        self.deadline = self.process.started + limit if limit else None
        self.build.reporter.job_started(self.job.name, self.jobid)

    def _finish(self):
        duration = time.monotonic() - self.process.started
        exit_code, sig, reason = describe_exit(self.process.poll(), self.process.killed_for)
        self.process.close()
        missing = [p for p in self.job.outputs if not os.path.exists(os.path.join(self.building, p))]
        if reason is None and missing:
            reason = "declared output missing: " + ", ".join(missing)
        if reason is None and self.job.publish:
            unpublishable = [s for s in self.job.publish.values()
                             if not os.path.lexists(os.path.join(self.building, s))]
            if unpublishable:
                reason = "file to publish missing: " + ", ".join(unpublishable)
        ok = reason is None
        post = {
            "format": FORMAT, "jobid": self.jobid, "result": "SUCCESS" if ok else "FAILURE",
            "exit_code": exit_code, "signal": sig, "reason": reason,
            "exception": None, "traceback": None,
            "start": self.started_at, "end": utc_now(), "duration": round(duration, 6),
            "outputs": self._output_digests() if ok else [],
            "declared_outputs": bool(self.job.outputs),
        }
        if not ok:
            post["stderr_tail"] = stderr_tail(os.path.join(self.building, "stderr.txt"))
        self.build.ws.jobdirs.finish(self.jobid, self.building, post)
        self.build.record(self.setup["key"], self.jobid, ok)
        self._release()
        path = self.build.ws.jobdirs.path(self.jobid)
        if not ok:
            return Outcome("failed", self.jobid, path, self.reasons, duration,
                           detail={"reason": reason, "stderr_tail": post["stderr_tail"],
                                   "log": os.path.join(path, "stderr.txt")})
        return Outcome("built", self.jobid, path, self.reasons, duration, outputs=post["outputs"])

    def _output_digests(self):
        if self.job.outputs:
            paths = self.job.outputs
        else:
            paths = [p for p in _walk_relative(self.building) if p not in NOT_OUTPUTS]
        return [[p, hash_file(os.path.join(self.building, p))] for p in sorted(paths)]

    def _release(self):
        if self.dir_lock:
            self.dir_lock.release()
        self.key_lock.release()


def _walk_relative(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top)
        for name in filenames:
            yield name if rel == "." else os.path.join(rel, name)


def stderr_tail(path, lines=STDERR_TAIL_LINES):
    """The last lines of a log file, decoded leniently."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL_BYTES))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-lines:]


assert set(RESERVED_FILES) >= {SETUP, POST}
