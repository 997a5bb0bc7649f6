"""Building on a cluster: batch scripts, submission with afterok, and waiting.

The submitting exmake surveys the targets (a dry run), writes a batch
script for every job that may need to run into `<workdir>/.batch/<build>/`,
and submits them in dependency order, each with `afterok` on the scheduler
ids of its submitted dependencies. A batch script runs `exmake exec-job`,
the same single-job code path as a local build: on the compute node it
computes the job's key, reuses an equal finished job if there is one (so
early cutoff works on the cluster too), or runs the job and finishes its
directory, and leaves `<job>.result.json` beside its script.

Then, unless told not to wait, it polls the scheduler with ONE query per
interval for the whole build, backing off while nothing changes, until
every job is final. A job the scheduler no longer knows is final when its
result file is there, and failed when a bounded number of answers spread
over a minute never knew it and it left none. Ctrl-C cancels the build's jobs.

<workdir>/.batch/<build>/jobs.json (format 1), rewritten after each submission:
    {"format": 1, "build", "backend", "recipe", "targets", "jobs": {name: scheduler id}}
"""

import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone

from exmake.backends.base import SchedulerError
from exmake.errors import Interrupted, UsageError
from exmake.fs import atomic
from exmake.jobrun import stderr_tail
from exmake.ledger import Ledger
from exmake.outcome import Outcome
from exmake.signals import SignalGuard

POLL_MIN_S = 0.25     # first look, and after any change
POLL_MAX_S = 10.0     # longest wait between looks while nothing changes
POLL_BACKOFF = 1.5
NO_ANSWER_NOTE_S = 300.0   # while the scheduler does not answer, say so this often
SUBMIT_IDS = "exmake_ids"  # submit.sh's array of scheduler ids
# A scheduler forgets finished jobs (Slurm after MinJobAge, without accounting;
# slurm-wlm-torque's qstat cannot be asked at all). A job it does not know is
# settled by its <job>.result.json at once; without one, it is lost only after
# this many answers in a row that do not know it, spread over at least this
# long (a scheduler that is briefly down answers nothing about any job).
UNKNOWN_ANSWERS_MAX = 10
UNKNOWN_MIN_S = 60.0


def new_build_id():
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + str(os.getpid())


def batch_dir(workdir, build_id):
    return os.path.join(workdir, ".batch", build_id)


def render_script(backend, recipe, job, build_id, directory, force=False):
    """The text of one job's batch script."""
    cores = job.resources.get("cores") or job.slices or None
    directives = backend.directives(job.resources, cores, f"exmake-{job.name}",
                                    os.path.join(directory, f"{job.name}.out"),
                                    os.path.join(directory, f"{job.name}.err"), recipe.root)
    argv = [sys.executable, "-m", "exmake", "exec-job", "-f", recipe.path, "--build", build_id, job.name]
    if force:
        argv.insert(-1, "-B")
    lines = ["#!/bin/bash", *directives,
             f"# exmake: job {job.name} of {_comment(recipe.path)}, build {build_id}.",
             "# Runs the job, or reuses an equal finished one, as a local build would.",
             "set -e", f"cd {shlex.quote(recipe.root)}"]
    # The default slice count is part of a job's key: the node must use ours.
    lines.append(f"export EXMAKE_DEFAULT_SLICES={recipe.slices}")
    if os.environ.get("PYTHONPATH"):
        lines.append(f"export PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])}")
    lines.append("exec " + " ".join(shlex.quote(a) for a in argv))
    return "\n".join(lines) + "\n"


def _comment(text):
    """`text` safe inside a `#` comment line: a recipe path may hold a line break,
    and what follows it would be a command. JSON string escapes keep it one line."""
    return json.dumps(text)[1:-1]


def check_paths(backend, directory):
    """UsageError (exit 2), before anything is written, if the scheduler cannot
    use the batch directory's path (see Backend.path_problem)."""
    problem = backend.path_problem(directory)
    if problem:
        raise UsageError(f"{directory!r}: {problem}; build locally, or move the project or its workdir")


def write_scripts(backend, recipe, names, build_id, directory, force=False):
    """{name: script path} for `names`, written (executable) into `directory`."""
    os.makedirs(directory, exist_ok=True)
    scripts = {}
    for name in names:
        path = os.path.join(directory, f"{name}.sh")
        atomic.write_bytes(path, render_script(backend, recipe, recipe.jobs[name], build_id, directory, force).encode(),
                           fsync=False, mode=atomic.SCRIPT_MODE)
        scripts[name] = path
    return scripts


