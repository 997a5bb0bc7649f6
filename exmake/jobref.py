"""Job references: the ways a person names one job directory.

    NAME               the job's current fresh directory (exit 1 if it is stale;
                       `show` falls back to its latest attempt if that failed)
    NAME-N             that job directory
    NAME-LATEST        the directory the latest build used for NAME
    NAME~K             the K-th successful job of that name before the newest
                       (NAME~0 is the newest, by job number)
    :LIST/ENTRY:NAME   the job of that name in a build-log entry, e.g.
                       :default/latest:count, :nightly/~2:fit (see `exmake urd`)
    PATH               (show, verify) the job directory that holds a file: a
                       published result, a file in a job directory, the
                       directory itself, or a file reached through a job's
                       deps/ view; symlinks are followed to the file itself.
                       A job directory is one exmake made: `NAME-N` holding
                       a valid setup.json of that job id (with `workdir: .`
                       a user's `backup-2024/` is none)
"""

import os
import re

from exmake.errors import UsageError
from exmake.fs.jobdir import JOB_NAME_PATTERN, JOBID_RE, LATEST, listing
from exmake.names import URD_REF_RE
from exmake.recipe import suggest
from exmake.urd import MAX_JOB_NUMBER_DIGITS, entry_spec_problem

LATEST_RE = re.compile(rf"^({JOB_NAME_PATTERN})-{LATEST}$")
OLDER_RE = re.compile(rf"^({JOB_NAME_PATTERN})~([0-9]{{1,9}})$")
FORMS = "NAME, NAME-N, NAME-LATEST, NAME~K or :LIST/ENTRY:NAME"
# The longest reference any form allows: a job name, a list name and a timestamp.
MAX_REF_CHARS = 512


def is_urd_ref(text):
    return bool(URD_REF_RE.match(text))


def resolve(ws, ref, current):
    """The job id `ref` stands for; UsageError (exit 2) if it names nothing.
    `current(ws, name)` answers a bare NAME (see exmake.rebuilder.current_job):
    passed in, so that this module stays below the rebuilder, which uses
    `from_log` for dependencies on logged jobs."""
    check_form(ref)
    jobdirs = ws.jobdirs
    if ref in ws.recipe.jobs:  # first: an instance `map@S-1` looks like a job id too
        return current(ws, ref)
    if ref in ws.recipe.families:
        raise UsageError(f"{ref!r} is a family of {len(ws.recipe.families[ref])} jobs: name one, e.g. "
                         f"{(ws.recipe.families[ref] or [ref + '@VALUE'])[0]}")
    if LATEST_RE.match(ref):
        jobid = jobdirs.latest(LATEST_RE.match(ref).group(1))
        if jobid is None:
            raise UsageError(f"{ref}: no build has used job {ref[:-7]!r} yet")
        return jobid
    if OLDER_RE.match(ref):
        return older(ws, *OLDER_RE.match(ref).groups())
    if URD_REF_RE.match(ref):
        return from_log(ws, ref)
    if JOBID_RE.match(ref):
        if not os.path.isdir(jobdirs.path(ref)) or os.path.islink(jobdirs.path(ref)):
            raise UsageError(f"{ref}: no such job directory in {jobdirs.workdir}")
        return ref
    raise UsageError(f"{ref!r} is not a job: use {FORMS}{suggest(ref, ws.recipe.jobs)}")


def is_path(ws, text):
    """True when `text` names a path rather than a job: it holds a `/` (no job
    reference does, save `:LIST/ENTRY:NAME`), or it is no job of the recipe
    and something of that name exists."""
    if text.startswith(":"):
        return False
    return os.sep in text or (text not in ws.recipe.jobs and os.path.lexists(text))


