"""The rebuilder: the one answer to "is this job fresh, and if not, why".

Every command that needs that answer asks a `Rebuilder`: the build (before
running a job, and again after taking its key's lock), the dry run,
`status`, `why`, gc's survey, `path`/`show NAME`, exec-job on a compute
node, and the cluster build's survey. The no-op stamp and the watcher take
the files and directories a job depends on from the same place
(`exmake.method.code_identity` for job scripts, the recipe's InputSpecs for
inputs), so no two of them can disagree about what a job reads.

For one job and the outcomes of its dependencies, `decide` returns a
Verdict: the would-be setup record and key, the finished job with that key
if any, and the reasons a person can act on. The pure comparison of two
setup records lives in exmake.rebuild; this module adds what must be read
from disk: input digests (through the hash cache), job-script code
identities (once per script per build), the trace index (read once per
build, in one transaction per table), and the job's latest attempt.

`survey` walks a set of targets in dependency order and decides each job
without running anything: the dry run that every read-only command shares.

Reuse from other workdirs (`reuse_from:`, --reuse-from) is part of the same
decision, not a second one: when this workdir has no finished job with the
key, `decide` asks each other workdir in turn (exmake.fs.elsewhere, which
only reads there and offers only complete job directories whose outputs
hash as recorded) and accepts a job only when its setup record's step,
inputs and dependency outputs are this job's own. The Verdict then names
that workdir; the build uses the job in place. When the build log says an
earlier build used a job from another workdir and it is no longer usable
there, the reasons say so, and the job runs here.
Unlike a build it never stops at a failure: a job whose last attempt
failed would run again, and its dependents would run after it.
"""

import json
import os

from exmake import graph, view
from exmake.errors import RecipeError, UsageError
from exmake.fs.elsewhere import OtherWorkdir
from exmake.fs.hashcache import signature
from exmake.fs.jobdir import JOBID_RE, listing
from exmake.fs.records import make_setup
from exmake.keys import canonical_step, input_digests, job_key
from exmake.method import MethodError, code_identity
from exmake.rebuild import decide
from exmake.outcome import Outcome

ATTEMPTS_TRIED = 3   # newest job numbers to try when looking for a name's latest attempt
LOG_ENTRIES_READ = 20  # newest build-log entries searched for a job used from another workdir


class Verdict:
    """The decision about one job.

    fresh:   a finished SUCCESS job has this key (`jobid`, its `post` record)
    setup:   the would-be setup record (None while a dependency will run first)
    key:     setup["key"], or None
    reasons: why it must run, or (fresh) what it was matched with
    failed:  the job id of a FAILURE job with this very key, if any
    attempt: the job id of the latest attempt of this job name, if any
    problem: why it cannot run at all (an input that cannot be read), or None
    workdir: the other workdir the fresh job lies in (`reuse_from:`), or None
    """

    __slots__ = ("fresh", "setup", "key", "jobid", "path", "post", "reasons", "failed", "attempt", "problem",
                 "workdir")

    def __init__(self, fresh=False, setup=None, jobid=None, post=None, reasons=None, failed=None,
                 attempt=None, problem=None, path=None, workdir=None):
        self.fresh, self.setup, self.jobid, self.post, self.path = fresh, setup, jobid, post, path
        self.workdir = workdir
        self.key = setup["key"] if setup else None
        self.reasons = reasons or []
        self.failed, self.attempt, self.problem = failed, attempt, problem


