"""Job directories: `<workdir>/<name>-<N>`, built aside and renamed into place.

Life of a job directory:
1. `reserve`: N comes from a counter in the store (so a deleted job's number
   is never handed out again) and is claimed by `mkdir <name>-<N>` (atomic).
2. The job runs in `<workdir>/.exmake/building/<name>-<N>`, which holds
   `setup.json` (written first) and `.lock` (flocked by the builder and its
   job processes while they live).
3. `finish`: `post.json` is written, then the building directory is renamed
   over the empty reserved one. Only now does `<name>-<N>` have content; a
   directory without a SUCCESS post.json is never reused.
4. exmake.ledger makes a batch of finished jobs durable (one syncfs) and
   indexes them in one transaction; then, on success, `<name>-LATEST` is
   swapped (atomic symlink rename) to each. Only the index makes a job
   reusable: one a power cut caught unflushed is never named by it.

Building directories whose `.lock` nobody holds were left by a killed build;
`clean_stale` removes them and their empty reservations.

Only a directory exmake can prove it reserved is ever removed: the building
directory is made only after `mkdir <name>-<N>` succeeded, so it is the
record of the reservation. An empty `<name>-<N>` without one may be the
user's (with `workdir: .`, an empty `backup-2024/` or `mount-1/`; or the
`mount-1/` that made exmake's own reservation skip to `mount-2`) and stays.
The building directory is made first, so a build killed between the two
mkdirs leaves a building directory (which clean_stale removes, and with it
the reservation if one was made and is empty), never an unrecorded one.

The records setup.json and post.json are made and checked by exmake.fs.records.
"""

import os
import re
import shutil

from exmake.fs import atomic
from exmake.fs.locks import is_locked
from exmake.fs.records import POST, SETUP, check_post, check_setup

LATEST = "LATEST"
# A job's name: an identifier, or a family instance `NAME@VALUE[,VALUE...]`
# (see exmake.families; a value may hold `-`, so a job id's N is its last `-<digits>`).
JOB_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*(?:@[A-Za-z0-9_.+,-]+)?"
JOBID_RE = re.compile(rf"^({JOB_NAME_PATTERN})-(\d+)$")


