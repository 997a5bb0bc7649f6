"""Where a job's result becomes visible: the trace index, `<name>-LATEST` and
the published result links.

One place for the local build, exec-job on a compute node (which is a local
build of one job) and the cluster build's reuse of fresh jobs, so they can
never make a result visible in different ways.

Finished jobs are indexed in batches (group commit): `record` queues a job,
`commit` flushes the workdir's filesystem once (exmake.fs.durable), writes
the batch's index rows, hash-cache rows and job-number counters in one LMDB
transaction, then points LATEST and the results at each job and releases
their key locks. The build commits when a batch is COMMIT_INTERVAL_S old
or COMMIT_MAX_JOBS long, when nothing else runs, and at its end (Ctrl-C
included). Dependents do not wait for the commit: they start as soon as a
job's directory is in place. A kill before the commit leaves finished but
unindexed jobs, which the next build does not know and runs again; a key
stays locked until its job is indexed, so no other build runs it twice.
"""

import os
import time

from exmake.fs.durable import sync_filesystem
from exmake.fs.jobdir import JOBID_RE, LATEST
from exmake.fs.publish import publish, unpublish

COMMIT_INTERVAL_S = 0.25   # the longest a finished job waits to be indexed while others run
COMMIT_MAX_JOBS = 500      # and the most that wait


class Ledger:
    """Indexes and points at the jobs of one workspace; collects the links made."""

    def __init__(self, ws):
        self.ws = ws
        self.links = []   # [link, target] of every result symlink made or confirmed
        self.pending = [] # (job, key, jobid, ok, release) finished, not yet indexed
        self.pending_since = None

    def adopt(self, job, jobid):
        """Make `jobid` the current job of recipe job `job`: LATEST and its results."""
        if self.ws.jobdirs.latest(job.name) != jobid:
            self.ws.jobdirs.set_latest(jobid)
        self.links += publish(self.ws.recipe.results, self.ws.jobdirs.path(jobid), job.publish)

    def adopt_elsewhere(self, job, path):
        """Publish the results of a job of another workdir (`reuse_from:`) from
        where it lies; `-LATEST` names a job of this workdir, so it stays."""
        self.links += publish(self.ws.recipe.results, path, job.publish)

    def record(self, job, key, jobid, ok, release=lambda: None):
        """Queue a finished job for the next commit; `release()` (its key lock)
        is called once it is indexed."""
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append((job, key, jobid, ok, release))

    def commit_due(self):
        """When the queued batch should be committed (a monotonic time), or None."""
        if not self.pending:
            return None
        if len(self.pending) >= COMMIT_MAX_JOBS:
            return 0.0
        return self.pending_since + COMMIT_INTERVAL_S

    def commit(self, final=False):
        """Make the queued jobs durable and index them (with the hash-cache rows
        taken meanwhile and the job numbers handed out) in one transaction;
        then adopt those that succeeded and release their keys. `final` (the
        build's end): the numbers handed out are stored even with nothing to
        index, before the build log may name them (a job that could not even
        record its post.json is logged as failed under its number)."""
        if not self.pending:
            if final and self.ws.jobdirs.taken:
                self.ws.store.commit([], self.ws.jobdirs.taken)
            return
        batch, self.pending = self.pending, []
        try:
            sync_filesystem(self.ws.recipe.workdir)
            rows = []
            for job, key, jobid, ok, release in batch:
                rows += [("trace", key.encode(), jobid.encode()), ("failed", key.encode(), None)] if ok \
                    else [("failed", key.encode(), jobid.encode())]
            self.ws.store.commit(rows + self.ws.hashcache.pending, self.ws.jobdirs.taken)
            self.ws.hashcache.pending = []
            for job, key, jobid, ok, release in batch:
                if ok:
                    self.adopt(job, jobid)
        finally:
            for *_, release in batch:
                release()

    def prune(self, every=False):
        """Remove the published results of this recipe's jobs that are no longer
        in it (a job taken out, a family value that went away) or no longer
        publish that path (its `publish:` entry renamed or dropped); returns
        [(link, job name)]. `every` (exmake clean): all of this recipe's
        results, and those into job directories gone if the name is this
        recipe's. A link to a job another recipe made (two recipes may share a
        workdir and a results directory) is not this one's to remove.

        Only links `publish:` could have made are candidates: the results
        directory may contain the workdir (`results: .`), so the walk never
        enters the workdir, a directory holding `.exmake/`, or a job directory
        (their deps/ links and a job's own symlink outputs are the job's), and
        never touches a `-LATEST` link. Recipes are compared by real path, so
        a build through a symlinked path knows its own jobs."""
        recipe = self.ws.recipe
        if not os.path.isdir(recipe.results):
            return []
        workdir = os.path.realpath(recipe.workdir)
        ours = os.path.realpath(recipe.path)
        tops = {os.path.abspath(recipe.workdir), workdir}

        def private(path):
            # Not publish's to look into: the workdir, another recipe's workdir,
            # a job directory (by real path: also through a symlink).
            real = os.path.realpath(path)
            return (real == workdir or os.path.basename(real) == ".exmake"
                    or os.path.isdir(os.path.join(real, ".exmake"))
                    or (JOBID_RE.match(os.path.basename(real)) is not None
                        and os.path.isfile(os.path.join(real, "setup.json"))))

        def candidates():
            for dirpath, dirnames, filenames in os.walk(recipe.results):  # symlinks not followed
                entries = dirnames + filenames
                dirnames[:] = [d for d in dirnames if not private(os.path.join(dirpath, d))]
                for entry in entries:
                    link = os.path.join(dirpath, entry)
                    if os.path.islink(link) and not entry.endswith(f"-{LATEST}"):
                        yield link

        gone = []
        for link in candidates():
            target = os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link)))
            jobid = next((os.path.relpath(t, top).split(os.sep)[0] for t in (target, os.path.realpath(link))
                          for top in tops if t.startswith(top + os.sep)), None)
            match = JOBID_RE.match(jobid) if jobid else None
            if not match:
                continue
            job = recipe.jobs.get(match.group(1))
            if not every and job is not None and os.path.relpath(link, recipe.results) in job.publish:
                continue
            if every and not os.path.lexists(self.ws.jobdirs.path(jobid)):
                if job is None:
                    continue
            else:
                setup = self.ws.jobdirs.read_setup(jobid)
                if setup is None or not isinstance(setup.get("recipe"), str) \
                        or os.path.realpath(setup["recipe"]) != ours:
                    continue
            unpublish(recipe.results, link)
            gone.append((link, match.group(1)))
        return gone