class Rebuilder:
    """Decides the jobs of one workspace; one instance per build or survey."""

    def __init__(self, ws):
        self.ws = ws
        self.recipe = ws.recipe
        self.code = {}          # job script path -> CodeIdentity
        self._index = None      # {"trace": {key: jobid}, "failed": {key: jobid}}, read once
        self._numbers = None    # job name -> its job numbers, newest first (one listing)
        self.external = {}      # (job name, local) -> Outcome of a dep from the build log
        self._elsewhere = None  # [OtherWorkdir] of `reuse_from:`, opened on first need
        self._used_before = None  # key -> (jobid, workdir) an earlier build used from elsewhere

    # -- what a job depends on ----------------------------------------------

    def code_identity(self, method):
        """A job script's CodeIdentity, computed once per build per script; a
        script or imported module that cannot be parsed is a recipe error (exit 2)
        naming its file and line."""
        found = self.code.get(method.path)
        if found is None:
            try:
                found = self.code[method.path] = code_identity(method)
            except MethodError as exc:
                raise RecipeError(exc.path or method.path, exc.line, None, exc.problem) from None
        return found

    def setup_for(self, job, dep_outcomes):
        """The setup record `job` would have now, with its key; OSError if an
        input cannot be read. `dep_outcomes`: {dep job name: Outcome}."""
        code = self.code_identity(job.method).digest if job.method else None
        step = canonical_step(job, code)
        inputs = input_digests(self.recipe, job, self.ws.hashcache)
        deps = {local: {"jobid": o.jobid, "outputs": o.outputs,
                        **({"workdir": o.detail["workdir"]} if o.detail.get("workdir") else {})}
                for local, o in self.dep_outcomes_of(job, dep_outcomes).items()}
        key = job_key(step, inputs, {local: d["outputs"] for local, d in deps.items()})
        commands = view.commands(job, self.recipe.root)
        command = (commands if job.slices else commands[0]) if commands else None
        return make_setup(job.name, key, step, inputs, deps, self.recipe.path, command)

    def changed_since_read(self, job):
        """None, or why the key computed for `job` no longer describes what it
        read: an input file or a job-script file whose stat signature differs
        from the one taken before it was hashed (an edit while the job ran), or
        a module that appeared where an import looks. Such a result must not be
        recorded under that key: a later build with the old content would
        reuse what the new content made."""
        signatures = self.ws.hashcache.signatures
        read = [(p, signatures[p]) for spec in job.inputs.values() for p in spec.files if p in signatures]
        code = self.code.get(job.method.path) if job.method else None
        if code:
            read += [(p, tuple(sig)) for p, sig in code.files]
            for path in code.absent:
                if os.path.lexists(path):
                    return f"{self.recipe.relpath(path)} appeared while the job ran; run exmake again"
        for path, sig in read:
            try:
                now = signature(os.stat(path))
            except OSError:
                now = None
            if now != tuple(sig):
                return f"{self.recipe.relpath(path)} changed while the job ran; run exmake again"
        return None

    def dep_outcomes_of(self, job, dep_outcomes):
        """{local: Outcome} of every dependency of `job`, in-recipe and from the log."""
        result = {local: dep_outcomes[dep] for local, dep in job.deps.items()}
        result.update({local: self.external[job.name, local] for local in job.external})
        return result

    def resolve_external(self, order):
        """Resolve deps on jobs from the build log (`:LIST/ENTRY:NAME`) for the jobs
        of `order`; a reference that names nothing is a recipe error naming its line."""
        from exmake import jobref
        for name in order:
            job = self.recipe.jobs[name]
            for local, ref in job.external.items():
                if (name, local) in self.external:  # given already (a subjob's deps: exmake.subjobs)
                    continue
                where = (self.recipe.path, job.dep_lines[local], f"jobs.{name}.deps.{local}")
                try:
                    jobid = jobref.from_log(self.ws, ref)
                except UsageError as exc:
                    raise RecipeError(*where, str(exc)) from None
                post = self.ws.jobdirs.read_post(jobid)
                if not post or post.get("result") != "SUCCESS":
                    raise RecipeError(*where, f"{ref} is {jobid}, which did not succeed")
                self.external[name, local] = Outcome("reused", jobid, self.ws.jobdirs.path(jobid),
                                                     outputs=post["outputs"])
        return self.external

    # -- the decision ----------------------------------------------------------

    def decide(self, job, dep_outcomes, forced=False):
        """The Verdict for `job` given {dep job name: Outcome} of its in-recipe deps.
        A dependency whose state is not final-and-successful (a dry run's
        "stale" or "failed") means this job's key cannot be known yet."""
        pending = [local for local, dep in job.deps.items()
                   if dep_outcomes[dep].state not in ("built", "reused", "fresh")]
        if pending:
            attempt = self.latest_attempt(job.name)
            reasons = [] if attempt else ["no earlier job"]
            return Verdict(attempt=attempt, reasons=reasons + [
                f"dependency {p} {'will run' if dep_outcomes[job.deps[p]].state != 'skipped' else 'cannot run'}"
                for p in pending])
        try:
            setup = self.setup_for(job, dep_outcomes)
        except OSError as exc:
            return Verdict(problem=f"cannot read input {exc.filename}: {exc.strerror}")
        traced = None if forced else self.traced(setup["key"])
        if traced:
            jobid, post = traced
            return Verdict(True, setup, jobid, post, [f"same code, options and inputs as {jobid}"],
                           path=self.ws.jobdirs.path(jobid))
        notes = []
        if not forced:
            borrowed = self.from_elsewhere(setup, notes)
            if borrowed:
                return borrowed
            notes += self.gone_since(setup["key"])
        attempt = self.latest_attempt(job.name)
        previous = self.ws.jobdirs.read_setup(attempt) if attempt else None
        failed = self.index("failed").get(setup["key"])
        reasons = decide(setup, None, previous, forced).reasons
        if not forced:
            reasons = self._failure_reasons(attempt, failed) + [
                r for r in reasons if not (failed and r == "no finished job with this key")]
        return Verdict(False, setup, reasons=notes + reasons, failed=failed, attempt=attempt)

    # -- other workdirs (`reuse_from:`) ---------------------------------------

    def elsewhere(self):
        """The other workdirs to reuse from, this one left out."""
        if self._elsewhere is None:
            own = os.path.realpath(self.recipe.workdir)
            self._elsewhere = [OtherWorkdir(d) for d in self.recipe.reuse_from if os.path.realpath(d) != own]
        return self._elsewhere

    def from_elsewhere(self, setup, notes):
        """A fresh Verdict for a complete job with this very setup in another
        workdir, or None; why a job found there was refused goes to `notes`."""
        for other in self.elsewhere():
            found = other.find(setup["key"], self.ws.hashcache.digest)
            if found is None:
                continue
            if found[0] is None:
                notes.append(f"not reusing from {other.path}: {found[1]}")
                continue
            jobid, path, theirs, post = found
            if not same_work(theirs, setup):  # a record edited to claim this key
                notes.append(f"not reusing from {other.path}: {path}'s setup record is not this job's")
                continue
            return Verdict(True, setup, jobid, post, [f"same code, options and inputs as {jobid} in {other.path}"],
                           path=path, workdir=other.path)
        return None

    def gone_since(self, key):
        """A reason, if an earlier build used a job with `key` from another
        workdir (the build log says so) and it is not usable there now."""
        if self._used_before is None:
            self._used_before = {}
            store = self.ws.store
            from exmake.urd import DEFAULT_LIST
            rows = store.newest("urd", f"{DEFAULT_LIST}\0".encode(), LOG_ENTRIES_READ) if store else []
            for _, value in reversed(rows):  # oldest first: the newest use wins
                try:
                    entry = json.loads(value)
                except ValueError:  # a damaged entry says nothing of what was used (urd checks them)
                    continue
                jobs = entry.get("jobs") if isinstance(entry, dict) else None
                for record in (jobs.values() if isinstance(jobs, dict) else ()):
                    if isinstance(record, dict) and record.get("workdir") and record.get("key"):
                        self._used_before[record["key"]] = (record["jobid"], record["workdir"])
        if key not in self._used_before:
            return []
        jobid, workdir = self._used_before[key]
        if workdir not in [other.path for other in self.elsewhere()]:
            return [f"an earlier build used {jobid} from {workdir}, which is no longer reused from: "
                    "running it here"]
        return [f"{jobid} in {workdir}, used by an earlier build, is gone or no longer complete: "
                "running it here"]

    def _failure_reasons(self, attempt, failed):
        """Name a failed attempt: the job's newest one, or an older one with this key."""
        reasons = []
        if attempt and not self.ws.jobdirs.is_success(attempt):
            reasons.append(f"last attempt {attempt} failed" if self.ws.jobdirs.read_post(attempt)
                           else f"last attempt {attempt} did not finish")
        if failed and failed != attempt:
            reasons.append(f"{failed} failed with this key")
        return reasons

    def recheck(self, key):
        """(jobid, post) of a SUCCESS job with `key` read afresh from the index: after
        waiting for a key's lock, another build may have just made it."""
        jobid = self.ws.lookup("trace", key)
        return self._success(jobid)

    def traced(self, key):
        """(jobid, post) of the SUCCESS job the index holds for `key`, if it still exists."""
        return self._success(self.index("trace").get(key))

    def _success(self, jobid):
        post = self.ws.jobdirs.read_post(jobid) if jobid else None
        if post and post.get("result") == "SUCCESS":
            return jobid, post
        return None

    def index(self, table):
        """{key: jobid} of the trace or failed table, read once for this rebuilder."""
        if self._index is None:
            store = self.ws.store
            self._index = {t: {k.decode(): v.decode() for k, v in store.items(t)} if store else {}
                           for t in ("trace", "failed")}
        return self._index[table]

    def note_finished(self, key, jobid, ok):
        """Keep the snapshot in step with what this build recorded."""
        if self._index is not None:
            self._index["trace" if ok else "failed"][key] = jobid

    def latest_attempt(self, name):
        """The job id of the newest job directory of `name` that has a setup
        record (SUCCESS, FAILURE or unfinished), or None."""
        if self._numbers is None:
            self._numbers = {}
            for entry in listing(self.ws.jobdirs.workdir):
                match = JOBID_RE.match(entry)
                if match:
                    self._numbers.setdefault(match.group(1), []).append(int(match.group(2)))
            for numbers in self._numbers.values():
                numbers.sort(reverse=True)
        for number in self._numbers.get(name, [])[:ATTEMPTS_TRIED]:
            jobid = f"{name}-{number}"
            if os.path.isfile(os.path.join(self.ws.jobdirs.path(jobid), "setup.json")):
                return jobid
        return None

    def note_attempt(self, jobid):
        if self._numbers is not None:
            name, number = JOBID_RE.match(jobid).groups()
            self._numbers.setdefault(name, []).insert(0, int(number))


