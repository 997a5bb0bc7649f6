"""Verifying a finished job: run it again in a scratch directory and compare.

`verify_job` re-runs one finished SUCCESS job exactly as a build would (the
same JobSpec, the same stable view of the same dependency directories),
but in `<workdir>/.exmake/verify/<jobid>-<pid>/`, under another job number
and touching nothing a build reads: no index row, no `-LATEST`, no result
link. It then compares the new outputs with the hashes the job recorded and
names each file that differs, is missing or is new: a nondeterministic job
is found before anyone relies on it (as Nix's `--check` does). The scratch
directory is locked while verify runs (`retention.hold_verify_scratch`) and
removed when it is interrupted; one kept after a difference or failure is
removed by `exmake gc`.

A job is verified against what made it: when the recipe, an input or its
job script has changed since (its key would differ), it is not re-run; the
reasons say what changed. When something it reads changes while it runs
again (the check a build makes before it records a job), the re-run proves
nothing either way: the Verification says so (`changed`), not that the job
differs, and its scratch directory is removed.

A job made before the stable view (exmake.view) read its dependencies and
inputs by absolute paths with job numbers, which a re-run no longer uses:
its outputs cannot be compared with one, and it is not re-run
(`predates_view`; `PredatesView` says so and how to remake it).
"""

import os
import shutil

from exmake import retention, view
from exmake.errors import UsageError
from exmake.fs.jobdir import JOBID_RE, JobDirs
from exmake.jobrun import LocalJobRun, job_spec
from exmake.outcome import Outcome
from exmake.rebuild import explain
from exmake.rebuilder import Rebuilder
from exmake.schedule import Scheduler
from exmake.signals import SignalGuard


class Verification:
    """What verifying one job found.

    jobid        the job verified
    outcome      the re-run's Outcome (built, or failed with a reason)
    differences  [(path, recorded digest or None, new digest or None)]
    same         how many outputs were identical
    scratch      the scratch directory, kept when anything differs or the run
                 failed, else None (removed)
    changed      None, or why the re-run cannot be compared: what it read
                 changed while it ran (an input edited meanwhile)
    """

    def __init__(self, jobid, outcome, differences, same, scratch, changed=None):
        self.jobid, self.outcome, self.differences, self.same, self.scratch, self.changed = \
            jobid, outcome, differences, same, scratch, changed

    @property
    def reproducible(self):
        return self.outcome.state == "built" and not self.differences


class PredatesView(UsageError):
    """The job was made before the stable view: it cannot be compared (exit 2)."""


def predates_view(setup, path):
    """True when the job in `path` with setup record `setup` was made before
    the stable view: a shell job whose setup.json has no `command`, or a job
    with dependencies or inputs but no `deps/X` / `inputs/X` links."""
    if setup["step"].get("run") is not None and "command" not in setup:
        return True
    wanted = [view.dep_link(local) for local in setup["deps"]] + \
        [os.path.join(view.INPUTS_DIR, local) for local in setup["inputs"]]
    return not all(os.path.lexists(os.path.join(path, link)) for link in wanted)


def verify_job(ws, jobid, reporter):
    """Run finished job `jobid` again in a scratch directory; a Verification.
    PredatesView (a UsageError) for a job made before the stable view."""
    setup, post = ws.jobdirs.read_setup(jobid), ws.jobdirs.read_post(jobid)
    if not setup or not post or post["result"] != "SUCCESS":
        raise UsageError(f"{jobid} did not succeed: only a finished job can be verified")
    if predates_view(setup, ws.jobdirs.path(jobid)):
        raise PredatesView(f"{jobid} was made before the stable view (it read its inputs and dependencies "
                           f"by absolute paths): a re-run cannot be compared with it; remake it with "
                           f"`exmake -B {setup['name']}`, then verify")
    job = ws.recipe.jobs.get(setup["name"])
    if job is None:
        raise UsageError(f"{jobid}: job {setup['name']!r} is no longer in {ws.recipe.path}")
    rebuilder = Rebuilder(ws)
    deps, dep_outcomes = setup["deps"], {}
    for local, dep in deps.items():
        outcome = Outcome("reused", dep["jobid"], ws.jobdirs.path(dep["jobid"]), outputs=dep["outputs"])
        if local in job.external:
            rebuilder.external[job.name, local] = outcome
        elif local in job.deps:
            dep_outcomes[job.deps[local]] = outcome
    missing = [local for local in [*job.deps, *job.external] if local not in deps]
    now = None if missing else rebuilder.setup_for(job, dep_outcomes)
    if now is None or now["key"] != setup["key"]:
        why = explain(setup, now) if now else [f"dependency {m} is new" for m in missing]
        raise UsageError(f"{jobid} is not what the recipe makes now ({'; '.join(why)}): "
                         f"verify checks a job against what made it; build and verify the new one")
    scratch = os.path.join(ws.jobdirs.meta, retention.VERIFY_DIR, f"{jobid}-{os.getpid()}")
    lock = retention.hold_verify_scratch(scratch)  # gc leaves it alone while we run
    try:
        return _verify_in(ws, jobid, job, now, post, rebuilder, dep_outcomes, scratch, reporter)
    except BaseException:  # interrupted, or anything else: nothing of the re-run is worth keeping
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    finally:
        lock.release()


def _verify_in(ws, jobid, job, now, post, rebuilder, dep_outcomes, scratch, reporter):
    number = int(JOBID_RE.match(jobid).group(2))
    scratch_dirs = JobDirs(scratch, numbers_after={job.name: number})
    changed = []

    def changed_since_read():  # as a build checks before it records a job
        reason = rebuilder.changed_since_read(job)
        if reason:
            changed.append(reason)
        return reason
    outcome = _run(ws, job, now, scratch_dirs, rebuilder.dep_outcomes_of(job, dep_outcomes), reporter,
                   changed_since_read)
    if changed:
        shutil.rmtree(scratch, ignore_errors=True)
        return Verification(jobid, outcome, [], 0, None, changed[0])
    differences, same = compare(post["outputs"], outcome.outputs or [])
    keep = outcome.state != "built" or differences
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return Verification(jobid, outcome, differences, same, scratch if keep else None)


def _run(ws, job, setup, scratch_dirs, dep_outcomes, reporter, verify):
    """Run `job` once, into `scratch_dirs`, as a build would; its Outcome.
    `verify()`: None, or why the run cannot stand (see jobrun.JobSpec)."""
    dep_paths = {local: o.path for local, o in dep_outcomes.items()}
    spec = job_spec(job, dict(setup), ws.recipe.root, dep_paths, verify=verify)
    guard = SignalGuard()

    def begin(name, _):
        run = LocalJobRun(spec, scratch_dirs, lambda key, jobid, ok, release: release(), None, guard, reporter, ["verify"])
        run.start()  # its own lock directory: nothing else holds the key there
        return run
    with guard:
        outcomes = Scheduler([job.name], {job.name: []}, 1, False).run(begin, lambda *_: None)
    return outcomes[job.name]


def compare(recorded, now):
    """([(path, recorded digest, new digest)] that differ, how many are the same)."""
    old, new = dict(map(tuple, recorded)), dict(map(tuple, now))
    differences = [(path, old.get(path), new.get(path)) for path in sorted(old.keys() | new.keys())
                   if old.get(path) != new.get(path)]
    return differences, sum(1 for path, digest in old.items() if new.get(path) == digest)
