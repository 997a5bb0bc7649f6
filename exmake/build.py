"""The build loop: keys, decisions and outcomes for every job a build needs.

`Build.run` asks the scheduler to walk the targets' jobs in dependency
order. For each job it asks the rebuilder (exmake.rebuilder) for its
verdict, and either reuses the finished job it names or hands a
`LocalJobRun` to the scheduler. Dry runs do not come here: they are the
rebuilder's `survey`. Results are published and recorded as each job ends, never in
one write at the end.
"""

import os
import signal
import sys
import time

from exmake import graph
from exmake.errors import Interrupted
from exmake.defaults import cpu_count, key_context, physical_mem_mib
from exmake.fs.links import real_target
from exmake.fs.stamp import make_stamp, stamp_id
from exmake.chunkcache import cache_dir
from exmake.jobrun import LocalJobRun, job_spec
from exmake.ledger import Ledger
from exmake.rebuilder import Rebuilder
from exmake.outcome import Outcome
from exmake.process import resolve
from exmake.schedule import Scheduler
from exmake.report import status_tree
from exmake.resources import format_mem, requested_cores
from exmake.signals import SignalGuard
from exmake.usage import JobUsage

PROGRESS_TICK_S = 0.2   # how often a progress bar is redrawn while jobs run
NO_SLOTS = {"cores": 0, "mem": 0}


class BuildOptions:
    """`jobs`: the cores jobs may hold at once (-j); `mem_mib`: the memory jobs
    with `mem:` may hold at once (--mem)."""

    def __init__(self, jobs=None, keep_going=False, force=False, only=None, mem_mib=None):
        self.jobs = jobs or cpu_count()
        self.mem_mib = mem_mib or physical_mem_mib()
        self.keep_going = keep_going
        self.force = force
        # `only`: run this one job; its dependencies must already be fresh
        # (exec-job on a compute node, after the scheduler ran them).
        self.only = only


