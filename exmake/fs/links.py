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

import os

from exmake.fs import atomic


def make(directory, links):
    """Make `links` ({path inside `directory`: absolute target}) relative to `directory`."""
    for rel, target in sorted(links.items()):
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(_relative(target, os.path.dirname(path)), path)


def settle(directory, final, links):
    """Re-aim the links made in `directory` for the directory's new place `final`
    (call before renaming it there)."""
    final = os.path.realpath(final)  # the reservation: it exists
    for rel, target in sorted(links.items()):
        link_dir = os.path.dirname(os.path.join(final, rel))
        atomic.symlink(_relative(target, link_dir), os.path.join(directory, rel))


def _relative(target, link_dir):
    """`target` as a path relative to `link_dir`, both taken as real paths."""
    return os.path.relpath(os.path.realpath(target), os.path.realpath(link_dir))
