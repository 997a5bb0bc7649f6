"""The build loop: keys, decisions and outcomes for every job a build needs.

`Build.run` asks the scheduler to walk the targets' jobs in dependency
order. For each job it computes the would-be setup record and key, asks the
pure rebuild decision whether a finished job already has that key, and
either reuses it, reports it (dry run), or hands a `LocalJobRun` to the
scheduler. Results are published and recorded as each job ends, never in
one write at the end.
"""

import os
import signal
import sys
import time

from exmake import graph
from exmake.errors import Interrupted
from exmake.fs.publish import publish
from exmake.fs.stamp import make_stamp, stamp_id
from exmake.jobrun import LocalJobRun, job_spec
from exmake.keys import canonical_step, input_digests, job_key
from exmake.method import code_digest, watched_files
from exmake.inputs import stat_signature
from exmake.rebuild import decide
from exmake.schedule import Outcome, Scheduler
from exmake.report import status_tree
from exmake.signals import SignalGuard

PROGRESS_TICK_S = 0.2   # how often a progress bar is redrawn while jobs run


class BuildOptions:
    def __init__(self, jobs=None, keep_going=False, force=False, dry_run=False, only=None):
        self.jobs = jobs or os.cpu_count() or 1
        self.keep_going = keep_going
        self.force = force
        self.dry_run = dry_run
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
        self.links = []          # [link, target] of every result symlink this build stands for
        self.hooks = None        # (wake fd, on_wake) from a watcher: cancel jobs mid-build
        self.started_ns = time.time_ns()
        self.keys = {}            # job name -> key, for the build log
        self._code_digests = {}   # job script path -> code digest
        self._code_files = {}     # job script path -> [[file, stat signature], ...]

    def run(self, targets):
        """Build `targets` (job names); returns {name: Outcome} in build order."""
        self.targets = list(targets)
        order = graph.build_order(self.recipe, targets)
        deps = {name: list(self.recipe.jobs[name].deps.values()) for name in order}
        scheduler = self.scheduler = Scheduler(order, deps, self.options.jobs, self.options.keep_going)
        started = time.monotonic()
        self.external = self.resolve_external(order)
        if not self.options.dry_run:
            self.ws.enter_build()
        self.reporter.start(len(order))
        scheduler.checkpoint = self.guard.checkpoint
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
            self.ws.hashcache.flush()
            self.reporter.close()
            for sig, handler in previous_usr1.items():
                signal.signal(sig, handler)
        for name in order:  # jobs never started because an earlier one failed
            self.outcomes.setdefault(name, Outcome("skipped", reasons=["build stopped after a failure"]))
        self.elapsed = time.monotonic() - started
        return {name: self.outcomes[name] for name in order}

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

    # -- one job -----------------------------------------------------------

    def resolve_external(self, order):
        """{(job, local): Outcome} for deps on jobs from the build log; a reference
        that names nothing is a recipe error (exit 2) naming its line."""
        from exmake import jobref
        from exmake.errors import RecipeError, UsageError
        external = {}
        for name in order:
            job = self.recipe.jobs[name]
            for local, ref in job.external.items():
                try:
                    jobid = jobref.from_log(self.ws, ref)
                except UsageError as exc:
                    raise RecipeError(self.recipe.path, job.dep_lines[local], f"jobs.{name}.deps.{local}",
                                      str(exc)) from None
                post = self.ws.jobdirs.read_post(jobid)
                if not post or post.get("result") != "SUCCESS":
                    raise RecipeError(self.recipe.path, job.dep_lines[local], f"jobs.{name}.deps.{local}",
                                      f"{ref} is {jobid}, which did not succeed")
                external[name, local] = Outcome("reused", jobid, self.ws.jobdirs.path(jobid),
                                                outputs=post["outputs"])
        return external

    def dep_outcomes_of(self, job, dep_outcomes):
        """{local: Outcome} of every dependency of `job`, in-recipe and from the log."""
        result = {local: dep_outcomes[dep] for local, dep in job.deps.items()}
        result.update({local: self.external[job.name, local] for local in job.external})
        return result

    def begin(self, name, dep_outcomes):
        job = self.recipe.jobs[name]
        pending = [local for local, dep in job.deps.items() if dep_outcomes[dep].state == "stale"]
        if pending:  # dry run: a dependency will run, so this key is unknown yet
            reasons = ["no earlier job"] if self.previous_setup(name) is None else []
            return Outcome("stale", reasons=reasons + [f"dependency {p} will run" for p in pending])
        try:
            setup = self.describe(job, dep_outcomes)
        except OSError as exc:
            return Outcome("failed", reasons=[f"cannot read input {exc.filename}: {exc.strerror}"],
                           detail={"reason": f"cannot read input {exc.filename}"})
        self.keys[name] = setup["key"]
        forced = self.options.force and (not self.options.only or name == self.options.only)
        traced = None if forced else self.traced_job(setup["key"])
        # The previous setup only explains a miss; a hit needs no second read.
        previous = None if traced else self.previous_setup(name)
        decision = decide(setup, traced and traced[0], previous, forced)
        if decision.fresh:
            return self.reused(job, *traced)
        if self.options.only and name != self.options.only:
            return Outcome("failed", reasons=["has no finished job: it should have run before "
                                              f"{self.options.only}"] + decision.reasons,
                           detail={"reason": f"dependency {name} has no finished job"})
        if self.options.dry_run:
            failed = self.ws.lookup("failed", setup["key"])
            state = "failed" if failed else "stale"
            return Outcome(state, failed, reasons=decision.reasons,
                           detail={"key": setup["key"], "never_built": previous is None})
        spec = job_spec(job, setup, self.placeholder_values(job, dep_outcomes),
                        {local: o.path for local, o in self.dep_outcomes_of(job, dep_outcomes).items()})
        # A build on this workdir may have just made it (unless -B: run it anyway).
        recheck = None if forced else (lambda: self.reuse_if_traced(job, setup))
        run = LocalJobRun(spec, self.ws.jobdirs, self.record, recheck, self.guard, self.reporter,
                          decision.reasons)
        if run.acquired:
            reused = recheck() if recheck else None
            if reused:
                run.key_lock.release()
                return reused
            run.start()
        return run

    def describe(self, job, dep_outcomes):
        """The setup record this job would have now, with its key."""
        step = canonical_step(job, self.code_digest(job.method) if job.method else None)
        inputs = input_digests(self.recipe, job, self.ws.hashcache)
        deps = {local: {"jobid": o.jobid, "outputs": o.outputs}
                for local, o in self.dep_outcomes_of(job, dep_outcomes).items()}
        key = job_key(step, inputs, {local: d["outputs"] for local, d in deps.items()})
        return {"format": 1, "name": job.name, "key": key, "step": step, "inputs": inputs,
                "deps": deps, "recipe": self.recipe.path}

    def code_digest(self, method):
        """A job script's code digest, computed once per build per script."""
        if method.path not in self._code_digests:
            # Signatures first: an edit made while the digest is taken must show next time.
            # The directories searched before the last (the recipe's) too: a new
            # module in one would shadow a module found further on.
            earlier = [d for d in method.search_dirs[:-1] if d != method.search_dirs[-1] and os.path.isdir(d)]
            watched = watched_files(method) + earlier
            self._code_files[method.path] = [[p, stat_signature(p)] for p in watched]
            self._code_digests[method.path] = code_digest(method)
        return self._code_digests[method.path]

    def traced_job(self, key):
        """(jobid, post record) of the SUCCESS job recorded for `key`, if it still exists."""
        jobid = self.ws.lookup("trace", key)
        post = self.ws.jobdirs.read_post(jobid) if jobid else None
        if post and post.get("result") == "SUCCESS":
            return jobid, post
        return None

    def previous_setup(self, name):
        latest = self.ws.jobdirs.latest(name)
        return self.ws.jobdirs.read_setup(latest) if latest else None

    def reuse_if_traced(self, job, setup):
        """After waiting for a key's lock: reuse what the other build made, if anything."""
        traced = self.traced_job(setup["key"])
        return self.reused(job, *traced) if traced else None

    def reused(self, job, jobid, post):
        path = self.ws.jobdirs.path(jobid)
        state = "fresh" if self.options.dry_run else "reused"
        if not self.options.dry_run:
            if self.ws.jobdirs.latest(job.name) != jobid:
                self.ws.jobdirs.set_latest(jobid)
            self.links += publish(self.recipe.results, path, job.publish)
        return Outcome(state, jobid, path, outputs=post["outputs"])

    def record(self, key, jobid, ok):
        """Index a finished job (called inside the signal guard's critical section)."""
        rows = [("trace", key.encode(), jobid.encode()), ("failed", key.encode(), None)] if ok \
            else [("failed", key.encode(), jobid.encode())]
        self.ws.store.put_many(rows + self.ws.hashcache.pending)
        self.ws.hashcache.pending = []
        if ok:
            job = self.recipe.jobs[jobid.rsplit("-", 1)[0]]
            self.links += publish(self.recipe.results, self.ws.jobdirs.path(jobid), job.publish)

    def log_jobs(self):
        """{name: {jobid, key, state}} for the build log."""
        return {name: {"jobid": o.jobid, "key": self.keys.get(name), "state": o.state}
                for name, o in self.outcomes.items()}

    def stamp(self, asked_targets):
        """Record this (successful) build for the no-op fast path; see exmake.fs.stamp."""
        if any(o.state not in ("built", "reused") for o in self.outcomes.values()):
            return
        if self.external:  # `:LIST/latest:x` may point elsewhere after any other build
            return
        jobs = [self.recipe.jobs[name] for name in self.outcomes]
        signatures = self.ws.hashcache.signatures
        files = [[p, signatures[p]] for job in jobs for spec in job.inputs.values() for p in spec.files]
        files += [entry for entries in self._code_files.values() for entry in entries]
        dirs = [d for job in jobs for spec in job.inputs.values() for d in spec.dirs]
        latest = [[os.path.join(self.recipe.workdir, f"{name}-LATEST"), o.jobid]
                  for name, o in self.outcomes.items()]
        record = make_stamp([self.recipe.path, self.recipe.signature], self.recipe.digest,
                            self.targets, list(self.recipe.jobs), files, dirs,
                            [[name, o.jobid, o.path, self.keys[name]] for name, o in self.outcomes.items()],
                            latest + self.links, self.started_ns)
        if record:
            self.ws.store.put_many([("stamps", stamp_id(self.recipe.path, asked_targets), record)])

    def placeholder_values(self, job, dep_outcomes):
        """Placeholder text -> value, for expanding the job's command."""
        values = {}
        for name, spec in job.inputs.items():
            values[f"{{inputs.{name}}}"] = spec.files if spec.kind == "glob" else spec.path
        for local, outcome in self.dep_outcomes_of(job, dep_outcomes).items():
            values[f"{{deps.{local}}}"] = outcome.path
        for name, value in job.options.items():
            values[f"{{options.{name}}}"] = value
        return values
