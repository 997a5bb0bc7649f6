"""The chunk cache: per-chunk results of chunked job scripts, kept in the workdir.

Layout, under `<workdir>/.exmake/chunks/`:

    ab/ab12...ef      one entry per chunk key (the key's first two hex
                      digits name its directory)
    hints/<id>.json   the chunks of a job's chunked input at its last run
                      (see exmake.chunks: hints only save scanning time)
    .tmp-*            an entry or hints file being written

An entry (format 1) is one header line and a payload:

    EXMAKE-CHUNK 1 <key> <blake3 of the payload> <payload bytes>\\n<payload>

The payload is the chunk's result pickled by exmake.jobapi.stable_dumps.
Writes go to a temporary name in the same directory and are renamed into
place, so a reader never sees half an entry under its final name; and
every read checks the header (key, length, digest) before unpickling, so
even an entry a power cut left torn is a miss (and is removed), never a
wrong result. No fsync: the check on read is what makes a torn entry
harmless, and a job's results are fsynced by the job itself.

Why a pickle, and why loading it is safe: a chunk's result is whatever
`analysis_chunk` returns (a Counter, a dict of lists...), which JSON cannot
hold. Entries are loaded only inside the job-script process of a chunked
job, which runs the user's own code anyway and already unpickles its
dependencies' `result.pickle` from the same workdir; only files under this
directory are loaded, whose names are keys exmake computed, and only after
the header check. So loading an entry trusts exactly who could already
change `result.pickle` files there: the workdir's writers. Nothing else of
exmake unpickles them: `exmake gc`, `show`, `status` and the board read
only names, sizes and times here (and hints are JSON).

A key (see `chunk_key`) covers the job script's code identity, its options
and env, the content of every other input and dependency output, and the
chunk's content: editing the script, an option or anything else the job
reads never reuses a result; the same chunk in another job with the same
code and options does. When analysis_chunk takes `prepare_res`, the runner
folds the hash of what prepare returned into the base key too
(exmake.methodrun).

Size cap and LRU: a hit bumps the entry's mtime; `evict(cap)` removes the
least recently used entries until the entries take at most `cap` bytes.
Each chunked job evicts when it ends, and so does `exmake gc`. The cap is
EXMAKE_CHUNK_CACHE_MAX (a size, default 2G).
"""

import json
import os
import pickle
import re
import time

from exmake.fs.hashing import hash_bytes
from exmake.fs.jobdir import listing

FORMAT = 1
MAGIC = b"EXMAKE-CHUNK"
DEFAULT_CAP = "2G"
CAP_ENV = "EXMAKE_CHUNK_CACHE_MAX"
TMP_PREFIX = ".tmp-"
STALE_TMP_S = 3600       # a temporary file this old was left by a killed writer
HINTS_DIR = "hints"
MAX_HEADER_BYTES = 256
_CAP_RE = re.compile(r"^\s*([0-9]{1,15})\s*([KMGT]?)(?:i?B)?\s*$", re.IGNORECASE)
_CAP_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def cache_dir(meta):
    """The chunk cache of the workdir whose `.exmake` directory is `meta`."""
    return os.path.join(meta, "chunks")


def cap_bytes(environ=os.environ):
    """The cache's size cap in bytes, from EXMAKE_CHUNK_CACHE_MAX (`500M`,
    `2G`, `100K`, bytes, or 0: keep nothing); ValueError naming the variable."""
    value = environ.get(CAP_ENV) or DEFAULT_CAP
    match = _CAP_RE.match(value)
    if not match:
        raise ValueError(f"{CAP_ENV}={value}: not a size; write it like 2G, 500M or 0 (keep nothing)")
    return int(match.group(1)) * _CAP_UNITS[match.group(2).upper()]


def chunk_key(base, digest):
    """The key of one chunk: the job's chunk base key and the chunk's content digest."""
    return hash_bytes(f"{base}\0{digest}".encode())[3:]


def base_key(setup, chunked_input, scheme):
    """What, besides a chunk's own bytes, a chunk's result may depend on, from
    the job's setup record: code identity, options, env, every other input
    and every dependency's output (by content: a dependency that re-ran with
    the same output keeps the chunks)."""
    step = setup["step"]
    material = {"format": FORMAT, "scheme": scheme, "code": step.get("code"),
                "options": step.get("options"), "env": step.get("env"),
                "inputs": {k: v for k, v in setup["inputs"].items() if k != chunked_input},
                "deps": {k: v.get("outputs") for k, v in setup["deps"].items()}}
    return hash_bytes(json.dumps(material, sort_keys=True, separators=(",", ":")).encode())[3:]


