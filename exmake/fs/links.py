"""The relative symlinks of a job's stable view (see exmake.view), made and re-aimed.

A job runs in `<workdir>/.exmake/building/<job>` and is renamed to
`<workdir>/<job>` when it ends, two levels up. A relative link made for
the place the job runs would point two levels too deep after the rename,
and one made for the final place would point nowhere while the job runs;
so `make` aims each link from where the job runs, and `settle` re-aims it
from the final place just before the rename. Relative, not absolute: a
project moved or copied whole (work directory included) keeps its links.
Both ends are real paths: the kernel follows `..` from where a link really
is, so with the workdir a symlink (work -> /scratch/me/work, common on a
cluster) a link worked out from the path as written would point nowhere.
"""

import functools
import os

from exmake.fs import atomic


def make(directory, links):
    """Make `links` ({path inside `directory`: absolute target}) relative to `directory`."""
    real = os.path.realpath(directory)
    made = set()
    for rel, target in sorted(links.items()):
        path = os.path.join(directory, rel)
        parent = os.path.dirname(rel)
        if parent not in made:  # deps/ or inputs/ (or inputs/x/ of a glob): once each
            os.makedirs(os.path.dirname(path), exist_ok=True)
            made.add(parent)
        os.symlink(_relative(target, os.path.join(real, parent)), path)


def settle(directory, final, links):
    """Re-aim the links made in `directory` for the directory's new place `final`
    (call before renaming it there)."""
    final = os.path.realpath(final)  # the reservation: it exists
    for rel, target in sorted(links.items()):
        link_dir = os.path.dirname(os.path.join(final, rel))
        atomic.symlink(_relative(target, link_dir), os.path.join(directory, rel))


def _relative(target, real_link_dir):
    """`target` as a path relative to `real_link_dir` (a real path: the job's own
    directories, which exmake made), with `target` taken as a real path."""
    return os.path.relpath(real_target(target), real_link_dir)


@functools.lru_cache(maxsize=65536)
def real_target(target):
    """os.path.realpath of a link target: the directories of inputs and of the
    jobs a build read, the same for many jobs. Cleared at each build's start
    (`real_target.cache_clear()`: a watch session's next build may see a
    symlink changed)."""
    return os.path.realpath(target)
