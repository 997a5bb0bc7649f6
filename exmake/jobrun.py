"""One job run locally, from its key lock to its finished directory.

A `LocalJobRun` is a task for the scheduler (see exmake.schedule): it waits
for the job key's lock (another build may be running the same key: then it
reuses that build's result), reserves the job directory (the job runs in
it, in place), writes setup.json, makes the job's stable view, starts the
job's processes, enforces the time limit, and when they end writes
post.json and hands the job to the ledger to be indexed.

It runs a `JobSpec` (plain values: argvs or a runner, environment, limits,
output policy; `job_spec` makes one from a recipe job) with a few
collaborators, never the Build:
    jobdirs   exmake.fs.jobdir.JobDirs: reserve, finish, abandon
    record(key, jobid, ok)   index the finished job and publish it (called
              with signals held, after post.json is written)
    recheck() after waiting for the key's lock: the Outcome of what another
              build made meanwhile, or None (None as recheck: always run, -B)
    guard     the build's exmake.signals.SignalGuard
    reporter  told `job_started(name, jobid)`

A job has one process (a shell command, or a forked job-script runner that
forks its own slice workers) or, for a sliced shell job, one per slice, all
managed by exmake.process. The first process to fail stops the others: a job
fails as a whole and at once. A job stopped at its time limit fails with
the limit as its reason, whatever its processes' exit status: its output is
partial and must never be reused.

What the job used is watched while it runs (exmake.usage: its processes'
resident memory summed every SAMPLE_INTERVAL_S, in its memory cgroup where
it has one) and recorded in post.json's "usage" when it ends: peak resident
memory, user and system CPU seconds (wait4's, for each process tree), wall
time, and per slice for sliced jobs. A job over its `mem:` is SIGKILLed at
once and fails with "memory limit 300M exceeded (peak 912M)".
"""

import os
import re
import time

from exmake.execute import command_argv
from exmake import view
from exmake.fs.hashing import output_digest
from exmake.fs import atomic
from exmake.fs import links as view_links
from exmake.fs.jobdir import SETUP
from exmake.fs.records import make_post, utc_now
from exmake.fs.locks import KeyLock
from exmake.methodrun import ChunkPlan, read_record, run_method
from exmake.process import Process, describe_exit, stop_all
from exmake.outcome import Outcome
from exmake.resources import format_bytes, format_mem, thread_env
from exmake.usage import SAMPLE_INTERVAL_S, JobUsage, usage_record

LOCK_POLL_S = 0.05        # how often to retry a key another build holds
LOCK_NOTICE_S = 2.0       # after this long waiting for a key, say so (once)
STDERR_TAIL_LINES = 20
STDERR_TAIL_BYTES = 16384
# exmake's own files, and logs, are not outputs; stdout.txt of a shell job is
# (a command's product is often what it prints), a job script's is not.
# Nor is the job's stable view: the links exmake made under deps/ and inputs/
# (exmake.view), excluded by name (JobSpec.links), not by directory.
NEVER_OUTPUTS_RE = re.compile(r"^(setup\.json|post\.json|stderr(\.\d+)?\.txt|\.lock|\.runner\.json.*|\.progress.*)$")
# Fixed for every job unless its recipe `env:` sets them (a user's shell may
# not: what is not in the key must not change the result). 315532800 is
# 1980-01-01, the earliest time a zip file can hold, as Nix uses.
DETERMINISM_ENV = {"SOURCE_DATE_EPOCH": "315532800", "PYTHONHASHSEED": "0"}
SCRIPT_LOGS_RE = re.compile(r"^stdout(\.\d+)?\.txt$")


class Command:
    """One process of a shell job: argv, extra environment, label, log-name suffix."""

    __slots__ = ("argv", "env", "label", "suffix")

    def __init__(self, argv, env=None, label="command", suffix=""):
        self.argv, self.env, self.label, self.suffix = argv, env or {}, label, suffix


