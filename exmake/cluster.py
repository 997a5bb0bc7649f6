"""Building on a cluster: batch scripts, job arrays, submission in waves, and waiting.

The submitting exmake surveys the targets (a dry run) and plans the
submissions (exmake.arrays): a family's same-shaped jobs go as job arrays
of up to 1,000 tasks (fewer if the site's MaxArraySize says so), every
other job alone. It writes every batch script, and each array's tasks file
(task i -> job name), into `<workdir>/.batch/<build>/` before the first
submission, then submits them in dependency order with `afterok` (or
`aftercorr`/`afterany`, arrays.py says when) on the scheduler ids of
dependencies not yet finished, in waves that keep its queued jobs under the
site's MaxSubmitJobs. A batch script runs `exmake exec-job`, the same
single-job code path as a local build: on the compute node it computes the
job's key, reuses an equal finished job if there is one (so early cutoff
works on the cluster too), or runs the job and finishes its directory, and
leaves `<job>.result.json` beside its script.

Then it polls the scheduler with ONE query per interval for the whole build
(all arrays and jobs), backing off while nothing changes, until every job is
final (without waiting: until every wave is submitted). A job the scheduler
no longer knows is final when its result file is there, and failed when a
bounded number of answers spread over a minute never knew it and it left
none. Ctrl-C or SIGTERM cancels the build's jobs and arrays.

A build killed outright leaves its jobs on the scheduler and their ids in
jobs.json. The next build waits for those still queued or running that it
would submit again, then surveys afresh: what they finished is reused, and
nothing runs twice.

<workdir>/.batch/<build>/jobs.json (format 2), rewritten after each submission:
    {"format": 2, "build", "backend", "recipe", "targets",
     "jobs": {name: scheduler id, "ARRAY_TASK" for an array's task}, "arrays": {label: array id}}
<workdir>/.batch/<build>/<label>.tasks.json (format 1), one per array, written before it is submitted:
    {"format": 1, "tasks": [job name of task 0, of task 1, ...]}
"""

import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone

from exmake.arrays import ARRAY_MAX_TASKS, index_ranges, plan
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
# A big build's query takes a while (squeue lists every array task): wait at
# least this many times as long as the last one took, so that asking costs the
# controller and our CPUs at most about a tenth of the time.
POLL_COST_FACTOR = 10
NO_ANSWER_NOTE_S = 300.0   # while the scheduler does not answer, say so this often
SUBMIT_IDS = "exmake_ids"
SUBMIT_LIMIT_WORDS = "submit limit"  # in sbatch's refusal at MaxSubmitJobs ("... (job submit limit, ...)")  # submit.sh's array of scheduler ids
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