def submit_script(backend, recipe, names, scripts):
    """A shell script that submits `names` in order with afterok dependencies.
    The scheduler ids are kept in a bash associative array keyed by job name,
    never in variables named after jobs: a job may be called PATH or IFS."""
    lines = ["#!/bin/bash", f"# Submits the jobs of {_comment(recipe.path)} to {backend.name} in dependency order.",
             "set -euo pipefail", 'cd "$(dirname "$0")"',
             f"declare -A {SUBMIT_IDS}  # job name -> {backend.name} job id"]
    for name in names:
        deps = [d for d in recipe.jobs[name].deps.values() if d in names]
        script = os.path.basename(scripts[name])
        key = shlex.quote(name)
        lines.append(f"{SUBMIT_IDS}[{key}]=$({backend.submit_line(script, deps, SUBMIT_IDS)})")
        lines.append(f'echo {key} "${{{SUBMIT_IDS}[{key}]}}"')
    return "\n".join(lines) + "\n"


class ClusterBuild:
    """Survey, submit, and (optionally) wait for one build on a cluster."""

    def __init__(self, ws, backend, reporter, survey, build_id=None, force=False):
        self.force = force
        self.ws = ws
        self.recipe = ws.recipe
        self.backend = backend
        self.reporter = reporter
        self.survey = survey            # callable: targets -> {name: Outcome} (dry run)
        self.build_id = build_id or new_build_id()
        self.directory = batch_dir(self.recipe.workdir, self.build_id)
        self.ids = {}                   # name -> scheduler id
        self.outcomes = {}
        self.silent_since = None        # when the scheduler stopped answering, while it does not

    def run(self, targets, wait=True):
        check_paths(self.backend, self.directory)
        planned = self.survey(targets)
        self.ws.enter_build()  # shared with other builds; keeps gc away while we wait
        to_submit = [name for name, o in planned.items() if o.state != "fresh" or self.force]
        for name, outcome in planned.items():
            if name not in to_submit:
                self._reuse(name, outcome)
        with SignalGuard():
            try:
                self._submit(targets, to_submit)
                if wait:
                    self.reporter.start(len(to_submit))  # a bar on a terminal, lines elsewhere
                    self._wait()
            except KeyboardInterrupt:
                self.backend.cancel([self.ids[n] for n in self.ids if n not in self.outcomes])
                raise Interrupted("interrupted: cancelled the build's jobs") from None
            finally:
                self.reporter.close()
        if not wait:
            for name in to_submit:
                self.outcomes[name] = Outcome("submitted", None, None,
                                              [f"{self.backend.name} job {self.ids[name]}"])
        return {name: self.outcomes[name] for name in planned}

    def _reuse(self, name, outcome):
        if outcome.detail.get("workdir"):  # a job of another workdir (`reuse_from:`), used in place
            Ledger(self.ws).adopt_elsewhere(self.recipe.jobs[name], outcome.path)
        else:
            Ledger(self.ws).adopt(self.recipe.jobs[name], outcome.jobid)
        self.outcomes[name] = Outcome("reused", outcome.jobid, outcome.path, outcome.reasons,
                                      detail={"workdir": outcome.detail.get("workdir")})
        self.reporter.job_done(name, self.outcomes[name])

    def _submit(self, targets, names):
        if not names:
            return
        scripts = write_scripts(self.backend, self.recipe, names, self.build_id, self.directory, self.force)
        for name in names:
            deps = [self.ids[d] for d in self.recipe.jobs[name].deps.values() if d in self.ids]
            self.ids[name] = self.backend.submit(scripts[name], deps)
            self._save(targets)
            self.reporter.write(f"  submit  {name:<20} {self.backend.name} job {self.ids[name]}")

    def _save(self, targets):
        record = {"format": 1, "build": self.build_id, "backend": self.backend.name,
                  "recipe": self.recipe.path, "targets": list(targets), "jobs": self.ids}
        atomic.write_json(os.path.join(self.directory, "jobs.json"), record, fsync=False)

    def _wait(self):
        pending = {name: job_id for name, job_id in self.ids.items()}
        interval = POLL_MIN_S
        seen = {}
        unknown = {}  # name -> [answers in a row that did not know it, monotonic time of the first]
        while pending:
            try:
                states = self.backend.query(list(pending.values()))
            except SchedulerError as exc:  # no answer is not "forgotten": ask again, later
                self._no_answer(exc)
                interval = min(interval * POLL_BACKOFF, POLL_MAX_S)
                time.sleep(interval)
                continue
            self.silent_since = None
            changed = False
            for name, job_id in list(pending.items()):
                state = states.get(job_id)
                if state is None or state.state == "UNKNOWN":
                    outcome = self._unknown(name, unknown)
                else:
                    unknown.pop(name, None)
                    if seen.get(name) != state.state:
                        seen[name], changed = state.state, True
                    outcome = self._final(name, state) if state.final else None
                if outcome is not None:
                    del pending[name]
                    changed = True
                    self.outcomes[name] = outcome
                    self.reporter.job_done(name, outcome)
            interval = POLL_MIN_S if changed else min(interval * POLL_BACKOFF, POLL_MAX_S)
            if pending:
                time.sleep(interval)

    def _no_answer(self, exc):
        """The scheduler did not answer (its controller down, a timeout): say so
        once a while, and keep waiting; the jobs may well be running."""
        now = time.monotonic()
        if self.silent_since is None:
            self.silent_since = now
            self.reporter.write(f"exmake: {self.backend.name} does not answer ({exc}); still waiting")
        elif now - self.silent_since >= NO_ANSWER_NOTE_S:
            self.silent_since = now
            self.reporter.write(f"exmake: {self.backend.name} still does not answer; still waiting")

    def _result(self, name):
        """What exec-job reported in `<job>.result.json`, or None."""
        result = atomic.read_json(os.path.join(self.directory, f"{name}.result.json"))
        return result if isinstance(result, dict) and result.get("state") else None

    def _failed_deps(self, name):
        return [d for d in self.recipe.jobs[name].deps.values()
                if d in self.outcomes and self.outcomes[d].state in ("failed", "skipped")]

    def _unknown(self, name, unknown):
        """The Outcome of a job the scheduler did not know in this answer, or None to wait on."""
        result = self._result(name)
        if result:
            return _from_result(result)
        failed_deps = self._failed_deps(name)
        if failed_deps:  # afterok on a failed job: it never ran, and must not pend forever
            self.backend.cancel([self.ids[name]])
            return Outcome("skipped", reasons=[f"dependency {failed_deps[0]} failed"])
        count, since = unknown.setdefault(name, [0, time.monotonic()])
        unknown[name][0] = count = count + 1
        if count < UNKNOWN_ANSWERS_MAX or time.monotonic() - since < UNKNOWN_MIN_S:
            return None
        log = os.path.join(self.directory, f"{name}.err")
        reason = (f"{self.backend.name}: job {self.ids[name]} is no longer known to the scheduler "
                  f"and left no result")
        return Outcome("failed", reasons=[], detail={"reason": reason, "log": log, "stderr_tail": stderr_tail(log)})

    def _final(self, name, state):
        """The Outcome of a job the scheduler says has ended."""
        result = self._result(name)
        if state.state == "COMPLETED" and result:
            return _from_result(result)
        failed_deps = self._failed_deps(name)
        if state.state in ("NEVER_RUNS", "CANCELLED") and failed_deps:
            if state.state == "NEVER_RUNS":
                self.backend.cancel([self.ids[name]])
            return Outcome("skipped", reasons=[f"dependency {failed_deps[0]} failed"])
        if result and result["state"] == "failed":
            return _from_result(result)
        log = os.path.join(self.directory, f"{name}.err")
        reason = f"{self.backend.name}: {state.state}" + (f" ({state.reason})" if state.reason else "")
        return Outcome("failed", reasons=[], detail={"reason": reason, "log": log,
                                                     "stderr_tail": stderr_tail(log)})


def _from_result(result):
    """The Outcome exec-job reported."""
    if result["state"] == "failed":
        return Outcome("failed", result.get("jobid"), result.get("path"), result.get("reasons"),
                       detail=result.get("detail") or {})
    return Outcome(result["state"], result.get("jobid"), result.get("path"), result.get("reasons"),
                   result.get("duration", 0.0))


def write_result(workdir, build_id, name, outcome):
    """exec-job's report to the submitting exmake: `<job>.result.json` in the batch directory."""
    directory = batch_dir(workdir, build_id)
    os.makedirs(directory, exist_ok=True)
    atomic.write_json(os.path.join(directory, f"{name}.result.json"), {
        "state": outcome.state, "jobid": outcome.jobid, "path": outcome.path,
        "reasons": outcome.reasons, "detail": outcome.detail, "duration": outcome.duration})


def read_jobs(workdir, build_id):
    return atomic.read_json(os.path.join(batch_dir(workdir, build_id), "jobs.json"))


def latest_build(workdir):
    """The id of the newest batch directory, or None."""
    try:
        builds = sorted(os.listdir(os.path.join(workdir, ".batch")))
    except FileNotFoundError:
        return None
    return builds[-1] if builds else None