class ChunkCache:
    def __init__(self, directory):
        self.directory = directory

    def path(self, key):
        return os.path.join(self.directory, key[:2], key)

    # -- entries ---------------------------------------------------------------

    def load(self, key):
        """(True, result) for a sound entry of `key` (its mtime bumped: LRU),
        else (False, None); a torn or foreign entry is removed."""
        path = self.path(key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False, None
        payload = _payload(data, key)
        if payload is None:
            _unlink(path)
            return False, None
        try:
            value = pickle.loads(payload)
        except Exception:  # a class moved or renamed since (a library upgraded): a miss, computed again
            _unlink(path)
            return False, None
        try:
            os.utime(path)
        except OSError:
            pass
        return True, value

    def store(self, key, payload):
        """Write the entry of `key` (payload: pickled bytes) under a temporary
        name, then rename it into place."""
        path = self.path(key)
        header = b"%s %d %s %s %d\n" % (MAGIC, FORMAT, key.encode(), hash_bytes(payload).encode(), len(payload))
        _write_replace(path, header + payload)

    # -- hints -----------------------------------------------------------------

    def hints_path(self, ident):
        return os.path.join(self.directory, HINTS_DIR, hash_bytes(ident.encode())[3:35] + ".json")

    def load_hints(self, ident, sizes_ident):
        """The hints stored for `ident` with the same chunking rules, or None."""
        try:
            with open(self.hints_path(ident), "rb") as f:
                record = json.load(f)
            if record.get("format") != FORMAT or record.get("rules") != sizes_ident:
                return None
            chunks = record["chunks"]
            if not isinstance(record["size"], int) or not all(
                    isinstance(c, list) and len(c) == 3 and isinstance(c[0], int) and isinstance(c[1], int)
                    and isinstance(c[2], str) and c[0] < c[1] for c in chunks):
                return None
            return {"size": record["size"], "chunks": chunks}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save_hints(self, ident, sizes_ident, size, chunks):
        record = {"format": FORMAT, "rules": sizes_ident, "size": size, "chunks": [c.as_list() for c in chunks]}
        _write_replace(self.hints_path(ident), json.dumps(record, separators=(",", ":")).encode())

    # -- size ------------------------------------------------------------------

    def entries(self):
        """[(mtime_ns, bytes, path), ...] of every entry, oldest first."""
        found = []
        for sub in listing(self.directory):
            top = os.path.join(self.directory, sub)
            if len(sub) != 2 or not os.path.isdir(top):
                continue
            for name in listing(top):
                if name.startswith(TMP_PREFIX):
                    continue
                try:
                    st = os.lstat(os.path.join(top, name))
                except OSError:
                    continue
                found.append((st.st_mtime_ns, st.st_size, os.path.join(top, name)))
        found.sort()
        return found

    def evict(self, cap, dry_run=False, all_tmp=False):
        """Remove the least recently used entries until the rest take at most
        `cap` bytes, and temporary files killed writers left (all of them with
        `all_tmp`, when no build can be writing). Returns (entries removed,
        bytes freed, entries kept, bytes kept)."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        removed = freed = 0
        for _, size, path in entries:
            if total <= cap:
                break
            if not dry_run:
                _unlink(path)
            total -= size
            removed, freed = removed + 1, freed + size
        if not dry_run:
            self._remove_tmp(all_tmp)
        return removed, freed, len(entries) - removed, total

    def _remove_tmp(self, all_tmp):
        now = time.time()
        for sub in listing(self.directory):
            top = os.path.join(self.directory, sub)
            for name in listing(top) if os.path.isdir(top) else ():
                if not name.startswith(TMP_PREFIX):
                    continue
                path = os.path.join(top, name)
                try:
                    if all_tmp or now - os.lstat(path).st_mtime > STALE_TMP_S:
                        os.unlink(path)
                except OSError:
                    pass


def _payload(data, key):
    """The payload of an entry's bytes if its header is sound and names `key`, else None."""
    newline = data.find(b"\n", 0, MAX_HEADER_BYTES)
    if newline < 0:
        return None
    fields = data[:newline].split(b" ")
    if len(fields) != 5 or fields[0] != MAGIC or fields[1] != b"%d" % FORMAT or fields[2] != key.encode():
        return None
    payload = data[newline + 1:]
    if not fields[4].isdigit() or int(fields[4]) != len(payload) or hash_bytes(payload).encode() != fields[3]:
        return None
    return payload


def _write_replace(path, data):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass
