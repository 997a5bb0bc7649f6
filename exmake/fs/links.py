"""The relative symlinks of a job's stable view (see exmake.view), made and re-aimed.

A job runs in `<workdir>/.exmake/building/<job>` and is renamed to
`<workdir>/<job>` when it ends, two levels up. A relative link made for
the place the job runs would point two levels too deep after the rename,
and one made for the final place would point nowhere while the job runs;
so `make` aims each link from where the job runs, and `settle` re-aims it
from the final place just before the rename. Relative, not absolute: a
project moved or copied whole (work directory included) keeps its links.
"""

import os

from exmake.fs import atomic


def make(directory, links):
    """Make `links` ({path inside `directory`: absolute target}) relative to `directory`."""
    for rel, target in sorted(links.items()):
        path = os.path.join(directory, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(os.path.relpath(target, os.path.dirname(path)), path)


def settle(directory, final, links):
    """Re-aim the links made in `directory` for the directory's new place `final`
    (call before renaming it there)."""
    for rel, target in sorted(links.items()):
        link_dir = os.path.dirname(os.path.join(final, rel))
        atomic.symlink(os.path.relpath(target, link_dir), os.path.join(directory, rel))
