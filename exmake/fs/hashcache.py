"""File content hashes, cached on their stat signature.

A record in the `hashes` database maps an absolute path to
`dev ino size mtime_ns ctime_ns hashed_at_ns digest` (ASCII, space
separated). A cached digest is used only when the file's (dev, inode, size,
mtime_ns, ctime_ns) are unchanged *and* the mtime was older than
RACY_WINDOW_NS when it was hashed. The ctime is there because a same-size
rewrite in place can restore the mtime (`rsync --inplace -t`, `cp -p` onto
an existing file) but not the ctime, which only the kernel sets; git's
index keeps it for the same reason. (Left open: a rewrite that restores the
mtime within the same ctime tick as the hash was taken.)
The second condition guards the "racy" case: a file written twice within one
timestamp tick keeps its mtime, so a hash taken between the two writes would
otherwise be trusted forever (git's racy-clean problem). Coarse filesystems
(FAT: 2 s) set the window.
"""

import os
import re
import time

from exmake.fs.hashing import hash_file

RACY_WINDOW_NS = 2_000_000_000
DIGEST_RE = re.compile(r"^b3:[0-9a-f]{64}$")


def signature(st):
    """The parts of a stat result that change when a file's content may have:
    (dev, inode, size, mtime_ns, ctime_ns)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def signature_of(path):
    """The stat signature of `path` as a list (as JSON keeps it), or None if it
    cannot be stat'ed (absent)."""
    try:
        return list(signature(os.stat(path)))
    except OSError:
        return None


class HashCache:
    """Digests of files, read from and written back to a Store (or none)."""

    def __init__(self, get_store=lambda: None):
        self.get_store = get_store  # opened lazily by the owner
        self.memo = {}       # path -> digest, for this process
        self.signatures = {} # path -> stat signature seen when its digest was taken
        self.pending = []    # rows not yet written to the store

    def digest(self, path):
        """The content digest of `path`; raises OSError if it cannot be read."""
        found = self.memo.get(path)
        if found is not None:
            return found
        st = os.stat(path)
        sig = signature(st)
        store = self.get_store()
        record = store.get("hashes", path.encode()) if store else None
        digest = _trusted(record, sig)
        if digest is None:
            hashed_at = time.time_ns()
            digest = hash_file(path, st.st_size)
            row = " ".join(map(str, (*sig, hashed_at, digest))).encode()
            self.pending.append(("hashes", path.encode(), row))
        self.memo[path] = digest
        self.signatures[path] = sig
        return digest

    def flush(self):
        """Write new records; a lost flush only costs a rehash later."""
        store = self.get_store() if self.pending else None
        if store:
            store.put_many(self.pending)
        self.pending = []


def _trusted(record, sig):
    if record is None:
        return None
    parts = record.decode("ascii", "replace").split(" ")
    if len(parts) != 7 or not DIGEST_RE.match(parts[6]):
        return None  # torn, foreign, or the older record without a ctime: hash again
    try:
        cached = tuple(int(p) for p in parts[:5])
        hashed_at = int(parts[5])
    except ValueError:
        return None
    if cached != sig or hashed_at - sig[3] < RACY_WINDOW_NS:
        return None
    return parts[6]