class Build:
    def __init__(self, ws, options, reporter):
        self.ws = ws
        self.recipe = ws.recipe
        self.options = options
        self.reporter = reporter
        self.guard = SignalGuard()
        self.outcomes = {}
        self.ledger = Ledger(ws)  # index, LATEST and results: what makes a job visible
        self.hooks = None        # (wake fd, on_wake) from a watcher: cancel jobs mid-build
        self.started_ns = time.time_ns()
        self.keys = {}            # job name -> key, for the build log
        self.rebuilder = Rebuilder(ws)  # the one place that says whether a job is fresh
        self.verdicts = {}              # job name -> Verdict taken while it waited for slots

    def run(self, targets):
        """Build `targets` (job names); returns {name: Outcome} in build order."""
        self.targets = list(targets)
        resolve.cache_clear()  # a tool installed since the last build (watch mode) is found
        real_target.cache_clear()  # and a symlink changed since is followed anew
        order = graph.build_order(self.recipe, targets)
        deps = {name: list(self.recipe.jobs[name].deps.values()) for name in order}
        self.needs = {name: self.need(self.recipe.jobs[name]) for name in order}
        scheduler = self.scheduler = Scheduler(order, deps, self.options.jobs, self.options.keep_going,
                                               needs=self.slots_for,
                                               capacity={"cores": self.options.jobs, "mem": self.options.mem_mib})
        started = time.monotonic()
        self.external = self.rebuilder.resolve_external(order)
        self.ws.enter_build()
        JobUsage.sweep_left_behind()  # the empty cgroups of SIGKILLed builds
        self.reporter.start(len(order))
        for name in order:
            for note in self.capped(self.recipe.jobs[name]):
                self.reporter.write(f"  note    {name:<20} {note}")
        scheduler.checkpoint = self.guard.checkpoint
        scheduler.settle_at, scheduler.on_settle = self.ledger.commit_due, self.commit
        if self.hooks:
            scheduler.wake_fd, scheduler.on_wake = self.hooks
        if self.reporter.bar_mode:
            scheduler.tick_s = PROGRESS_TICK_S
            scheduler.on_tick = lambda: self.reporter.tick(scheduler.running)
        previous_usr1 = self._status_on_signal(scheduler, started, len(order))
        try:
            with self.guard:
                self.outcomes = scheduler.run(self.begin, self.reporter.job_done)
        except KeyboardInterrupt:
            self.outcomes = scheduler.outcomes
            for name in order:  # the log lists every job of the build, stopped ones too
                self.outcomes.setdefault(name, Outcome("skipped", reasons=["the build was interrupted"]))
            raise Interrupted("interrupted") from None
        finally:
            self.commit(final=True)  # what finished is indexed, even when interrupted
            self.ws.hashcache.flush()
            self.reporter.close()
            for sig, handler in previous_usr1.items():
                signal.signal(sig, handler)
        for name in order:  # jobs never started because an earlier one failed
            self.outcomes.setdefault(name, Outcome("skipped", reasons=["build stopped after a failure"]))
        self.elapsed = time.monotonic() - started
        self.outcomes = {name: self.outcomes[name] for name in order}  # build order, not finishing order
        return dict(self.outcomes)

    def _status_on_signal(self, scheduler, started, total):
        """SIGUSR1 (and SIGINFO, ^T, where it exists) prints the running jobs to stderr."""
        def show(signum, frame):
            lines = status_tree(scheduler.running, started, len(scheduler.outcomes), total)
            sys.stderr.write("\n".join(lines) + "\n")
            sys.stderr.flush()
        previous = {}
        for name in ("SIGUSR1", "SIGINFO"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, show)
        return previous

    # -- resources ---------------------------------------------------------

    def need(self, job):
        """{"cores", "mem"} a job holds while it runs: what it asks for, at most
        what -j and --mem give (more would never start: it runs alone instead)."""
        return {"cores": min(requested_cores(job.resources, job.slices), self.options.jobs),
                "mem": min(job.resources.get("mem", 0), self.options.mem_mib)}

    def capped(self, job):
        """Notes for a job that asks for more than the build has."""
        cores = requested_cores(job.resources, job.slices)
        if cores > self.options.jobs:
            yield (f"needs {cores} cores, -j gives {self.options.jobs}: it runs alone, "
                   f"on {self.options.jobs}")
        mem = job.resources.get("mem", 0)
        if mem > self.options.mem_mib:
            yield (f"mem: {format_mem(mem)} is more than --mem {format_mem(self.options.mem_mib)}: "
                   f"it runs with all of it held")

    # -- one job -----------------------------------------------------------

    def dep_outcomes_of(self, job, dep_outcomes):
        """{local: Outcome} of every dependency of `job`, in-recipe and from the log."""
        return self.rebuilder.dep_outcomes_of(job, dep_outcomes)

    def slots_for(self, name):
        """The slots a ready job holds from its start: none if it will be reused
        (waiting for cores it will not use would hold back the jobs behind it),
        else its need. The verdict is kept for `begin`."""
        job = self.recipe.jobs[name]
        if name not in self.verdicts:
            dep_outcomes = {dep: self.scheduler.outcomes[dep] for dep in job.deps.values()}
            if any(o.state not in ("built", "reused") for o in dep_outcomes.values()):
                return NO_SLOTS  # it will be skipped
            self.verdicts[name] = self.rebuilder.decide(job, dep_outcomes, self.forced(name))
        return NO_SLOTS if self.verdicts[name].fresh else self.needs[name]

    def forced(self, name):
        return self.options.force and (not self.options.only or name == self.options.only)

    def begin(self, name, dep_outcomes):
        job = self.recipe.jobs[name]
        forced = self.forced(name)
        verdict = self.verdicts.pop(name, None) or self.rebuilder.decide(job, dep_outcomes, forced)
        if verdict.problem:
            return Outcome("failed", reasons=[verdict.problem], detail={"reason": verdict.problem})
        self.keys[name] = verdict.key
        if verdict.fresh and verdict.workdir:  # a job of another workdir (`reuse_from:`), used in place
            self.ledger.adopt_elsewhere(job, verdict.path)
            return Outcome("reused", verdict.jobid, verdict.path, verdict.reasons, outputs=verdict.post["outputs"],
                           detail={"workdir": verdict.workdir})
        if verdict.fresh:
            return self.reused(job, verdict.jobid, verdict.post, verdict.reasons)
        if self.options.only and name != self.options.only:
            return Outcome("failed", reasons=["has no finished job: it should have run before "
                                              f"{self.options.only}"] + verdict.reasons,
                           detail={"reason": f"dependency {name} has no finished job"})
        setup = verdict.setup
        cores = self.needs[name]["cores"]
        spec = job_spec(job, setup, self.recipe.root, self.dep_paths(job, dep_outcomes),
                        verify=lambda: self.rebuilder.changed_since_read(job), cores=cores,
                        chunk_cache=cache_dir(self.ws.jobdirs.meta))
        # A build on this workdir may have just made it (unless -B: run it anyway).
        recheck = None if forced else (lambda: self.reuse_if_traced(job, setup))
        run = LocalJobRun(spec, self.ws.jobdirs, self.record, recheck, self.guard, self.reporter,
                          verdict.reasons)
        if run.acquired:
            reused = recheck() if recheck else None
            if reused:
                run.key_lock.release()
                return reused
            run.start()
        return run

    def reuse_if_traced(self, job, setup):
        """After waiting for a key's lock: reuse what the other build made, if anything."""
        traced = self.rebuilder.recheck(setup["key"])
        if not traced:
            return None
        return self.reused(job, *traced, [f"made by another build meanwhile: {traced[0]}"])

    def reused(self, job, jobid, post, reasons=()):
        self.ledger.adopt(job, jobid)
        return Outcome("reused", jobid, self.ws.jobdirs.path(jobid), list(reasons), outputs=post["outputs"])

    def record(self, key, jobid, ok, release):
        """Queue a finished job to be indexed (called inside the signal guard's
        critical section); `release()` unlocks its key once it is."""
        self.ledger.record(self.recipe.jobs[jobid.rsplit("-", 1)[0]], key, jobid, ok, release)
        self.rebuilder.note_finished(key, jobid, ok)
        self.rebuilder.note_attempt(jobid)

    def commit(self, final=False):
        """Index the finished jobs queued so far (see exmake.ledger)."""
        with self.guard.critical():
            self.ledger.commit(final)

    def log_jobs(self):
        """{name: {jobid, key, state}} for the build log."""
        return {name: {"jobid": o.jobid, "key": self.keys.get(name), "state": o.state,
                       **({"workdir": o.detail["workdir"]} if o.detail.get("workdir") else {})}
                for name, o in self.outcomes.items()}

    def stamp(self, asked_targets):
        """Record this (successful) build for the no-op fast path; see exmake.fs.stamp.
        What it records is what the rebuilder read: input files and listings as
        hashed, and each job script's CodeIdentity files and directories."""
        if any(o.state not in ("built", "reused") for o in self.outcomes.values()):
            return
        if self.external:  # `:LIST/latest:x` may point elsewhere after any other build
            return
        jobs = [self.recipe.jobs[name] for name in self.outcomes]
        signatures = self.ws.hashcache.signatures
        files = [[p, list(signatures[p])] for job in jobs for spec in job.inputs.values() for p in spec.files]
        dirs = [[d, list(sig)] for job in jobs for spec in job.inputs.values() for d, sig in spec.dirs]
        dirs += self.recipe.family_sources  # the listings and files of lines that made the families
        for code in self.rebuilder.code.values():
            files += code.files + [[path, None] for path in code.absent]
        latest = [[os.path.join(self.recipe.workdir, f"{name}-LATEST"), o.jobid]
                  for name, o in self.outcomes.items()]
        record = make_stamp([self.recipe.path, list(self.recipe.signature)], self.recipe.digest,
                            self.targets, list(self.recipe.jobs), files, dirs,
                            [[name, o.jobid, o.path, self.keys[name]] for name, o in self.outcomes.items()],
                            latest, self.ledger.links, self.started_ns, key_context())
        if record:
            self.ws.store.put_many([("stamps", stamp_id(self.recipe.path, asked_targets), record)])

    def dep_paths(self, job, dep_outcomes):
        """{local: job directory} of every dependency (a fan-in's instances one by one)."""
        return {local: o.path for local, o in self.dep_outcomes_of(job, dep_outcomes).items()}