def from_path(ws, path):
    """(job id, the file's path inside its job directory or None) for a path in
    a job directory of this workdir; UsageError (exit 2) for any other path."""
    real = os.path.realpath(path)
    if not os.path.exists(real):
        raise UsageError(f"{path!r} is not a job ({FORMS}), nor a file or directory that exists")
    workdir = os.path.realpath(ws.jobdirs.workdir)
    rel = os.path.relpath(real, workdir)
    parts = rel.split(os.sep)
    if rel.startswith(os.pardir) or not JOBID_RE.match(parts[0]):
        raise UsageError(f"{path}: not in a job directory of {ws.jobdirs.workdir}")
    if not ws.jobdirs.is_job_directory(parts[0]):
        raise UsageError(f"{path}: not in a job directory of {ws.jobdirs.workdir} ({parts[0]} is named "
                         f"like one, but holds no setup.json of job {parts[0]})")
    inside = os.sep.join(parts[1:]) or None
    return parts[0], inside


def made_by(ws, jobid):
    """The build-log entry of the build that made (built) `jobid`, or None."""
    from exmake.urd import Log
    if ws.store is None:  # a read-only workspace without a build log
        return None
    log = Log(ws.store)
    for list_name in sorted(log.lists()):
        for entry in log.entries(list_name):
            if any(j.get("jobid") == jobid and j.get("state") == "built" for j in entry["jobs"].values()):
                return entry
    return None


def check_form(ref):
    """UsageError for a reference no form allows, before any lookup: a
    thousand-digit N or K must not reach int() or a path."""
    if len(ref) > MAX_REF_CHARS:
        raise UsageError(f"a job reference of {len(ref):,} characters: use {FORMS}")
    match = JOBID_RE.match(ref)
    if match and len(match.group(2)) > MAX_JOB_NUMBER_DIGITS:
        raise UsageError(f"{ref[:40]}...: a job number has at most {MAX_JOB_NUMBER_DIGITS} digits")
    if "~" in ref and not ref.startswith(":") and not OLDER_RE.match(ref):
        raise UsageError(f"{ref[:60]!r}: NAME~K needs K a whole number of at most 9 digits")
    if URD_REF_RE.match(ref):
        problem = entry_spec_problem(URD_REF_RE.match(ref).group(1))
        if problem:
            raise UsageError(f"{ref[:60]}: {problem}")


def older(ws, name, back):
    """NAME~K: successful job directories of `name`, newest (highest N) first."""
    numbers = sorted((int(m.group(2)) for m in map(JOBID_RE.match, listing(ws.jobdirs.workdir))
                      if m and m.group(1) == name), reverse=True)
    done = [f"{name}-{n}" for n in numbers if ws.jobdirs.is_success(f"{name}-{n}")]
    if int(back) >= len(done):
        raise UsageError(f"{name}~{back}: there are only {len(done)} successful {name!r} jobs")
    return done[int(back)]


def from_log(ws, ref):
    """:LIST/ENTRY:NAME: the job `NAME` of that build-log entry."""
    from exmake.urd import Log
    entry_spec, name = URD_REF_RE.match(ref).groups()
    if not os.path.exists(os.path.join(ws.jobdirs.meta, "lmdb", "data.mdb")):
        # Checked before touching ws.store, which would create an empty index.
        raise UsageError(f"{ref}: the build log of {ws.recipe.workdir} is empty")
    entry = Log(ws.store).entry(entry_spec)
    job = entry["jobs"].get(name)
    if job is None or not job.get("jobid") or not JOBID_RE.match(job["jobid"]):
        raise UsageError(f"{ref}: entry {entry['list']}/{entry['timestamp']} has no job {name!r}"
                         f"{suggest(name, entry['jobs'])}")
    if not os.path.isdir(ws.jobdirs.path(job["jobid"])):
        raise UsageError(f"{ref}: {job['jobid']} was recorded there but its directory is gone")
    found = (ws.jobdirs.read_setup(job["jobid"]) or {}).get("key")
    if job.get("key") and found and found != job["key"]:
        # The number was handed out again (an index recovered before the log
        # was imported): never answer with another job's directory.
        raise UsageError(f"{ref}: {job['jobid']} was recorded there, but that directory now holds "
                         "another job (its key differs)")
    return job["jobid"]