def render_script(backend, recipe, unit, build_id, directory, force=False, throttle=None):
    """The text of one unit's batch script: one job's, or an array's whose task
    i runs the job its tasks file names at index i."""
    job = recipe.jobs[unit.names[0]]  # an array's jobs all ask for the same resources
    cores = job.resources.get("cores") or job.slices or None
    array = None
    if unit.array:
        array = f"0-{len(unit.names) - 1}" + (f"%{throttle}" if throttle else "")
    directives = backend.directives(job.resources, cores, f"exmake-{unit.family or job.name}",
                                    os.path.join(directory, f"{unit.label}.out"),
                                    os.path.join(directory, f"{unit.label}.err"), recipe.root, array=array)
    argv = [sys.executable, "-m", "exmake", "exec-job", "-f", recipe.path, "--build", build_id]
    argv += ["-B"] if force else []
    if unit.array:
        argv += ["--tasks", tasks_path(directory, unit.label)]
        what = (f"# exmake: {len(unit.names)} jobs of family {unit.family} of {_comment(recipe.path)}, "
                f"build {build_id};\n# task i runs the job at index i of {unit.label}.tasks.json.")
    else:
        argv.append(job.name)
        what = f"# exmake: job {job.name} of {_comment(recipe.path)}, build {build_id}."
    lines = ["#!/bin/bash", *directives, what,
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


def plan_units(backend, recipe, names, limits):
    """The submissions (exmake.arrays.Unit) for `names`: arrays of a family's
    jobs of one shape, at most what the site allows per array and in the queue."""
    max_tasks = min(ARRAY_MAX_TASKS, limits.max_tasks or ARRAY_MAX_TASKS, limits.max_submit or ARRAY_MAX_TASKS)
    return plan(names, lambda n: recipe.jobs[n].deps.values(), lambda n: recipe.jobs[n].family,
                       lambda n: _shape(recipe.jobs[n]), max_tasks)


def _shape(job):
    """Equal for jobs one batch script can run: the same directives."""
    return json.dumps([job.resources, job.resources.get("cores") or job.slices], sort_keys=True, default=str)


def tasks_path(directory, label):
    return os.path.join(directory, f"{label}.tasks.json")


def write_scripts(backend, recipe, units, build_id, directory, force=False, throttle=None):
    """{label: script path} for `units`, written (executable) into `directory`,
    each array's tasks file beside its script: all before anything is submitted."""
    os.makedirs(directory, exist_ok=True)
    scripts = {}
    for unit in units:
        if unit.array:
            atomic.write_json(tasks_path(directory, unit.label), {"format": 1, "tasks": unit.names}, fsync=False)
        path = os.path.join(directory, f"{unit.label}.sh")
        text = render_script(backend, recipe, unit, build_id, directory, force, throttle)
        atomic.write_bytes(path, text.encode(), fsync=False, mode=atomic.SCRIPT_MODE)
        scripts[unit.label] = path
    return scripts


def task_job(path, index_text):
    """The job name task `index_text` of an array runs, from its tasks file (exec-job)."""
    record = atomic.read_json(path)
    tasks = record.get("tasks") if isinstance(record, dict) and record.get("format") == 1 else None
    if not isinstance(tasks, list):
        raise UsageError(f"{path}: not an exmake tasks file (format 1)")
    if not (index_text or "").isdigit() or int(index_text) >= len(tasks):
        raise UsageError(f"{path}: no task {index_text!r} (SLURM_ARRAY_TASK_ID) among its {len(tasks)}")
    return tasks[int(index_text)]


SCHEDULER_KINDS = {"corr": "aftercorr", "all": "afterok", "tasks": "afterok", "any": "afterany"}


def submit_script(backend, recipe, units, scripts):
    """A shell script that submits `units` in order with their dependencies.
    The scheduler ids are kept in a bash associative array keyed by unit
    label, never in variables named after jobs: a job may be called PATH or IFS."""
    lines = ["#!/bin/bash", f"# Submits the jobs of {_comment(recipe.path)} to {backend.name} in dependency order.",
             "set -euo pipefail", 'cd "$(dirname "$0")"',
             f"declare -A {SUBMIT_IDS}  # job (or array) label -> {backend.name} job id"]
    for unit in units:
        deps = []
        for label, (kind, pairs) in unit.deps.items():
            if kind == "tasks":
                deps += [("afterok", label, f"_{there}") for there in sorted({t for _, t in pairs})]
            else:
                deps.append((SCHEDULER_KINDS[kind], label, ""))
        script = os.path.basename(scripts[unit.label])
        key = shlex.quote(unit.label)
        lines.append(f"{SUBMIT_IDS}[{key}]=$({backend.submit_line(script, deps, SUBMIT_IDS)})")
        lines.append(f'echo {key} "${{{SUBMIT_IDS}[{key}]}}"')
    return "\n".join(lines) + "\n"


class ClusterBuild:
    """Survey, submit (in waves under the site's limit), and wait for one build on a cluster."""

    def __init__(self, ws, backend, reporter, survey, build_id=None, force=False, throttle=None):
        self.force = force
        self.throttle = throttle        # -j: at most this many tasks of an array run at once
        self.ws = ws
        self.recipe = ws.recipe
        self.backend = backend
        self.reporter = reporter
        self.survey = survey            # callable: targets -> {name: Outcome} (dry run)
        self.build_id = build_id or new_build_id()
        self.directory = batch_dir(self.recipe.workdir, self.build_id)
        self.ids = {}                   # name -> scheduler id ("ARRAY_TASK" for an array's task)
        self.unit_ids = {}              # unit label -> scheduler id (an array's own)
        self.units = []                 # exmake.arrays.Unit, in submission order
        self.by_label = {}              # label -> Unit
        self.next_unit = 0              # index of the first unit not yet submitted
        self.max_submit = None          # the site's MaxSubmitJobs, if any
        self.logs = {}                  # name -> its stderr log
        self.taken_over = []            # ids of an earlier, killed build's jobs waited for
        self.outcomes = {}
        self.silent_since = None        # when the scheduler stopped answering, while it does not

    def run(self, targets, wait=True):
        check_paths(self.backend, self.directory)
        planned = self.survey(targets)
        self.ws.enter_build()  # shared with other builds; keeps gc away while we wait
        guard = SignalGuard()
        with guard:
            try:
                if self._await_earlier(planned):  # they may have finished what we would submit
                    planned = self.survey(targets)
                to_submit = [name for name, o in planned.items() if o.state != "fresh" or self.force]
                for name, outcome in planned.items():
                    if name not in to_submit:
                        self._reuse(name, outcome)
                self._prepare(to_submit)
                if wait:
                    self.reporter.start(len(to_submit))  # a bar on a terminal, lines elsewhere
                self._drive(targets, wait, guard)
            except KeyboardInterrupt:
                self.backend.cancel(self._live_ids())
                raise Interrupted("interrupted: cancelled the build's jobs") from None
            finally:
                self.reporter.close()
        if not wait:
            for name in self.ids:
                self.outcomes.setdefault(name, Outcome("submitted", None, None,
                                                       [f"{self.backend.name} job {self.ids[name]}"]))
        return {name: self.outcomes[name] for name in planned}

    def _reuse(self, name, outcome):
        if outcome.detail.get("workdir"):  # a job of another workdir (`reuse_from:`), used in place
            Ledger(self.ws).adopt_elsewhere(self.recipe.jobs[name], outcome.path)
        else:
            Ledger(self.ws).adopt(self.recipe.jobs[name], outcome.jobid)
        self.outcomes[name] = Outcome("reused", outcome.jobid, outcome.path, outcome.reasons,
                                      detail={"workdir": outcome.detail.get("workdir")})
        self.reporter.job_done(name, self.outcomes[name])

    def _live_ids(self):
        """What to cancel: every submission with a job not yet final."""
        live = [job_id for label, job_id in self.unit_ids.items()
                if any(n in self.ids and n not in self.outcomes for n in self.by_label[label].names)]
        return live + self.taken_over

    # -- an earlier build killed while its jobs ran ---------------------------

    def _await_earlier(self, planned):
        """Wait for the jobs of the newest earlier build (one killed while they ran)
        that are still queued or running and that this build would submit again;
        True if there were any. Submitting them again would run them twice."""
        previous = latest_build(self.recipe.workdir)
        record = read_jobs(self.recipe.workdir, previous) if previous else None
        if not isinstance(record, dict) or record.get("backend") != self.backend.name:
            return False
        waiting = {name: job_id for name, job_id in (record.get("jobs") or {}).items()
                   if name in planned and planned[name].state != "fresh"}
        interval, first = POLL_MIN_S, True
        while waiting:
            try:
                states = self.backend.query(list(waiting.values()))
            except SchedulerError as exc:
                self._no_answer(exc)
                time.sleep(interval)
                interval = min(interval * POLL_BACKOFF, POLL_MAX_S)
                continue
            waiting = {name: job_id for name, job_id in waiting.items()
                       if job_id in states and not states[job_id].final and states[job_id].state != "UNKNOWN"}
            if first and waiting:
                self.reporter.write(f"  waiting for {len(waiting)} job{'s' if len(waiting) != 1 else ''} "
                                    f"of build {previous}, still on {self.backend.name}")
            if first and not waiting:
                return False
            first = False
            self.taken_over = sorted(set(waiting.values()))
            if waiting:
                time.sleep(interval)
                interval = min(interval * POLL_BACKOFF, POLL_MAX_S)
        self.taken_over = []
        return True

    # -- submission ---------------------------------------------------------

    def _prepare(self, names):
        """Plan the submissions and write every script and tasks file."""
        if not names:
            return
        limits = self.backend.limits()
        self.max_submit = limits.max_submit
        self.units = plan_units(self.backend, self.recipe, names, limits)
        self.by_label = {unit.label: unit for unit in self.units}
        self.scripts = write_scripts(self.backend, self.recipe, self.units, self.build_id, self.directory,
                                     self.force, self.throttle)
        for unit in self.units:
            for index, name in enumerate(unit.names):
                stem = f"{unit.label}.{index}" if unit.array else unit.label
                self.logs[name] = os.path.join(self.directory, f"{stem}.err")

    def _submit_wave(self, targets, guard=None):
        """Submit the next units, in order, while the queue has room for them
        under MaxSubmitJobs (at least one when nothing of ours is queued)."""
        queued = sum(1 for name in self.ids if name not in self.outcomes)
        while self.next_unit < len(self.units):
            unit = self.units[self.next_unit]
            if self.max_submit and queued and queued + len(unit.names) > self.max_submit:
                return
            with guard.critical():  # a submitted id is on disk before an interrupt can cancel it
                try:
                    queued += self._submit_unit(unit, targets)
                except SchedulerError as exc:
                    # The limit counts the user's other jobs too (and may be a QOS's, not in
                    # the config): refused for it while ours are queued, try after they move.
                    if not queued or SUBMIT_LIMIT_WORDS not in str(exc):
                        raise
                    return
                self.next_unit += 1
            guard.checkpoint()

    def _submit_unit(self, unit, targets):
        """Submit the jobs of `unit` whose dependencies did not fail; the number submitted."""
        tasks = []
        for index, name in enumerate(unit.names):
            if name in self.outcomes:  # skipped on an earlier try that the site refused
                continue
            failed = self._failed_deps(name)
            if failed:  # already known: submitting would only have it cancelled
                self._settle(name, Outcome("skipped", reasons=[f"dependency {failed[0]} failed"]))
            else:
                tasks.append(index)
        if not tasks:
            return 0
        deps = self._dependencies(unit, tasks)
        script = self.scripts[unit.label]
        if unit.array:
            array = None if len(tasks) == len(unit.names) else index_ranges(tasks) + (
                f"%{self.throttle}" if self.throttle else "")
            job_id = self.backend.submit(script, deps, array=array)
            for index in tasks:
                self.ids[unit.names[index]] = f"{job_id}_{index}"
            what = f"{self.backend.name} array job {job_id}: {len(tasks)} jobs"
        else:
            job_id = self.ids[unit.names[0]] = self.backend.submit(script, deps)
            what = f"{self.backend.name} job {job_id}"
        self.unit_ids[unit.label] = job_id
        self._save(targets)
        self.reporter.write(f"  submit  {unit.label:<20} {what}")
        return len(tasks)

    def _dependencies(self, unit, tasks):
        """[(kind, scheduler id)] the submission of `tasks` of `unit` waits for:
        only jobs not yet finished (a finished one the scheduler may have forgotten)."""
        tasks = set(tasks)
        deps = []
        for label, (kind, pairs) in unit.deps.items():
            other = self.by_label[label]
            needed = sorted({there for here, there in pairs if here in tasks
                             and self.outcomes.get(other.names[there], _NONE).state not in ("built", "reused")})
            if not needed:
                continue
            other_id = self.unit_ids[label]
            if kind == "tasks":
                deps += [("afterok", f"{other_id}_{there}") for there in needed]
            else:
                deps.append((SCHEDULER_KINDS[kind], other_id))
        return deps

    def _save(self, targets):
        record = {"format": 2, "build": self.build_id, "backend": self.backend.name,
                  "recipe": self.recipe.path, "targets": list(targets), "jobs": self.ids,
                  "arrays": {label: job_id for label, job_id in self.unit_ids.items() if self.by_label[label].array}}
        atomic.write_json(os.path.join(self.directory, "jobs.json"), record, fsync=False)

    # -- waiting ------------------------------------------------------------

    def _drive(self, targets, wait, guard=None):
        """Submit wave after wave; poll (one query for the whole build) until
        every job is final, or, without `wait`, until all are submitted."""
        interval = POLL_MIN_S
        seen, unknown = {}, {}  # unknown: name -> [answers in a row that did not know it, time of the first]
        while True:
            self._submit_wave(targets, guard)
            pending = {name: job_id for name, job_id in self.ids.items() if name not in self.outcomes}
            if self.next_unit == len(self.units) and (not wait or not pending):
                return
            asked = time.monotonic()
            changed = self._poll(pending, seen, unknown)
            floor = min(max(POLL_MIN_S, POLL_COST_FACTOR * (time.monotonic() - asked)), POLL_MAX_S)
            interval = floor if changed else min(max(interval * POLL_BACKOFF, floor), POLL_MAX_S)
            time.sleep(interval)

    def _poll(self, pending, seen, unknown):
        """Ask the scheduler once about every pending job and settle the final
        ones; whether anything changed."""
        try:
            states = self.backend.query(list(pending.values()))
        except SchedulerError as exc:  # no answer is not "forgotten": ask again, later
            self._no_answer(exc)
            return False
        self.silent_since = None
        changed = False
        for name, job_id in pending.items():  # in submission order: a dependency settles first
            state = states.get(job_id)
            if state is None or state.state == "UNKNOWN":
                outcome = self._unknown(name, unknown)
            else:
                unknown.pop(name, None)
                if seen.get(name) != state.state:
                    seen[name], changed = state.state, True
                outcome = self._final(name, state) if state.final else None
            if outcome is not None:
                changed = True
                self._settle(name, outcome)
        return changed

    def _settle(self, name, outcome):
        self.outcomes[name] = outcome
        self.reporter.job_done(name, outcome)

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
        failed_deps = self._failed_deps(name)
        if result and not (failed_deps and result["state"] == "failed"):
            return _from_result(result)
        if failed_deps:  # afterok on a failed job: it never ran, and must not pend forever
            if not result:
                self.backend.cancel([self.ids[name]])
            return Outcome("skipped", reasons=[f"dependency {failed_deps[0]} failed"])
        count, since = unknown.setdefault(name, [0, time.monotonic()])
        unknown[name][0] = count = count + 1
        if count < UNKNOWN_ANSWERS_MAX or time.monotonic() - since < UNKNOWN_MIN_S:
            return None
        log = self.logs.get(name) or os.path.join(self.directory, f"{name}.err")
        reason = (f"{self.backend.name}: job {self.ids[name]} is no longer known to the scheduler "
                  f"and left no result")
        return Outcome("failed", reasons=[], detail={"reason": reason, "log": log, "stderr_tail": stderr_tail(log)})

    def _final(self, name, state):
        """The Outcome of a job the scheduler says has ended."""
        result = self._result(name)
        if state.state == "COMPLETED" and result:
            return _from_result(result)
        failed_deps = self._failed_deps(name)
        # NEVER_RUNS or CANCELLED: Slurm held it on afterok/aftercorr; FAILED: an
        # array task under afterany found on its node that a dependency had not finished.
        if failed_deps:
            if state.state == "NEVER_RUNS":
                self.backend.cancel([self.ids[name]])
            return Outcome("skipped", reasons=[f"dependency {failed_deps[0]} failed"])
        if result and result["state"] == "failed":
            return _from_result(result)
        log = self.logs.get(name) or os.path.join(self.directory, f"{name}.err")
        reason = f"{self.backend.name}: {state.state}" + (f" ({state.reason})" if state.reason else "")
        return Outcome("failed", reasons=[], detail={"reason": reason, "log": log,
                                                     "stderr_tail": stderr_tail(log)})


_NONE = Outcome(None)


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

