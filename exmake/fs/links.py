"""The relative symlinks of a job's stable view (see exmake.view): made, and checked.

A job runs in place, in `<workdir>/<job>` (exmake.fs.jobdir), so each link
is made once, relative to where it stays. Relative, not absolute: a project
moved or copied whole (work directory included) keeps its links. Both ends
are real paths: the kernel follows `..` from where a link really is, so
with the workdir a symlink (work -> /scratch/me/work, common on a cluster)
a link worked out from the path as written would point nowhere. When the
job ends, `check` says whether it removed or replaced one: its view is
part of what it records as read.
"""

import functools
import os



def make(directory, links):
    """Make `links` ({path inside `directory`: absolute target}) relative to
    `directory`; returns {path: the text of its link}, for `check`."""
    # The job's directory was just made by exmake: only its parent (the workdir) may be a link.
    real = os.path.join(real_target(os.path.dirname(directory)), os.path.basename(directory))
    made, texts = set(), {}
    for rel, target in sorted(links.items()):
        path = os.path.join(directory, rel)
        parent = os.path.dirname(rel)
        if parent not in made:  # deps/ or inputs/ (or inputs/x/ of a glob): once each
            os.makedirs(os.path.dirname(path), exist_ok=True)
            made.add(parent)
        texts[rel] = _relative(target, os.path.join(real, parent))
        os.symlink(texts[rel], path)
    return texts


def check(directory, texts):
    """None if every link `make` made is still there as made, else what changed."""
    for rel, text in sorted(texts.items()):
        try:
            if os.readlink(os.path.join(directory, rel)) != text:
                return f"{rel} was replaced"
        except OSError as exc:
            return f"{rel}: {exc.strerror}"
    return None


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
