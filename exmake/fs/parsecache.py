"""The parsed-YAML cache: a recipe's YAML tree, kept until its text changes.

Building the Python objects of a 1,000-job recipe costs PyYAML about 77 ms
here; unpickling the same tree costs 5 ms. The tree is a pure function of
the recipe's text, so it is stored under `<workdir>/.exmake/parsed/` with
the text's hash and used only when the hash matches; everything that
depends on the filesystem (inputs, job scripts) is checked afresh each time.

File `<sha256 of the recipe's absolute path>.pickle` (format 1):
    pickle of (FORMAT, sha256 of the recipe text, the YAML tree)
"""

import hashlib
import os
import pickle

from exmake.fs import atomic

FORMAT = 1


def _path(workdir, recipe_path):
    name = hashlib.sha256(os.path.abspath(recipe_path).encode()).hexdigest()[:32]
    return os.path.join(workdir, ".exmake", "parsed", f"{name}.pickle")


def load(workdir, recipe_path, text_digest):
    """The cached tree for this recipe text, or None."""
    try:
        with open(_path(workdir, recipe_path), "rb") as f:
            fmt, digest, tree = pickle.load(f)
    except Exception:  # noqa: BLE001 - missing, torn or foreign: parse the YAML instead
        return None
    return tree if fmt == FORMAT and digest == text_digest else None


def save(workdir, recipe_path, text_digest, tree):
    """Store the tree; only into an existing workdir, and never fatally."""
    if not os.path.isdir(os.path.join(workdir, ".exmake")):
        return
    path = _path(workdir, recipe_path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_bytes(path, pickle.dumps((FORMAT, text_digest, tree), protocol=pickle.HIGHEST_PROTOCOL),
                           fsync=False)
    except OSError:
        pass  # a cache: the next load parses the YAML again
