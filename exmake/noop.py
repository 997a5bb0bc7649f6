"""The whole-build fast path: answer "nothing to do" from stat calls alone.

Imports only the standard library, lmdb and exmake.fs; no YAML, no keys.
The workdir is found by a plain text match of a top-level `workdir:` line;
if that guess is wrong, no stamp is found there and the normal build runs,
so a wrong guess costs time, never correctness (the stamp itself checks the
recipe's signature).
"""

import os
import re

from exmake.defaults import key_context
from exmake.fs import stamp
from exmake.fs.store import Store

WORKDIR_SCAN_BYTES = 1 << 20  # a top-level `workdir:` sits near the top of any real recipe
WORKDIR_RE = re.compile(r"""^workdir:[ \t]*(["']?)([^"'#\n]+?)\1[ \t]*(?:#.*)?$""", re.M)


def guess_workdir(recipe_path, text=None):
    """Where the recipe's workdir most likely is; `text`: the recipe, if already read."""
    if text is None:
        if not os.path.isfile(recipe_path):  # a FIFO would block the open; load_recipe says why
            return None
        try:
            with open(recipe_path, "rb") as f:
                text = f.read(WORKDIR_SCAN_BYTES).decode("utf-8", "replace")
        except OSError:
            return None
    match = WORKDIR_RE.search(text)
    return os.path.join(os.path.dirname(os.path.abspath(recipe_path)), match.group(2) if match else "work")


def unchanged_build(recipe_path, targets):
    """(stamp record, LMDB directory) of the last build of these targets if nothing
    it depended on has changed since, else None. See exmake.fs.stamp."""
    workdir = guess_workdir(recipe_path)
    if workdir is None:
        return None
    lmdb_dir = os.path.join(workdir, ".exmake", "lmdb")
    if not os.path.exists(os.path.join(lmdb_dir, "data.mdb")):
        return None
    store = Store(lmdb_dir, readonly=True)
    try:
        raw = store.get("stamps", stamp.stamp_id(recipe_path, targets))
    finally:
        store.close()
    record = stamp.still_valid(raw, key_context()) if raw else None
    return (record, lmdb_dir) if record else None
