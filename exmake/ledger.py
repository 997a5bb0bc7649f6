"""Where a job's result becomes visible: the trace index, `<name>-LATEST` and
the published result links.

One place for the local build, exec-job on a compute node (which is a local
build of one job) and the cluster build's reuse of fresh jobs, so they can
never make a result visible in different ways. A finished job is indexed
first (inside the signal guard's critical section, right after its
directory was renamed into place), then pointed at; a kill in between only
leaves LATEST and the links to the next build, which reuses the job and
points at it then.
"""

import os

from exmake.fs.jobdir import JOBID_RE
from exmake.fs.publish import links_into, publish, unpublish


class Ledger:
    """Indexes and points at the jobs of one workspace; collects the links made."""

    def __init__(self, ws):
        self.ws = ws
        self.links = []   # [link, target] of every result symlink made or confirmed

    def adopt(self, job, jobid):
        """Make `jobid` the current job of recipe job `job`: LATEST and its results."""
        if self.ws.jobdirs.latest(job.name) != jobid:
            self.ws.jobdirs.set_latest(jobid)
        self.links += publish(self.ws.recipe.results, self.ws.jobdirs.path(jobid), job.publish)

    def record(self, job, key, jobid, ok):
        """Index a finished job (with the hash-cache rows taken meanwhile, in one
        transaction); adopt it if it succeeded."""
        rows = [("trace", key.encode(), jobid.encode()), ("failed", key.encode(), None)] if ok \
            else [("failed", key.encode(), jobid.encode())]
        self.ws.store.put_many(rows + self.ws.hashcache.pending)
        self.ws.hashcache.pending = []
        if ok:
            self.adopt(job, jobid)

    def prune(self):
        """Remove the published results of this recipe's jobs that are no longer
        in it (a job taken out, a family value that went away); returns
        [(link, job name)]. A link to a job another recipe made (two recipes
        may share a workdir and a results directory) is not this one's to remove."""
        recipe = self.ws.recipe
        if not os.path.isdir(recipe.results):
            return []
        gone = []
        for link, jobid in links_into(recipe.results, recipe.workdir):
            match = JOBID_RE.match(jobid)
            if not match or match.group(1) in recipe.jobs:
                continue
            setup = self.ws.jobdirs.read_setup(jobid)
            if setup is None or setup.get("recipe") != recipe.path:
                continue
            unpublish(recipe.results, link)
            gone.append((link, match.group(1)))
        return gone