class JobDirs:
    """The job directories of one workdir."""

    def __init__(self, workdir, get_store=lambda: None, numbers_after=None):
        self.workdir = workdir
        # {name: N}: number that name's jobs from N + 1 on (a re-run of job N
        # in a scratch directory then runs under another number, as it would here).
        self.numbers_after = dict(numbers_after or {})
        self.get_store = get_store
        self.meta = os.path.join(workdir, ".exmake")
        self.building = os.path.join(self.meta, "building")
        self.lock_dir = os.path.join(self.meta, "locks")
        self._next = {}  # name -> next N to try
        self._listed = None  # name -> highest N found by one listing of the workdir
        self._counters = None  # name -> the store's next N, read once
        self.taken = {}        # name -> highest N reserved here (for the store's counters)

    def path(self, jobid):
        return os.path.join(self.workdir, jobid)

    def reserve(self, name):
        """Allocate `<name>-<N>` with mkdir; returns (jobid, building path).

        N starts past the store's counter for the name (read once per JobDirs)
        and every directory of the name; the mkdir is the claim. The counter
        is raised when the job is indexed, in the same transaction
        (exmake.ledger: `taken`), not here: a number nothing durable names yet
        (a job killed before it was indexed) may be handed out again harmlessly."""
        if name not in self._next:
            if self._counters is None:
                store = self.get_store()
                self._counters = store.counters() if store is not None else {}
                os.makedirs(self.building, exist_ok=True)
            self._next[name] = max(self._highest(name) + 1, self._counters.get(name, 0))
        while True:
            jobid = f"{name}-{self._next[name]}"
            self._next[name] += 1
            # The building directory first: it is the record that exmake is
            # reserving <name>-<N>, so a kill between the two mkdirs leaves
            # something clean_stale removes (the reservation only if empty),
            # never an empty reservation that nothing may remove.
            building = os.path.join(self.building, jobid)
            try:
                os.mkdir(building)
            except FileExistsError:
                continue  # another build is making it; N is never shared
            try:
                os.mkdir(self.path(jobid))
            except FileExistsError:
                os.rmdir(building)
                continue  # taken: by another build, or a directory of the user's
            self.taken[name] = max(self.taken.get(name, 0), self._next[name] - 1)
            return jobid, building

    def _highest(self, name):
        """The highest N among existing `<name>-<N>` (one listing per JobDirs, not per name)."""
        if self._listed is None:
            self._listed = {}
            for entry in os.listdir(self.workdir):
                match = JOBID_RE.match(entry)
                if match:
                    n = int(match.group(2))
                    self._listed[match.group(1)] = max(self._listed.get(match.group(1), 0), n)
        return max(self._listed.get(name, 0), self.numbers_after.get(name, 0))

    def finish(self, jobid, building, post):
        """Write post.json last and move the building directory into place.
        Nothing is flushed here: the job is durable once its batch is
        (exmake.fs.durable), and nothing points at it before that."""
        atomic.write_json(os.path.join(building, POST), post, fsync=False)
        atomic.unlink_quietly(os.path.join(building, ".lock"))
        # rename(2) may replace an empty directory: the reservation.
        os.rename(building, self.path(jobid))

    def abandon(self, jobid, building):
        """Remove a job that was interrupted: nothing of it may look finished.
        The reservation goes first, while the building directory still records it."""
        _rmdir_quietly(self.path(jobid))
        shutil.rmtree(building, ignore_errors=True)

    def set_latest(self, jobid):
        """Point `<name>-LATEST` at `jobid` (the caller saw it point elsewhere)."""
        name = JOBID_RE.match(jobid).group(1)
        atomic.symlink(jobid, os.path.join(self.workdir, f"{name}-{LATEST}"))

    def latest(self, name):
        """The job id `<name>-LATEST` points at, or None."""
        try:
            return os.readlink(os.path.join(self.workdir, f"{name}-{LATEST}"))
        except OSError:
            return None

    def is_job_directory(self, jobid):
        """Whether `<workdir>/<jobid>` is a job directory exmake made: a real
        directory named `<name>-<N>` holding a valid setup record of that very
        job. With `workdir: .` a user's own `photos-2019/`, or an
        `experiment-3/` holding a setup.json of its own, matches the name and
        must never be taken for a job (gc would delete it, show would read it)."""
        path = self.path(jobid)
        if JOBID_RE.match(jobid) is None or os.path.islink(path) or not os.path.isdir(path):
            return False
        setup = self.read_setup(jobid)
        return setup is not None and setup.get("jobid") == jobid and setup["name"] == jobid.rsplit("-", 1)[0]

    def read_setup(self, jobid):
        """The job's setup record, or None if missing or not a valid one."""
        return check_setup(atomic.read_json(os.path.join(self.path(jobid), SETUP)))

    def read_post(self, jobid):
        """The job's post record, or None if missing or not a valid one."""
        return check_post(atomic.read_json(os.path.join(self.path(jobid), POST)))

    def is_success(self, jobid):
        post = self.read_post(jobid)
        return bool(post) and post.get("result") == "SUCCESS"

    def scan(self):
        """Yield (jobid, setup, post) for every finished job directory."""
        for entry in listing(self.workdir):
            if JOBID_RE.match(entry) and not os.path.islink(self.path(entry)):
                post = self.read_post(entry)
                setup = self.read_setup(entry)
                if post and setup:
                    yield entry, setup, post

    def clean_stale(self):
        """Remove building directories left by killed builds, and the empty
        reservations they record; returns their job ids."""
        try:
            entries = os.listdir(self.building)
        except FileNotFoundError:
            return []
        removed = []
        for jobid in entries:
            building = os.path.join(self.building, jobid)
            if not is_locked(os.path.join(building, ".lock")):
                self.abandon(jobid, building)
                removed.append(jobid)
        return removed


def listing(path):
    """The sorted entries of a directory; none if it does not exist."""
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


def _rmdir_quietly(path):
    try:
        os.rmdir(path)  # only an empty reservation; never a finished job
    except OSError:
        pass