class JobSpec:
    """What a local run of one job needs, as plain values.

    name       job name (its directories are `<name>-<N>`)
    setup      the setup record (with "key"); jobid and created are added at start
    commands   [Command, ...] for a shell job (one, or one per slice), else []
    runner     for a job script: runner(building, jobid) -> exit status, run in
               a forked child; else None
    env        {name: value} for the job's processes only
    time_s     wall-clock limit in seconds, or None
    mem_mib    the limit on the memory the job uses (resident, its processes
               together), in MiB, or None
    cores      the cores the job holds (its thread variables say so)
    outputs    declared outputs (empty: every file the job leaves is one)
    publish    files that must exist to be published
    script_logs  True when stdout*.txt are logs, not outputs (job scripts)
    slices     the slice count of a sliced job, else None
    verify     verify() -> None, or why the result cannot stand for the key: a
               file the key was computed from changed while the job ran
    links      the job's stable view: {path in the job directory: absolute
               target}, made relative before it starts (exmake.view)
    A plain class, as Outcome is (no dataclass import on the no-op path).
    """

    __slots__ = ("name", "setup", "commands", "runner", "env", "time_s", "mem_mib", "cores",
                 "outputs", "publish", "script_logs", "slices", "verify", "links")

    def __init__(self, name, setup, commands=(), runner=None, env=None, time_s=None, mem_mib=None,
                 outputs=(), publish=(), script_logs=False, slices=None, verify=None, links=None, cores=1):
        self.name, self.setup = name, setup
        self.commands, self.runner = list(commands), runner
        self.env = dict(env or {})
        self.time_s, self.mem_mib, self.cores = time_s, mem_mib, cores
        self.outputs, self.publish = list(outputs), list(publish)
        self.script_logs, self.slices = script_logs, slices
        self.verify = verify
        self.links = dict(links or {})


