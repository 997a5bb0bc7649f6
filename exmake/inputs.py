"""Inputs: a recipe's paths, directories and globs turned into sorted file lists.

`expand_input` resolves one `inputs:` value relative to the recipe's
directory, or to `input_dir:` when the recipe has one (keys then record the
path relative to it, so moving the data changes no key: exmake.keys): a file, a directory (every file under it, sorted) or a glob
(expanded sorted). Symlinked subdirectories are followed (their files are
inputs like any other), each real directory once. The workdir and the
results directory are never inputs: a job reading `.` must not read its own
job directories. The stat signature of every directory whose listing
decided the result is taken *before* listing, so the no-op fast path
notices a file added or removed later.
"""

import glob
import os
import re
from dataclasses import dataclass, field

from exmake.fs.hashcache import signature

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
    root: str = None  # the directory `pattern` is relative to: the recipe's, or `input_dir:`


def stat_signature(path):
    """(dev, inode, size, mtime_ns): what changes when a file or a directory listing may have."""
    return signature(os.stat(path))


def expand_input(root, name, pattern, line, excluded=()):
    """The InputSpec for `pattern`; ValueError says what is wrong with it.
    `excluded`: real paths (os.path.realpath) of directories whose contents are never inputs."""
    pattern_norm = os.path.normpath(pattern)
    path = os.path.normpath(os.path.join(root, pattern))
    if GLOB_CHARS.search(pattern_norm):  # only the pattern: `[` in the project's path is no wildcard
        base = pattern_norm if os.path.isabs(pattern_norm) else os.path.join(glob.escape(root), pattern_norm)
        dirs = _listed_dirs(root, pattern_norm, excluded)  # before globbing: a file added later must show
        files = sorted(p for p in glob.glob(base, recursive=True)
                       if os.path.isfile(p) and not _inside_any(p, excluded))
        if not files:
            raise ValueError(f"the glob {pattern!r} matches no file")
        return InputSpec(name, pattern, "glob", path, files, line, dirs, root)
    if os.path.isdir(path):
        tree = list(_walk(path, excluded))
        dirs = [[d, stat_signature(d)] for d, _ in tree]
        files = sorted(os.path.join(d, f) for d, names in tree for f in names)
        return InputSpec(name, pattern, "dir", path, files, line, dirs, root)
    if os.path.isfile(path):
        return InputSpec(name, pattern, "file", path, [path], line, root=root)
    problem = "not a regular file" if os.path.exists(path) else "no such file or directory"
    raise ValueError(f"{pattern!r}: {problem} (looked for {path})")


def _walk(top, excluded):
    """(directory, [file names]) under `top`, sorted, following symlinked
    directories once each (a symlink loop ends), skipping `excluded`."""
    seen = set()
    todo = [top]
    while todo:
        directory = todo.pop()
        real = os.path.realpath(directory)
        if real in seen or _inside_any(real, excluded):
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        yield directory, [e.name for e in entries if e.is_file()]
        todo.extend(e.path for e in reversed(entries) if e.is_dir())


def _inside_any(path, excluded):
    real = os.path.realpath(path)
    return any(real == x or real.startswith(x + os.sep) for x in excluded)


def glob_base(root, pattern):
    """(the directory a glob starts listing at, whether it lists below it) for a
    pattern as the recipe wrote it (relative to `root`, or absolute). Only the
    pattern's own characters are wildcards, never the project path's."""
    pattern = os.path.normpath(pattern)
    parts = pattern.split(os.sep)
    magic = next(i for i, part in enumerate(parts) if GLOB_CHARS.search(part))
    prefix = os.path.join(root, os.sep.join(parts[:magic])) if parts[:magic] else root
    if os.path.isabs(pattern):
        prefix = os.sep.join(parts[:magic]) or os.sep
    return prefix, magic < len(parts) - 1 or "**" in pattern


def glob_matcher(root, pattern):
    """The pattern, made absolute with `root` escaped, for fnmatch on absolute paths."""
    pattern = os.path.normpath(pattern)
    return pattern if os.path.isabs(pattern) else os.path.join(glob.escape(root), pattern)


def _listed_dirs(root, pattern, excluded):
    """[path, signature] of every directory whose listing a glob reads."""
    prefix, deep = glob_base(root, pattern)
    if not os.path.isdir(prefix):
        return []
    dirs = [d for d, _ in _walk(prefix, excluded)] if deep else [prefix]
    return [[d, stat_signature(d)] for d in dirs]