def same_work(theirs, ours):
    """Whether two setup records describe the same work: step, inputs and the
    outputs of the dependencies (what the key hashes), compared as written."""
    outputs = lambda setup: {local: d.get("outputs") for local, d in setup["deps"].items()}  # noqa: E731
    return (theirs["key"] == ours["key"] and theirs["step"] == ours["step"]
            and theirs["inputs"] == ours["inputs"] and outputs(theirs) == outputs(ours))


def survey(ws, targets, force=False):
    """{name: Outcome} of a dry run over `targets` and their dependencies, in
    build order: fresh (with the job to reuse), stale (with reasons) or failed
    (the last attempt with this key failed; it would run again, so its
    dependents are stale, not skipped). Runs nothing and writes nothing."""
    rebuilder = Rebuilder(ws)
    order = graph.build_order(ws.recipe, targets)
    rebuilder.resolve_external(order)
    outcomes = {}
    for name in order:
        job = ws.recipe.jobs[name]
        deps = {dep: outcomes[dep] for dep in job.deps.values()}
        outcomes[name] = dry_outcome(rebuilder.decide(job, deps, force))
    return outcomes


def dry_outcome(verdict):
    """The Outcome a dry run reports for a Verdict."""
    if verdict.problem:
        return Outcome("failed", reasons=[verdict.problem], detail={"reason": verdict.problem})
    if verdict.fresh:
        return Outcome("fresh", verdict.jobid, verdict.path, reasons=verdict.reasons,
                       outputs=verdict.post["outputs"],
                       detail={"workdir": verdict.workdir} if verdict.workdir else None)
    detail = {"key": verdict.key, "never_built": verdict.attempt is None}
    if verdict.failed:
        return Outcome("failed", verdict.failed, reasons=verdict.reasons, detail=detail)
    return Outcome("stale", reasons=verdict.reasons, detail=detail)


def current_job(ws, name, failed_ok=False):
    """The fresh job directory of recipe job `name`; with `failed_ok`, else its
    latest attempt if that failed (a failure is worth a look); StaleJob otherwise."""
    from exmake.errors import StaleJob
    outcome = survey(ws, [name])[name]
    if outcome.state == "fresh" and outcome.detail.get("workdir"):  # not a job of this workdir
        raise StaleJob(f"{name} is {outcome.jobid} in {outcome.detail['workdir']} (`reuse_from:`), not a job "
                       f"of this workdir: look at {outcome.path}")
    if outcome.state == "fresh":
        return outcome.jobid
    attempt = Rebuilder(ws).latest_attempt(name) if failed_ok else None
    if attempt and not ws.jobdirs.is_success(attempt) and ws.jobdirs.read_post(attempt):
        return attempt
    why = "; ".join(outcome.reasons) or outcome.state
    raise StaleJob(f"{name} is {outcome.state} ({why}); run `exmake build {name}` first")

