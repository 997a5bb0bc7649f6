"""Other workdirs (`reuse_from:`, --reuse-from): their finished jobs, read and never written.

Another workdir may belong to someone else, be read-only, be half-written by
a build running there now, or have been edited by hand. So:

- Its LMDB index is opened with `readonly=True, lock=False`: no lock file is
  made or written (a read-only directory, another user's files), and no
  reader slot is taken. Without the lock a reader may see a half-committed
  page while a build there writes; the index is only a pointer, never
  trusted: what it names is checked in full below. A workdir without an
  index (or with one that cannot be opened) is scanned: its job directories
  are the truth.
- A job found there is offered only when its directory is complete: a real
  directory `<name>-<N>` (not a symlink; jobs run in place, so one still
  running there has no post.json yet) holding a valid setup record (exmake.fs.records) of that very job id with
  the key asked for, and a SUCCESS post record, each of whose outputs is a
  path inside the job directory to a regular file whose content hashes as
  recorded (`digest`: the caller's hash cache). Anything else (a job
  directory being written, one whose post.json is missing or of another
  format, an output deleted or edited since) is not offered, and the job runs
  here instead. That the setup record's key really is the hash of its own
  step, inputs and deps is for the caller to check (exmake.rebuilder): keys
  are computed above this layer.

Nothing here writes anything, anywhere.
"""

import os

from exmake.fs import atomic
from exmake.fs.jobdir import JOBID_RE, listing
from exmake.fs.records import POST, SETUP, check_post, check_setup


class OtherWorkdir:
    """One workdir to reuse finished jobs from."""

    def __init__(self, path):
        self.path = path
        self._trace = None   # {key: jobid}, read once

    def trace(self):
        """{key: jobid} of its finished jobs: from its index, else by a scan."""
        if self._trace is None:
            self._trace = _read_index(self.path)
            if self._trace is None:
                self._trace = _scan(self.path)
        return self._trace

    def find(self, key, digest):
        """(jobid, path, setup, post) of a complete SUCCESS job there with `key`, or
        (None, why not) when the index names one that is not complete; None when
        it has no job with that key. `digest(path)`: a file's content hash."""
        jobid = self.trace().get(key)
        if jobid is None:
            return None
        problem = self.problem(jobid, key, digest)
        if problem:
            return None, problem
        path = os.path.join(self.path, jobid)
        return jobid, path, _setup(path), _post(path)

    def problem(self, jobid, key, digest):
        """Why job `jobid` there cannot be reused for `key`, or None."""
        match = JOBID_RE.match(jobid)
        path = os.path.join(self.path, jobid)
        if match is None or os.path.islink(path) or not os.path.isdir(path):
            return f"{path} is not a job directory"
        setup, post = _setup(path), _post(path)
        if setup is None or setup.get("jobid") != jobid or setup["name"] != match.group(1):
            return f"{path} has no valid setup record"
        if setup["key"] != key:
            return f"{path} has another key"
        if post is None or post["result"] != "SUCCESS":
            return f"{path} did not finish successfully"
        return outputs_problem(path, post["outputs"], digest)


def _setup(path):
    return check_setup(atomic.read_json(os.path.join(path, SETUP)))


def _post(path):
    return check_post(atomic.read_json(os.path.join(path, POST)))


def outputs_problem(path, outputs, digest):
    """Why the recorded outputs are not what the job directory holds, or None."""
    for name, recorded in outputs:
        norm = os.path.normpath(name)
        if os.path.isabs(norm) or norm == ".." or norm.startswith("../"):
            return f"{path}: output {name!r} is outside the job directory"
        full = os.path.join(path, norm)
        if not os.path.isfile(full):
            return f"{path}: output {name} is missing"
        try:
            found = digest(full)
        except OSError as exc:
            return f"{path}: output {name} cannot be read ({exc.strerror})"
        if found != recorded:
            return f"{path}: output {name} changed since it was recorded"
    return None


def _read_index(workdir):
    """{key: jobid} from the workdir's `trace` table, opened read-only without a
    lock; None when there is no index or it cannot be read."""
    lmdb_dir = os.path.join(workdir, ".exmake", "lmdb")
    if not os.path.exists(os.path.join(lmdb_dir, "data.mdb")):
        return None
    import lmdb
    try:
        env = lmdb.open(lmdb_dir, readonly=True, lock=False, max_dbs=8, subdir=True, create=False,
                        readahead=False)
    except lmdb.Error:
        return None
    try:
        with env.begin() as txn:
            handle = env.open_db(b"trace", txn=txn, create=False)
            return {k.decode(): v.decode() for k, v in txn.cursor(db=handle)}
    except (lmdb.Error, UnicodeDecodeError):
        return None
    finally:
        env.close()


def _scan(workdir):
    """{key: jobid} of every job directory with a SUCCESS post record (the newest wins)."""
    found = {}
    for entry in listing(workdir):
        match = JOBID_RE.match(entry)
        path = os.path.join(workdir, entry)
        if match is None or os.path.islink(path):
            continue
        setup, post = _setup(path), _post(path)
        if setup and post and post["result"] == "SUCCESS":
            found[setup["key"]] = entry
    return found
