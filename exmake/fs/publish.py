"""Results: atomic relative symlinks from the results directory into job directories.

`results/<dest>` -> `../work/<jobid>/<src>` (relative, so moving the project
keeps them working). A link that already points where it should is left
alone, so a no-op build writes nothing. A destination whose real directory
is outside the results directory (a symlink planted there) is refused.
"""

import os

from exmake.errors import ExmakeError
from exmake.fs import atomic


def publish(results_dir, job_path, mapping):
    """Link each `dest: src` of `mapping`; returns every [link, target] it stands for."""
    links = []
    for dest, src in sorted(mapping.items()):
        source = os.path.join(job_path, src)
        if not os.path.lexists(source):
            raise ExmakeError(f"cannot publish {dest}: {source} does not exist")
        link = os.path.join(results_dir, dest)
        parent = os.path.dirname(link)
        if os.path.lexists(results_dir):
            # Checked before making directories: a symlink planted in results/
            # must not get even an empty directory made through it.
            existing = parent
            while not os.path.lexists(existing):
                existing = os.path.dirname(existing)
            if not _inside(existing, results_dir):
                raise ExmakeError(f"cannot publish {dest}: {existing} leads outside {results_dir}")
        os.makedirs(parent, exist_ok=True)
        if not _inside(parent, results_dir):
            raise ExmakeError(f"cannot publish {dest}: {parent} leads outside {results_dir}")
        target = os.path.relpath(source, os.path.realpath(parent))
        links.append([link, target])
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        if os.path.lexists(link) and not os.path.islink(link):
            raise ExmakeError(f"cannot publish {dest}: {link} exists and is not a symlink; "
                              "exmake will not overwrite it")
        atomic.symlink(target, link)
    return links


def _inside(path, top):
    real, real_top = os.path.realpath(path), os.path.realpath(top)
    return real == real_top or real.startswith(real_top + os.sep)
