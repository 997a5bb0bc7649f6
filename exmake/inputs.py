"""Inputs: a recipe's paths, directories and globs turned into sorted file lists.

`expand_input` resolves one `inputs:` value relative to the recipe's
directory: a file, a directory (every file under it, sorted) or a glob
(expanded sorted). It also records the stat signature of every directory
whose listing decided the result, taken *before* listing, so the no-op fast
path notices a file added or removed later.
"""

import glob
import os
import re
from dataclasses import dataclass, field

GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass
class InputSpec:
    """One named input: what the recipe wrote and the files it stands for."""

    name: str
    pattern: str     # as written, relative to the recipe directory
    kind: str        # "file", "dir" or "glob"
    path: str        # absolute path (the directory for "dir", the pattern for "glob")
    files: list      # absolute paths of every file, sorted
    line: int
    dirs: list = field(default_factory=list)  # [path, stat signature] of each directory listed


def stat_signature(path):
    """(dev, inode, size, mtime_ns): what changes when a file or a directory listing may have."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def expand_input(root, name, pattern, line):
    """The InputSpec for `pattern`; ValueError says what is wrong with it."""
    path = os.path.normpath(os.path.join(root, pattern))
    if GLOB_CHARS.search(path):  # normalised: `*/..` has no wildcard left
        dirs = _listed_dirs(path)  # before globbing: a file added later must show
        files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise ValueError(f"the glob {pattern!r} matches no file")
        return InputSpec(name, pattern, "glob", path, files, line, dirs)
    if os.path.isdir(path):
        dirs = [[d, stat_signature(d)] for d in _walk_dirs(path)]
        return InputSpec(name, pattern, "dir", path, sorted(_walk_files(path)), line, dirs)
    if os.path.isfile(path):
        return InputSpec(name, pattern, "file", path, [path], line)
    problem = "not a regular file" if os.path.exists(path) else "no such file or directory"
    raise ValueError(f"{pattern!r}: {problem} (looked for {path})")


def _walk_dirs(top):
    for dirpath, dirnames, _ in os.walk(top):
        dirnames.sort()
        yield dirpath


def _listed_dirs(pattern):
    """[path, signature] of every directory whose listing a glob reads."""
    parts = pattern.split(os.sep)
    magic = next(i for i, part in enumerate(parts) if GLOB_CHARS.search(part))
    prefix = os.sep.join(parts[:magic]) or os.sep
    if not os.path.isdir(prefix):
        return []
    dirs = [prefix] if magic == len(parts) - 1 else list(_walk_dirs(prefix))
    return [[d, stat_signature(d)] for d in dirs]


def _walk_files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in filenames:
            yield os.path.join(dirpath, name)
