"""The workdir's LMDB environment (`<workdir>/.exmake/lmdb`).

Databases, all keys and values bytes:
- `meta`:   b"schema" -> ascii schema version (SCHEMA_VERSION); checked on open.
            b"next:<name>" -> ascii next job number N for `<name>-<N>`.
- `trace`:  job key (hex) -> job id (`count-3`) of a SUCCESS job directory.
- `failed`: job key (hex) -> job id of the latest FAILURE for that key.
- `hashes`: absolute path -> HashCache record (see exmake.fs.hashcache).
- `stamps`: build-stamp id -> JSON (see exmake.fs.stamp): the no-op fast path.
- `urd`:    the build log (see exmake.urd).

The job directories are the truth; `trace` and `failed` can be rebuilt by
scanning them, and `hashes` and `stamps` are caches. LMDB is opened in the
parent process only and never used across fork().
"""

import hashlib
import os

import lmdb

from exmake.errors import ExmakeError

SCHEMA_VERSION = b"1"
DB_NAMES = (b"meta", b"trace", b"failed", b"hashes", b"stamps", b"urd")
INITIAL_MAP_BYTES = 64 << 20   # grows by doubling when full
MAX_MAP_BYTES = 1 << 40
MAX_KEY_BYTES = 511            # LMDB's compiled-in limit (Environment.max_key_size())


def _fit(key):
    """`key` as LMDB can hold it: one longer than MAX_KEY_BYTES (an input's
    deep absolute path in `hashes`) is stored under its digest. The prefix
    starts with NUL, which no key exmake writes does."""
    if len(key) <= MAX_KEY_BYTES:
        return key
    return b"\0sha256:" + hashlib.sha256(key).hexdigest().encode()


class StoreCorrupt(ExmakeError):
    """The LMDB files cannot be opened; the message says how to recover."""


class Store:
    """One open LMDB environment with exmake's named databases."""

    def __init__(self, path, readonly=False):
        self.path = path
        self.readonly = readonly
        self.created = not os.path.exists(os.path.join(path, "data.mdb"))
        if not readonly:
            os.makedirs(path, exist_ok=True)
        try:
            self.env = lmdb.open(path, max_dbs=len(DB_NAMES), map_size=INITIAL_MAP_BYTES,
                                 readonly=readonly, readahead=False, subdir=True, create=not readonly)
            self._check_size()  # before any page beyond the meta pages is read
            self.dbs = {name.decode(): self._open_db(name) for name in DB_NAMES}
        except lmdb.Error as exc:
            raise StoreCorrupt(
                f"{path}: the index cannot be opened ({exc}).\n"
                f"Recover with: mv {path} {path}.broken   "
                "(exmake rebuilds the index from the job directories on the next build)") from None
        self._check_schema()

    def _check_size(self):
        """A data file shorter than its own meta page says it is would be mapped
        as is, and reading past its end kills the process with SIGBUS."""
        if self.created:
            return
        used = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        size = os.path.getsize(os.path.join(self.path, "data.mdb"))
        if size < used:
            raise StoreCorrupt(
                f"{self.path}: data.mdb is truncated ({size} bytes, the index says {used}).\n"
                f"Recover with: mv {self.path} {self.path}.broken   "
                "(exmake rebuilds the index from the job directories on the next build)")

    def _open_db(self, name):
        if self.readonly:
            # A read-only environment cannot create databases; a missing one is empty.
            try:
                return self.env.open_db(name, create=False)
            except lmdb.NotFoundError:
                return None
        return self.env.open_db(name)

    def _check_schema(self):
        found = self.get("meta", b"schema")
        if found is None and not self.readonly:
            self.put_many([("meta", b"schema", SCHEMA_VERSION)])
        elif found not in (None, SCHEMA_VERSION):
            raise StoreCorrupt(f"{self.path}: index schema {found.decode()!r}, this exmake reads "
                               f"{SCHEMA_VERSION.decode()!r}; move the directory aside to rebuild it")

    def _retrying(self, operation):
        """Run `operation()`, growing the map when full and adopting another
        process's larger map when it grew it (MapResizedError)."""
        while True:
            try:
                return operation()
            except lmdb.MapFullError:
                self._grow()
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)  # 0: take the size the other process set
            except lmdb.Error as exc:  # a full or failing disk
                raise ExmakeError(f"{self.path}: the index could not be read or written: {exc}") from None

    def get(self, db, key):
        return self._retrying(lambda: self._get(db, key))

    def _get(self, db, key):
        handle = self.dbs[db]
        if handle is None:
            return None
        with self.env.begin(db=handle) as txn:
            return txn.get(_fit(key))

    def get_many(self, db, keys):
        """{key: value} for the keys present, in one read transaction."""
        return self._retrying(lambda: self._get_many(db, keys))

    def _get_many(self, db, keys):
        handle = self.dbs[db]
        if handle is None:
            return {}
        with self.env.begin(db=handle) as txn:
            return {k: v for k in keys if (v := txn.get(_fit(k))) is not None}

    def items(self, db, prefix=b""):
        return self._retrying(lambda: self._items(db, prefix))

    def _items(self, db, prefix):
        handle = self.dbs[db]
        if handle is None:
            return []
        with self.env.begin(db=handle) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return []
            result = []
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                result.append((key, value))
            return result

    def put_many(self, rows):
        """Write (db, key, value) rows in one transaction; value None deletes."""
        if not rows or self.readonly:
            return
        self._retrying(lambda: self._put_many(rows))

    def _put_many(self, rows, used=None):
        with self.env.begin(write=True) as txn:
            for db, key, value in rows:
                if value is None:
                    txn.delete(_fit(key), db=self.dbs[db])
                else:
                    txn.put(_fit(key), value, db=self.dbs[db])
            if used:
                self._raise(txn, used)

    def counters(self):
        """{name: next N} of every `next:<name>` counter, in one read transaction."""
        return {key[5:].decode(): int(value) for key, value in self.items("meta", b"next:")
                if value.isdigit()}

    def commit(self, rows, used):
        """Write (db, key, value) rows and raise the counters past `used`
        ({name: highest N handed out}), in one transaction: a batch of
        finished jobs and the numbers they took become known together."""
        if (rows or used) and not self.readonly:
            self._retrying(lambda: self._put_many(rows, used))

    def raise_counters(self, used):
        """Make each `next:<name>` pass the highest N that `used` ({name: N})
        says was handed out (by a job directory or the build log), in one
        transaction. A rebuilt or recovered index must never hand out a
        number again: `:LIST/ENTRY:NAME` would find another job under it."""
        self.commit([], used)

    def _raise(self, txn, used):
        meta = self.dbs["meta"]
        for name, highest in used.items():
            key = _fit(f"next:{name}".encode())
            stored = txn.get(key, db=meta)
            if not (stored and stored.isdigit() and int(stored) > highest):
                txn.put(key, str(highest + 1).encode(), db=meta)

    def write_with(self, function, db):
        """Run `function(env, db handle)` (which opens its own write transaction),
        growing the map and retrying as needed."""
        if self.readonly:
            raise ExmakeError(f"{self.path}: opened read-only")
        return self._retrying(lambda: function(self.env, self.dbs[db]))

    def _grow(self):
        size = self.env.info()["map_size"] * 2
        if size > MAX_MAP_BYTES:
            raise ExmakeError(f"{self.path}: the index would grow past {MAX_MAP_BYTES >> 30} GiB")
        self.env.set_mapsize(size)

    def close(self):
        self.env.close()
