"""One job run locally, from its key lock to its finished directory.

A `LocalJobRun` is a task for the scheduler (see exmake.schedule): it waits
for the job key's lock (another build may be running the same key: then it
reuses that build's result), reserves the job directory, writes setup.json,
starts the job's processes, enforces the time limit, and when they end
writes post.json and moves the directory into place.

A job has one process (a shell command, or a forked job-script runner that
forks its own slice workers) or, for a sliced shell job, one per slice. The
first process to fail stops the others: a job fails as a whole and at once.
"""

import os
import re
import stat
import time
from datetime import datetime, timezone

from exmake.execute import Process, command_argv, describe_exit
from exmake.fs import atomic
from exmake.fs.hashing import hash_file
from exmake.fs.jobdir import FORMAT, SETUP
from exmake.fs.locks import KeyLock
from exmake.methodrun import read_record, run_method
from exmake.schedule import Outcome

LOCK_POLL_S = 0.05        # how often to retry a key another build holds
STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 16384
# exmake's own files, and logs, are not outputs; stdout.txt of a shell job is
# (a command's product is often what it prints), a job script's is not.
NEVER_OUTPUTS_RE = re.compile(r"^(setup\.json|post\.json|stderr(\.\d+)?\.txt|\.lock|\.runner\.json.*|\.progress.*)$")
SCRIPT_LOGS_RE = re.compile(r"^stdout(\.\d+)?\.txt$")


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class LocalJobRun:
    """Scheduler task running one stale job on this machine."""

    def __init__(self, build, job, setup, reasons, forced=False):
        self.build = build
        self.forced = forced
        self.job = job
        self.setup = setup
        self.reasons = reasons
        self.key_lock = KeyLock(build.ws.jobdirs.lock_dir, setup["key"])
        self.dir_lock = None
        self.processes = []
        self.first_failure = None  # the process whose failure failed the job
        self.started = None
        self.jobid = self.building = None
        self.deadline = None
        # The caller re-checks the trace once it holds the lock (another build
        # may have finished this key a moment ago), then calls start().
        self.acquired = self.key_lock.acquire(blocking=False)

    # -- scheduler protocol ----------------------------------------------

    def fds(self):
        return [p.pidfd for p in self.processes if p.pidfd is not None and p.returncode is None]

    def wake_at(self):
        if self.started is None:
            return time.monotonic() + LOCK_POLL_S
        return self.deadline

    def advance(self):
        if self.started is None:
            if not self.key_lock.acquire(blocking=False):
                return None
            reused = None if self.forced else self.build.reuse_if_traced(self.job, self.setup)
            if reused:  # the other build made it
                self.key_lock.release()
                return reused
            self.start()
        statuses = [p.poll() for p in self.processes]
        failed = [p for p, s in zip(self.processes, statuses) if s not in (None, 0)]
        if failed:  # one process failed: the job has failed; stop the rest now
            self.first_failure = self.first_failure or failed[0]
            for p in self.processes:
                p.kill(f"another slice failed ({failed[0].label})")
        elif None in statuses:
            if self.deadline and time.monotonic() > self.deadline:
                for p in self.processes:
                    p.kill(f"time limit of {self.job.resources['time']} s exceeded")
            return None
        for p in self.processes:
            p.reap()
        with self.build.guard.critical():
            return self._finish()

    def progress(self):
        """(slices done, slices) of a sliced job while it runs, else None."""
        if not self.job.slices or self.started is None:
            return None
        if self.job.method:
            text = _read_small(os.path.join(self.building, ".progress"))
            done = int(text.split()[0]) if text and text.split()[0].isdigit() else 0
            return done, self.job.slices
        return sum(p.returncode is not None for p in self.processes), self.job.slices

    def describe(self, now):
        """Lines for a status display: this job and, if sliced, its slices."""
        if self.started is None:
            return [f"  {self.job.name:<20} waiting for another build running the same job"]
        lines = [f"  {self.jobid:<20} {now - self.started:7.1f}s"]
        if self.job.slices and not self.job.method:
            for n, p in enumerate(self.processes):
                state = f"done in {p.ended - p.started:.1f}s" if p.ended else f"running {now - p.started:.1f}s"
                lines.append(f"    slice {n:<3} {state}")
        elif self.job.slices:
            done, total = self.progress()
            lines.append(f"    {done} of {total} slices done")
        return lines

    def cancel(self):
        for p in self.processes:
            p.kill("interrupted")
        for p in self.processes:
            p.reap()
        if self.building:
            self.build.ws.jobdirs.abandon(self.jobid, self.building)
        self._release()

    # -- steps -------------------------------------------------------------

    def start(self):
        jobdirs = self.build.ws.jobdirs
        self.jobid, self.building = jobdirs.reserve(self.job.name)
        self.dir_lock = KeyLock(self.building, ".lock")
        self.dir_lock.acquire()
        self.setup.update(jobid=self.jobid, created=utc_now())
        atomic.write_json(os.path.join(self.building, SETUP), self.setup, fsync=False)
        self.started_at = utc_now()
        self.started = time.monotonic()
        if self.job.method:
            self.processes = [self._fork_method()]
        elif self.job.slices:
            self.processes = [self._spawn(n) for n in range(self.job.slices)]
        else:
            self.processes = [self._spawn(None)]
        limit = self.job.resources.get("time")
        self.deadline = self.started + limit if limit else None
        self.build.reporter.job_started(self.job.name, self.jobid)

    def _spawn(self, sliceno):
        values = self.build.placeholder_values(self.job)
        env = {**os.environ, **self.job.env, "EXMAKE_JOBID": self.jobid, "EXMAKE_JOB": self.job.name}
        suffix = ""
        if sliceno is not None:
            values.update({"{sliceno}": sliceno, "{slices}": self.job.slices})
            env.update(EXMAKE_SLICENO=str(sliceno), EXMAKE_SLICES=str(self.job.slices))
            suffix = f".{sliceno}"
        process = Process.spawn(
            command_argv(self.job.run, values), self.building, env,
            os.path.join(self.building, f"stdout{suffix}.txt"),
            os.path.join(self.building, f"stderr{suffix}.txt"),
            pass_fds=(self.key_lock.fd, self.dir_lock.fd), mem_mib=self.job.resources.get("mem"))
        process.label = "slice %d" % sliceno if sliceno is not None else "command"
        return process

    def _fork_method(self):
        job, method = self.job, self.job.method
        inputs = {name: spec.path if spec.kind == "file" else spec.files for name, spec in job.inputs.items()}
        deps = {local: o.path for local, o in self.build.dep_outcomes_of(job, self.build.scheduler.outcomes).items()}
        os.environ.update(job.env)  # reset below: the child took its copy at fork
        try:
            process = Process.fork(lambda: run_method(
                method.path, method.search_dirs, self.building, self.jobid, job.options,
                inputs, deps, job.slices, job.resources.get("mem"), method.module_name))
        finally:
            for name in job.env:
                os.environ.pop(name, None)
        process.label = "job script"
        return process

    def _finish(self):
        duration = time.monotonic() - self.started
        failed = self.first_failure or next((p for p in self.processes if p.returncode), None)
        exit_code, sig, reason = describe_exit(failed.returncode if failed else 0,
                                               failed.killed_for if failed else None)
        record = read_record(self.building) if self.job.method else None
        if record and record["result"] == "FAILURE":
            where = f"slice {record['slice']}" if record.get("slice") is not None else record.get("stage")
            reason = f"{where} raised {record['exception']}" if record.get("traceback") \
                else f"{where}: {record['exception']}"
        reason = reason or self._missing_files()
        outputs = []
        if reason is None:
            try:
                outputs = self._output_digests()
            except (_BadOutput, OSError) as exc:
                reason = str(exc) if isinstance(exc, _BadOutput) else f"cannot read an output: {exc}"
        ok = reason is None
        post = {
            "format": FORMAT, "jobid": self.jobid, "result": "SUCCESS" if ok else "FAILURE",
            "exit_code": exit_code, "signal": sig, "reason": reason,
            "exception": record.get("exception") if record else None,
            "traceback": record.get("traceback") if record else None,
            "start": self.started_at, "end": utc_now(), "duration": round(duration, 6),
            "timings": (record or {}).get("timings", {}),
            "outputs": outputs,
            "declared_outputs": bool(self.job.outputs),
        }
        if self.job.slices and not self.job.method:
            post["timings"] = {"slices": [round(p.ended - p.started, 6) for p in self.processes]}
        log = self._log_path(record, failed)
        if not ok:
            post["stderr_tail"] = stderr_tail(log)
        try:
            self.build.ws.jobdirs.finish(self.jobid, self.building, post)
        except OSError as exc:  # no room even for post.json: nothing of the job may stay
            self.build.ws.jobdirs.abandon(self.jobid, self.building)
            self._release()
            reason = f"cannot record the job: {exc.strerror}"
            return Outcome("failed", self.jobid, None, self.reasons, duration,
                           detail={"reason": reason, "stderr_tail": post.get("stderr_tail", [])})
        self.build.record(self.setup["key"], self.jobid, ok)
        self._release()
        path = self.build.ws.jobdirs.path(self.jobid)
        if not ok:
            return Outcome("failed", self.jobid, path, self.reasons, duration,
                           detail={"reason": reason, "stderr_tail": post["stderr_tail"],
                                   "log": os.path.join(path, os.path.basename(log))})
        return Outcome("built", self.jobid, path, self.reasons, duration, outputs=post["outputs"])

    def _missing_files(self):
        missing = [p for p in self.job.outputs if not os.path.exists(os.path.join(self.building, p))]
        if missing:
            return "declared output missing: " + ", ".join(missing)
        unpublishable = [s for s in self.job.publish.values()
                         if not os.path.lexists(os.path.join(self.building, s))]
        if unpublishable:
            return "file to publish missing: " + ", ".join(unpublishable)
        return None

    def _log_path(self, record, failed):
        """The log that tells most about a failure: the failing slice's, else the job's."""
        if record and record.get("slice") is not None:
            return os.path.join(self.building, f"stderr.{record['slice']}.txt")
        label = getattr(failed, "label", "")
        if label.startswith("slice "):
            return os.path.join(self.building, f"stderr.{label.split()[1]}.txt")
        return os.path.join(self.building, "stderr.txt")

    def _output_digests(self):
        """[[path, digest], ...] of the job's outputs, each flushed to disk first
        (post.json may say SUCCESS only of outputs that survive a power cut).
        A symlink is its target's text; anything but a file or a link
        (a FIFO, a socket) fails the job: reading one could block for ever."""
        if self.job.outputs:
            paths = self.job.outputs
        else:
            paths = [p for p in _walk_relative(self.building) if not NEVER_OUTPUTS_RE.match(p)
                     and not (self.job.method and SCRIPT_LOGS_RE.match(p))]
        digests = []
        for rel in sorted(paths):
            path = os.path.join(self.building, rel)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                digests.append([rel, "link:" + os.readlink(path)])
            elif stat.S_ISREG(mode):
                digests.append([rel, hash_file(path, fsync=True)])
            else:
                raise _BadOutput(f"output {rel} is not a regular file or a symlink")
        return digests

    def _release(self):
        if self.dir_lock:
            self.dir_lock.release()
        self.key_lock.release()


class _BadOutput(Exception):
    pass


def _read_small(path):
    try:
        with open(path) as f:
            return f.read(100)
    except OSError:
        return None


def _walk_relative(top):
    """Every non-directory entry under `top` (symlinks to directories included), relative."""
    for dirpath, dirnames, filenames in os.walk(top):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        rel = os.path.relpath(dirpath, top)
        for name in filenames + links:
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