def job_spec(job, setup, root, dep_paths, verify=None, cores=1, chunk_cache=None):
    """The JobSpec of a recipe job in the recipe directory `root`; `dep_paths`
    maps each dependency's local name to its job directory (a fan-in's
    instances one by one, `x@A`). The job reads them through its stable view
    (exmake.view): its command and a job script see only relative names.
    `cores` is what the build gave it; the recipe's `env:` wins over the
    thread variables it sets, and over the fixed determinism defaults.
    `chunk_cache`: the chunk cache directory a chunked job reads and fills
    (None: it computes every chunk and stores none)."""
    common = dict(env={**DETERMINISM_ENV, **thread_env(cores), **job.env}, time_s=job.resources.get("time"),
                  mem_mib=job.resources.get("mem"), outputs=job.outputs, publish=job.publish.values(),
                  slices=job.slices, verify=verify, links=view.links(job, root, dep_paths), cores=cores)
    if job.method:
        method = job.method
        inputs, deps = view.script_inputs(job, root), view.script_deps(job, dep_paths)
        options, slices = job.options, job.slices
        chunks = chunk_plan(job, setup, chunk_cache) if job.chunks else None

        def runner(building, jobid):
            return run_method(method.path, method.search_dirs, building, jobid, options, inputs,
                              deps, slices, method.module_name, chunks)
        return JobSpec(job.name, setup, runner=runner, script_logs=True, **common)
    values = view.placeholder_values(job, root, cores)
    if job.slices:
        # Each slice is a process of its own: its threads get its share of the
        # job's cores (all of them each would start slices x cores threads).
        share = {k: v for k, v in thread_env(max(1, cores // job.slices)).items()
                 if k != "EXMAKE_CORES" and k not in job.env}
        commands = [Command(command_argv(job.run, {**values, "{sliceno}": n, "{slices}": job.slices}),
                            {"EXMAKE_SLICENO": str(n), "EXMAKE_SLICES": str(job.slices), **share},
                            f"slice {n}", f".{n}")
                    for n in range(job.slices)]
    else:
        commands = [Command(command_argv(job.run, values))]
    return JobSpec(job.name, setup, commands=commands, **common)


def chunk_plan(job, setup, cache):
    """The ChunkPlan of a job with `chunks:` (its key material from `setup`)."""
    from exmake.chunkcache import base_key
    from exmake.chunks import CHUNK_SCHEME
    return ChunkPlan(job.chunks, job.chunk_size, cache, base_key(setup, job.chunks, CHUNK_SCHEME),
                     f"{job.name}\0{job.chunks}")


class LocalJobRun:
    """Scheduler task running one stale job on this machine."""

    def __init__(self, spec, jobdirs, record, recheck, guard, reporter, reasons):
        self.spec = spec
        self.setup = spec.setup
        self.jobdirs = jobdirs
        self.record = record
        self.recheck = recheck
        self.guard = guard
        self.reporter = reporter
        self.reasons = reasons
        self.key_lock = KeyLock(jobdirs.lock_dir, spec.setup["key"])
        self.dir_lock = None
        self.processes = []
        self.first_failure = None  # the process whose failure failed the job
        self.limit_exceeded = None # the time-limit reason, once the limit stopped the job
        self.usage = None          # exmake.usage.JobUsage, while it runs
        self.memory_over = False   # the job went past its `mem:`
        self.next_sample = None
        self.started = None
        self.jobid = self.building = None
        self.view = None           # {link: text} of its stable view, as made
        self.deadline = None
        self.lock_wait_started, self.lock_wait_said = None, False
        # The caller re-checks the trace once it holds the lock (another build
        # may have finished this key a moment ago), then calls start().
        self.acquired = self.key_lock.acquire(blocking=False)

    # -- scheduler protocol ----------------------------------------------

    def fds(self):
        return [p.fd() for p in self.processes if p.fd() is not None]

    def _say_why_waiting(self):
        """A wait for a key lock that lasts is worth a line: otherwise a build
        behind another one (or behind a process a killed build left running)
        looks hung."""
        if self.lock_wait_started is None:
            self.lock_wait_started = time.monotonic()
        elif not self.lock_wait_said and time.monotonic() - self.lock_wait_started >= LOCK_NOTICE_S:
            self.lock_wait_said = True
            self.reporter.write(f"  wait    {self.spec.name:<20} another exmake (or a process a killed "
                                f"build left running) is making this job; waiting for it "
                                f"(lock {self.key_lock.path})")

    def wake_at(self):
        if self.started is None:
            return time.monotonic() + LOCK_POLL_S
        wakes = [p.wake_at() for p in self.processes] + [self.next_sample]
        if self.limit_exceeded is None:
            wakes.append(self.deadline)
        wakes = [w for w in wakes if w is not None]
        return min(wakes) if wakes else None

    def advance(self):
        if self.started is None:
            if not self.key_lock.acquire(blocking=False):
                self._say_why_waiting()
                return None
            reused = self.recheck() if self.recheck else None
            if reused:  # the other build made it
                self.key_lock.release()
                return reused
            self.start()
        now = time.monotonic()
        statuses = [p.poll() for p in self.processes]
        failed = [p for p, s in zip(self.processes, statuses) if s not in (None, 0)]
        if failed and not self.first_failure:  # one process failed: the job has failed; stop the rest now
            self.first_failure = failed[0]
            for p in self.processes:
                p.terminate(f"another slice failed ({failed[0].label})")
        if None in statuses and self.deadline and now >= self.deadline and self.limit_exceeded is None:
            self.limit_exceeded = f"time limit of {_seconds(self.spec.time_s)} exceeded"
            for p in self.processes:
                p.terminate(self.limit_exceeded)
        self._watch_memory(now)
        for p in self.processes:
            p.escalate(now)
        if any(p.poll() is None for p in self.processes):
            return None
        # Reaping too is done with signals held: a Ctrl-C landing between a
        # wait4 and its bookkeeping made the cancel reap again (ECHILD), and
        # the jobs after this one were never stopped.
        with self.guard.critical():
            for p in self.processes:
                p.release()
            return self._finish()

    def _watch_memory(self, now):
        """Sample what the job uses when due; over its limit, it dies at once
        (waiting out a grace period while memory runs out helps nobody)."""
        if self.next_sample is None or now < self.next_sample:
            return
        self.usage.sample()
        self.next_sample = now + SAMPLE_INTERVAL_S
        if self.usage.over():
            self.usage.kill_counted()  # its own process groups too, not only the leaders'
            for p in self.processes:
                p.kill("memory limit exceeded")

    def progress(self):
        """(slices done, slices) of a sliced job while it runs, else None; a
        chunked job's (chunks done, chunks, "chunks") once it knows its chunks."""
        if not self.spec.slices or self.started is None or self.building is None:  # not yet, or done
            return None
        if self.spec.runner:  # "DONE TOTAL UNIT" (exmake.methodrun.write_progress)
            fields = (_read_small(os.path.join(self.building, ".progress")) or "").split()
            if len(fields) == 3 and fields[0].isdigit() and fields[1].isdigit():
                return int(fields[0]), int(fields[1]), fields[2]
            return 0, self.spec.slices
        return sum(p.returncode is not None for p in self.processes), self.spec.slices

    def describe(self, now):
        """Lines for a status display: this job and, if sliced, its slices."""
        if self.started is None:
            return [f"  {self.spec.name:<20} waiting for another build running the same job"]
        lines = [f"  {self.jobid:<20} {now - self.started:7.1f}s  {self.cores_text()}  "
                 f"rss {format_bytes(self.usage.rss_bytes)} (peak {format_bytes(self.usage.peak_bytes)})  "
                 f"cpu {self.usage.cpu_s:.1f}s"]
        if self.spec.slices and not self.spec.runner:
            for n, p in enumerate(self.processes):
                state = f"done in {p.ended - p.started:.1f}s" if p.ended else f"running {now - p.started:.1f}s"
                lines.append(f"    slice {n:<3} {state}")
        elif self.spec.slices:
            done, total, *unit = self.progress()
            lines.append(f"    {done} of {total} {unit[0] if unit else 'slices'} done")
        return lines

    def cores_text(self):
        limit = f", mem {format_mem(self.spec.mem_mib)}" if self.spec.mem_mib else ""
        return f"{self.spec.cores} core{'s' if self.spec.cores != 1 else ''}{limit}"

    def stop(self, reason):
        """SIGTERM every process (the scheduler calls this on every task, then cancel)."""
        for p in self.processes:
            p.terminate(reason)

    def cancel(self):
        """Stop, reap and remove everything of this run; idempotent."""
        with self.guard.critical():
            stop_all(self.processes, "interrupted")
            self._close_usage()
            if self.building:
                self.jobdirs.abandon(self.jobid, self.building)
                self.building = None
            self._release()

    # -- steps -------------------------------------------------------------

    def start(self):
        # Signals are held until the scheduler has this run in hand: an
        # interrupt mid-start must find every process and the reservation.
        with self.guard.critical():
            self._start()

    def _start(self):
        self.jobid, self.building = self.jobdirs.reserve(self.spec.name)  # it runs in place
        self.dir_lock = KeyLock(self.jobdirs.building, self.jobid)  # its marker (exmake.fs.jobdir)
        self.dir_lock.acquire()
        self.setup.update(jobid=self.jobid, created=utc_now())
        atomic.write_json(os.path.join(self.building, SETUP), self.setup, fsync=False)
        self.view = view_links.make(self.building, self.spec.links)
        self.started_at = utc_now()
        self.started = time.monotonic()
        env = {**self.spec.env, "EXMAKE_JOBID": self.jobid, "EXMAKE_JOB": self.spec.name}
        limit = self.spec.mem_mib * 1024 * 1024 if self.spec.mem_mib else None
        self.usage = JobUsage.open(limit, re.sub(r"[^A-Za-z0-9_.@=+-]", "_", self.jobid))
        join = self.usage.join if self.usage.cgroup else None  # no preexec_fn where none is needed
        # The job keeps its own locks (an orphaned job keeps its key locked
        # until it ends) and no other descriptor of exmake's.
        locks = (self.key_lock.fd, self.dir_lock.fd)
        if self.spec.runner:
            building, jobid, runner = self.building, self.jobid, self.spec.runner
            self.processes.append(Process.fork(lambda: runner(building, jobid), env=env, keep_fds=locks,
                                               in_child=join))
        for command in self.spec.commands:
            self.processes.append(Process.spawn(
                command.argv, self.building, {**os.environ, **env, **command.env},
                os.path.join(self.building, f"stdout{command.suffix}.txt"),
                os.path.join(self.building, f"stderr{command.suffix}.txt"),
                pass_fds=locks, in_child=join, label=command.label))
        for p in self.processes:
            if p.pid:
                self.usage.watch(p.pid)
        self.next_sample = self.started + SAMPLE_INTERVAL_S
        self.deadline = self.started + self.spec.time_s if self.spec.time_s else None
        self.reporter.job_started(self.spec.name, self.jobid)

    def _finish(self):
        duration = time.monotonic() - self.started
        failed = self.first_failure or next(
            (p for p in self.processes if p.returncode or p.killed_for), None)
        exit_code, sig, reason = describe_exit(failed.returncode if failed else 0,
                                               failed.killed_for if failed else None)
        record = read_record(self.building) if self.spec.runner else None
        if record and record["result"] == "FAILURE":
            where = f"slice {record['slice']}" if record.get("slice") is not None else record.get("stage")
            reason = f"{where} raised {record['exception']}" if record.get("traceback") \
                else f"{where}: {record['exception']}"
        usage = self._usage(record, duration)
        reason = self._memory_reason(usage) or self.limit_exceeded or reason or self._missing_files()
        if reason is None and self.spec.verify:
            reason = self.spec.verify()  # something it read changed while it ran
        changed = view_links.check(self.building, self.view) if self.view else None
        if changed:  # after the outputs were read through the view, before anything is recorded
            reason = reason or f"the job changed its deps/ or inputs/ links ({changed})"
        outputs = []
        if reason is None:
            try:
                outputs = self._output_digests()
            except (_BadOutput, OSError) as exc:
                reason = str(exc) if isinstance(exc, _BadOutput) else f"cannot read an output: {exc}"
        ok = reason is None
        log = self._log_path(record, failed)
        timings = (record or {}).get("timings", {})
        if self.spec.slices and not self.spec.runner:
            timings = {"slices": [round(p.ended - p.started, 6) for p in self.processes]}
        post = make_post(self.jobid, ok, exit_code, sig, reason, record, self.started_at, duration, timings,
                         outputs, bool(self.spec.outputs), None if ok else stderr_tail(log), usage)
        building, self.building = self.building, None
        try:
            self.jobdirs.finish(self.jobid, building, post)
        except OSError as exc:  # no room even for post.json: nothing of the job may stay
            self.jobdirs.abandon(self.jobid, building)
            self._release()
            reason = f"cannot record the job: {exc.strerror}"
            return Outcome("failed", self.jobid, None, self.reasons, duration,
                           detail={"reason": reason, "stderr_tail": post.get("stderr_tail", []), "usage": usage})
        # The key stays locked until the job is indexed (exmake.ledger): until
        # then another build would not find it and would run it again.
        key_lock, self.key_lock = self.key_lock, _Unlocked()
        self.record(self.setup["key"], self.jobid, ok, key_lock.release)
        self._release()
        path = self.jobdirs.path(self.jobid)
        if not ok:
            return Outcome("failed", self.jobid, path, self.reasons, duration,
                           detail={"reason": reason, "stderr_tail": post["stderr_tail"],
                                   "log": os.path.join(path, os.path.basename(log)), "usage": usage})
        return Outcome("built", self.jobid, path, self.reasons, duration, outputs=post["outputs"],
                       detail={"usage": usage})

    def _usage(self, record, duration):
        """post.json's "usage": the whole job's, and each slice's for a sliced job.
        The cgroup is read for its OOM kills before it goes."""
        rusages = [p.rusage for p in self.processes]
        self.memory_over = self.usage.over()
        known = [r for r in rusages if r is not None]
        usage = usage_record(None, duration, self.usage.peak(rusages))
        usage.update(user_s=round(sum(r.ru_utime for r in known), 3) if known else None,
                     system_s=round(sum(r.ru_stime for r in known), 3) if known else None,
                     cores=self.spec.cores)
        if self.spec.mem_mib:
            usage.update(mem_limit_mib=self.spec.mem_mib, limited_by=self.usage.enforced_by)
        if self.spec.slices and not self.spec.runner:
            usage["slices"] = [usage_record(p.rusage, (p.ended or p.started) - p.started)
                               for p in self.processes]
        elif record and record.get("slice_usage"):
            usage["slices"] = record["slice_usage"]
        # The job at its peak held at least what any one slice did: samples
        # every SAMPLE_INTERVAL_S can miss a short slice's peak, which its
        # own rusage has exactly.
        slice_peaks = [s.get("peak_rss_bytes") or 0 for s in usage.get("slices", [])]
        if slice_peaks and max(slice_peaks) > (usage.get("peak_rss_bytes") or 0):
            usage["peak_rss_bytes"] = max(slice_peaks)
        self._close_usage()
        return usage

    def _memory_reason(self, usage):
        if not self.memory_over:
            return None
        return (f"memory limit {format_mem(self.spec.mem_mib)} exceeded "
                f"(peak {format_bytes(usage['peak_rss_bytes'])})")

    def _close_usage(self):
        if self.usage is not None:
            self.usage.close()

    def _missing_files(self):
        missing = [p for p in self.spec.outputs if not os.path.exists(os.path.join(self.building, p))]
        if missing:
            return "declared output missing: " + ", ".join(missing)
        unpublishable = [s for s in self.spec.publish
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
        """[[path, digest], ...] of the job's outputs. (They are flushed to disk
        with their batch, before the index names the job: exmake.ledger.)
        A symlink is its target's text; anything but a file or a link
        (a FIFO, a socket) fails the job: reading one could block for ever."""
        if self.spec.outputs:
            paths = self.spec.outputs
        else:
            paths = [p for p in _walk_relative(self.building) if not NEVER_OUTPUTS_RE.match(p)
                     and p not in self.spec.links  # the view exmake made; a job's own deps/x is an output
                     and not (self.spec.script_logs and SCRIPT_LOGS_RE.match(p))]
        digests = []
        for rel in sorted(paths):
            try:
                digests.append([rel, output_digest(os.path.join(self.building, rel))])
            except ValueError as exc:
                raise _BadOutput(f"output {rel} is {exc}") from None
        return digests

    def _release(self):
        if self.dir_lock:
            self.dir_lock.release()
        self.key_lock.release()


class _BadOutput(Exception):
    pass


class _Unlocked:
    """What a run holds once its key lock was handed to the ledger."""

    def release(self):
        pass


def _seconds(seconds):
    """A limit as the recipe would write it: `2s`, `90s`, `1.5s`."""
    return f"{seconds:g}s"


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
