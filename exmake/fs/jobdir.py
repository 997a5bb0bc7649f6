"""Job directories: `<workdir>/<name>-<N>`, each run in place under a marker.

Life of a job directory:
1. `reserve`: N comes after the store's counter and every existing
   `<name>-<N>`. The marker `<workdir>/.exmake/building/<name>-<N>` is
   created first (O_EXCL: the claim among builds), then `mkdir <name>-<N>`
   (the claim against anything else there), then the new directory's
   (device, inode) is written into the marker: the record that exmake made
   that very directory.
2. The job runs in `<name>-<N>` itself (its paths, in logs and tracebacks,
   are the ones that stay). The builder and the job's processes flock the
   marker while they live; `setup.json` is written first.
3. `finish`: `post.json` is written (atomically: its presence means the job
   ended), then the marker goes. A directory without a SUCCESS post.json is
   never reused.
4. exmake.ledger makes a batch of finished jobs durable (one syncfs) and
   indexes them in one transaction; then, on success, `<name>-LATEST` is
   swapped (atomic symlink rename) to each. Only the index makes a job
   reusable: one a power cut caught unflushed is never named by it.

Markers nobody holds were left by a killed build: `clean_stale` removes
them, and the directory each records, whatever it holds (a job cut off
mid-run). Only a directory exmake can prove it made is ever removed with
what it holds: one whose (device, inode) its marker holds. A marker without
them (a kill before the mkdir, or between the mkdir and the write) proves
nothing: the directory under that name goes only if it is empty (with
`workdir: .` an `experiment-3/` of the user's may sit under a job's name).
(Earlier versions built in `.exmake/building/<jobid>/` and renamed into
place; such a directory, left by one of them, is cleaned as it was then.)
Running in place rather than aside saves, per job, the rename into place and
re-aiming the stable view's links for it (exmake.fs.links).

The records setup.json and post.json are made and checked by exmake.fs.records.
"""

import os
import re
import shutil
import stat

from exmake.fs import atomic
from exmake.fs.hashing import output_digest
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
        """Allocate `<name>-<N>` (see the module docstring); returns (jobid, its
        path: where the job runs).

        N starts past the store's counter for the name (read once per JobDirs)
        and every directory of the name. The counter is raised when the job is
        indexed, in the same transaction (exmake.ledger: `taken`), not here: a
        number nothing durable names yet (a job killed before it was indexed)
        may be handed out again harmlessly."""
        if name not in self._next:
            if self._counters is None:
                store = self.get_store()
                self._counters = store.counters() if store is not None else {}
                os.makedirs(self.building, exist_ok=True)
            self._next[name] = max(self._highest(name) + 1, self._counters.get(name, 0))
        while True:
            jobid = f"{name}-{self._next[name]}"
            self._next[name] += 1
            marker = self.marker(jobid)
            try:
                fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue  # another build is making it; N is never shared
            try:
                try:
                    os.mkdir(self.path(jobid))
                except FileExistsError:
                    os.unlink(marker)
                    continue  # taken: by another build, or a directory of the user's
                st = os.lstat(self.path(jobid))
                os.write(fd, f"{st.st_dev} {st.st_ino}\n".encode())
            finally:
                os.close(fd)
            self.taken[name] = max(self.taken.get(name, 0), self._next[name] - 1)
            return jobid, self.path(jobid)

    def marker(self, jobid):
        """The file that says `<jobid>` is being made, and by whom (its flock)."""
        return os.path.join(self.building, jobid)

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

    def finish(self, jobid, path, post):
        """Write post.json (the job has ended), then drop the marker. Nothing is
        flushed here: the job is durable once its batch is (exmake.fs.durable),
        and nothing points at it before that."""
        atomic.write_json(os.path.join(path, POST), post, fsync=False)
        atomic.unlink_quietly(self.marker(jobid))

    def abandon(self, jobid, path=None):
        """Remove a job that was interrupted: nothing of it may look finished.
        Only while its marker records the directory: never a finished job's,
        never one exmake did not make. The marker goes last, so a kill midway
        leaves it for clean_stale to finish the work."""
        marker = self.marker(jobid)
        if os.path.isdir(marker) and not os.path.islink(marker):  # an earlier version's building directory
            _rmdir_quietly(self.path(jobid))
            shutil.rmtree(marker, ignore_errors=True)
            return
        made = self._made_by_marker(jobid)
        if made:
            shutil.rmtree(self.path(jobid), ignore_errors=True)
        elif made is None:  # a kill between the mkdir and recording it: only an empty one goes
            _rmdir_quietly(self.path(jobid))
        atomic.unlink_quietly(marker)

    def _made_by_marker(self, jobid):
        """Whether `<jobid>` is the very directory its marker recorded making;
        None if the marker records nothing (made, and killed before the mkdir
        or before recording it)."""
        try:
            with open(self.marker(jobid), "rb") as f:
                recorded = f.read(100).split()
            if not recorded:
                return None
            st = os.lstat(self.path(jobid))
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and recorded == [str(st.st_dev).encode(), str(st.st_ino).encode()]

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

    def outputs_intact(self, jobid, post):
        """Whether every output `post` records hashes as recorded now. For a
        finished job that no index names (the index was lost, or a kill came
        before its batch was committed): only the index vouches that a job's
        bytes reached the disk (exmake.fs.durable), so without it they are
        read again before the job is trusted."""
        base = self.path(jobid)
        for rel, digest in post.get("outputs", []):
            try:
                if output_digest(os.path.join(base, rel)) != digest:
                    return False
            except (OSError, ValueError):
                return False
        return True

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
        """Remove what killed builds left: each marker nobody holds, and the
        directory it records; returns their job ids."""
        try:
            entries = os.listdir(self.building)
        except FileNotFoundError:
            return []
        removed = []
        for jobid in entries:
            marker = self.marker(jobid)
            lock = os.path.join(marker, ".lock") if os.path.isdir(marker) else marker
            if not is_locked(lock):
                self.abandon(jobid)
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
