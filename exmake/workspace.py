"""A recipe with its workdir opened: the context every command works in.

Holds the recipe, the job directories, the LMDB store and the hash cache;
nothing is module-level. Read-only workspaces (dry runs, status, why, path)
create nothing on disk: without a store they see an empty index.
"""

import fcntl
import os

from exmake.errors import ExmakeError
from exmake.fs.hashcache import HashCache
from exmake.fs.jobdir import JOBID_RE, JobDirs
from exmake.fs.store import Store
from exmake.graph import check_acyclic
from exmake.recipe import load_recipe


class Workspace:
    def __init__(self, recipe, readonly):
        self.recipe = recipe
        self.readonly = readonly
        self.jobdirs = JobDirs(recipe.workdir, lambda: self.store)
        self._store = None
        self._store_opened = False
        self.hashcache = HashCache(lambda: self.store)
        self._build_lock_fd = None

    @classmethod
    def load(cls, recipe_path, readonly=False):
        recipe = load_recipe(recipe_path)
        check_acyclic(recipe)
        return cls(recipe, readonly)

    @property
    def store(self):
        """The LMDB store, opened on first use (so bad arguments create nothing)."""
        if not self._store_opened:
            self._store_opened = True
            self._store = self._open_store()
        return self._store

    def _open_store(self):
        path = os.path.join(self.jobdirs.meta, "lmdb")
        if self.readonly and not os.path.exists(os.path.join(path, "data.mdb")):
            return None
        try:
            store = Store(path, readonly=self.readonly)
        except OSError as exc:  # a read-only or full filesystem, a file in the way
            raise ExmakeError(f"cannot use the workdir {self.recipe.workdir}: {exc.strerror}") from None
        if store.created and not self.readonly:
            self.rebuild_index(store)
        return store

    def rebuild_index(self, store):
        """Refill the trace index from the job directories (they are the truth,
        once their outputs hash as recorded: a power cut may have caught a
        batch unflushed, see exmake.fs.durable), and set the job-number
        counters past every number a job directory or the build log (if it
        survived) has used."""
        from exmake.urd import Log, used_numbers
        rows, used = [], used_numbers(Log(store).raw())
        for jobid, setup, post in self.jobdirs.scan():
            key = setup.get("key")
            ok = post.get("result") == "SUCCESS"
            if key and (not ok or self.jobdirs.outputs_intact(jobid, post)):
                rows.append(("trace" if ok else "failed", key.encode(), jobid.encode()))
            name, number = JOBID_RE.match(jobid).groups()
            used[name] = max(used.get(name, 0), int(number))
        store.put_many(rows)
        store.raise_counters(used)
        return len(rows)

    def lookup(self, table, key):
        if self.store is None:
            return None
        value = self.store.get(table, key.encode())
        return value.decode() if value else None

    def enter_build(self):
        """Join the builds on this workdir; the first one alone cleans up after killed builds.

        Every build holds a shared flock on `.exmake/build.lock`. Cleaning needs
        it exclusively, so it never removes a directory a live build is making.
        """
        try:
            os.makedirs(self.jobdirs.meta, exist_ok=True)
            fd = os.open(os.path.join(self.jobdirs.meta, "build.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ExmakeError(f"cannot use the workdir {self.recipe.workdir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.jobdirs.clean_stale()
        except BlockingIOError:
            pass
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._build_lock_fd = fd

    def enter_alone(self):
        """Take the workdir for ourselves (gc): False if a build is running on it."""
        os.makedirs(self.jobdirs.meta, exist_ok=True)
        fd = os.open(os.path.join(self.jobdirs.meta, "build.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._build_lock_fd = fd
        return True

    def close(self):
        self.hashcache.flush()
        if self._build_lock_fd is not None:
            os.close(self._build_lock_fd)
            self._build_lock_fd = None
        if self._store is not None:
            self._store.close()
            self._store = None
