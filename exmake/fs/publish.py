"""Results: atomic relative symlinks from the results directory into job directories.

`results/<dest>` -> `../work/<jobid>/<src>` (relative, so moving the project
keeps them working). A link that already points where it should is left
alone, so a no-op build writes nothing. A destination whose real directory
is outside the results directory (a symlink planted there) is refused.
"""

import os

from exmake.errors import ExmakeError
from exmake.fs import atomic


def target_problem(results_dir, dest):
    """Why `results_dir/dest` cannot be published to, or None. Asked by the
    build for every target before any job runs, and again by `publish`."""
    link = os.path.join(results_dir, dest)
    if not os.path.lexists(results_dir):
        return None
    # A symlink planted in results/ must not get even an empty directory
    # made through it, so this is checked before making directories.
    existing = os.path.dirname(link)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not _inside(existing, results_dir):
        return f"{existing} leads outside {results_dir}"
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a directory"
    if os.path.lexists(link) and not os.path.islink(link):
        return f"{link} exists and is not a symlink; exmake will not overwrite it"
    return None


def publish(results_dir, job_path, mapping):
    """Link each `dest: src` of `mapping`; returns every [link, target] it stands for."""
    links = []
    for dest, src in sorted(mapping.items()):
        source = os.path.join(job_path, src)
        if not os.path.lexists(source):
            raise ExmakeError(f"cannot publish {dest}: {source} does not exist")
        link = os.path.join(results_dir, dest)
        parent = os.path.dirname(link)
        problem = target_problem(results_dir, dest)
        if problem:
            raise ExmakeError(f"cannot publish {dest}: {problem}")
        os.makedirs(parent, exist_ok=True)
        if not _inside(parent, results_dir):
            raise ExmakeError(f"cannot publish {dest}: {parent} leads outside {results_dir}")
        target = os.path.relpath(source, os.path.realpath(parent))
        links.append([link, target])
        if os.path.islink(link) and os.readlink(link) == target:
            continue
        atomic.symlink(target, link)
    return links


def _inside(path, top):
    real, real_top = os.path.realpath(path), os.path.realpath(top)
    return real == real_top or real.startswith(real_top + os.sep)


def links_into(results_dir, workdir):
    """[(link, job id)] of every result symlink that points into a job directory of
    `workdir` (the first path component under it), whether the workdir is named
    as the link names it or through the symlinks on its way."""
    tops = {os.path.abspath(workdir), os.path.realpath(workdir)}
    found = []
    for dirpath, dirnames, filenames in os.walk(results_dir):
        for entry in dirnames + filenames:
            link = os.path.join(dirpath, entry)
            if not os.path.islink(link):
                continue
            for target in (os.path.normpath(os.path.join(dirpath, os.readlink(link))), os.path.realpath(link)):
                top = next((t for t in tops if _inside(target, t) and target != t), None)
                if top:
                    found.append((link, os.path.relpath(target, top).split(os.sep)[0]))
                    break
    return found


def unpublish(results_dir, link):
    """Remove a result link, and the directories in results/ it leaves empty."""
    atomic.unlink_quietly(link)
    directory = os.path.dirname(link)
    while _inside(directory, results_dir) and directory != results_dir.rstrip(os.sep):
        try:
            os.rmdir(directory)
        except OSError:
            break
        directory = os.path.dirname(directory)
