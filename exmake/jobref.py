"""Job references: the ways a person names one job directory.

    NAME          the job's current fresh directory (error if it is stale)
    NAME-N        that job directory
    NAME-LATEST   the directory the latest build used for NAME
"""

import os
import re

from exmake.errors import StaleJob, UsageError
from exmake.fs.jobdir import JOBID_RE, LATEST
from exmake.recipe import NAME_RE, suggest

LATEST_RE = re.compile(rf"^([A-Za-z_][A-Za-z0-9_]*)-{LATEST}$")


def resolve(ws, ref):
    """The job id `ref` stands for; UsageError (exit 2) if it names nothing."""
    jobdirs = ws.jobdirs
    if LATEST_RE.match(ref):
        jobid = jobdirs.latest(LATEST_RE.match(ref).group(1))
        if jobid is None:
            raise UsageError(f"{ref}: no build has used job {ref[:-7]!r} yet")
        return jobid
    if JOBID_RE.match(ref) and ref.rsplit("-", 1)[0] in ws.recipe.jobs or (
            JOBID_RE.match(ref) and os.path.isdir(jobdirs.path(ref))):
        if not os.path.isdir(jobdirs.path(ref)):
            raise UsageError(f"{ref}: no such job directory in {jobdirs.workdir}")
        return ref
    if NAME_RE.match(ref) and ref in ws.recipe.jobs:
        return current(ws, ref)
    raise UsageError(f"{ref!r} is not a job: use NAME, NAME-N or NAME-LATEST"
                     f"{suggest(ref, ws.recipe.jobs)}")


def current(ws, name):
    """The fresh job directory of recipe job `name`, surveying without running anything."""
    from exmake.build import Build, BuildOptions
    from exmake.report import Reporter
    outcome = Build(ws, BuildOptions(dry_run=True), Reporter(enabled=False)).run([name])[name]
    if outcome.state != "fresh":
        why = "; ".join(outcome.reasons) or outcome.state
        raise StaleJob(f"{name} is {outcome.state} ({why}); run `exmake {name}` first")
    return outcome.jobid
