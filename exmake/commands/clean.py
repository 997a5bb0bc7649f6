"""Remove what a build made visible: the published results and the -LATEST links.

The job directories stay, so the next build finds every job fresh and only
makes its links again: nothing runs. Only links to jobs of this recipe go
(two recipes may share a workdir and a results directory), and a results
directory left empty goes with them.

`--workdir --yes` deletes the whole workdir too: every job directory, the
index and the build log. The workdir is first renamed aside, then deleted,
so a kill halfway never leaves a half-deleted job directory that a later
build could take for a finished one. Only a workdir that holds nothing
but exmake's own entries (job directories, -LATEST links, .exmake/,
.batch/, .tmp-* leftovers) and only jobs of this recipe is deleted: one that holds the
recipe (`workdir: .`), a user's files (`workdir: ../mydata`), another
project (`workdir: ../B`) or another recipe's jobs (two recipes sharing a
workdir) is refused with exit 2, naming what is in the way; `exmake gc`
removes job directories that no longer matter.
"""

import os
import re
import shutil

from exmake.errors import ExmakeError, UsageError
from exmake.fs.jobdir import JOB_NAME_PATTERN, JOBID_RE, LATEST, listing
from exmake.ledger import Ledger
from exmake.report import show_path

TRASH_MARK = ".exmake-deleting-"   # `.<workdir name>.exmake-deleting-<pid>`, beside the workdir


def add_arguments(parser):
    parser.add_argument("--workdir", action="store_true",
                        help="also delete the workdir: every job directory, the index and the build log")
    parser.add_argument("--yes", action="store_true", help="confirm --workdir (nothing is asked)")


def main(args):
    if args.workdir and not args.yes:
        raise UsageError("clean --workdir deletes every job directory and the build log: "
                         "add --yes to confirm")
    from exmake.workspace import Workspace
    ws = Workspace.load(args.file, readonly=True)
    recipe = ws.recipe
    if args.workdir:
        _check_deletable(ws)
    if os.path.isdir(ws.jobdirs.meta) and not ws.enter_alone():
        raise ExmakeError("a build is running on this workdir; clean when it has finished")
    try:
        results = [_removed(link) for link, _ in sorted(Ledger(ws).prune(every=True))]
        latest = [] if args.workdir else [_remove_link(link) for link in _latest_links(ws)]
        _rmdir_quietly(recipe.results)  # only if the links were all it held
        deleted = _delete_workdir(recipe.workdir) if args.workdir else False
    finally:
        ws.close()
    summary = f"exmake clean: {_count(results, 'result')}, {_count(latest, '-LATEST link')} removed"
    if args.workdir:
        summary += f"; deleted {show_path(recipe.workdir)}" if deleted else f"; no workdir {show_path(recipe.workdir)}"
    else:
        summary += "; job directories kept (the next build re-links them without running)"
    print(summary)
    return 0


def _latest_links(ws):
    workdir = ws.recipe.workdir
    suffix = f"-{LATEST}"
    links = (os.path.join(workdir, e) for e in listing(workdir) if e.endswith(suffix))
    return [link for link in links if os.path.islink(link) and _ours(ws, os.readlink(link))]


def _ours(ws, jobid):
    """Whether `jobid` is a job directory this recipe made (or one of its names, if gone)."""
    match = JOBID_RE.match(jobid)
    if not match:
        return False
    if not os.path.lexists(ws.jobdirs.path(jobid)):
        return match.group(1) in ws.recipe.jobs
    setup = ws.jobdirs.read_setup(jobid)
    return setup is not None and _same_recipe(setup, ws.recipe)


def _same_recipe(setup, recipe):
    """Whether a setup record is of `recipe`, by real path (a build through a
    symlinked path records the real one; the recipe may be named by the link)."""
    made_by = setup.get("recipe")
    return isinstance(made_by, str) and os.path.realpath(made_by) == os.path.realpath(recipe.path)


def _removed(link):
    print(f"  removed {show_path(link)}")
    return link


def _remove_link(link):
    os.unlink(link)
    print(f"  removed {show_path(link)}")
    return link


OWN_DIRS = (".exmake", ".batch")   # the index and locks; a cluster build's scripts (exmake.cluster)
_LATEST_RE = re.compile(rf"^{JOB_NAME_PATTERN}-{LATEST}$")


def _check_deletable(ws):
    """Refuse (exit 2, nothing done) a workdir that holds the recipe, anything
    exmake did not make, or jobs of another recipe."""
    recipe = ws.recipe
    if os.path.islink(recipe.workdir):
        raise UsageError(f"the workdir {recipe.workdir} is a symlink; clean --workdir will not follow it")
    workdir = os.path.realpath(recipe.workdir)
    root = os.path.realpath(recipe.root)
    if root == workdir or root.startswith(workdir + os.sep):
        raise UsageError(f"the workdir {recipe.workdir} holds the recipe; clean --workdir will not delete "
                         "it (exmake gc removes job directories that no longer matter)")
    if not os.path.isdir(workdir):
        return
    if not os.path.isdir(os.path.join(workdir, ".exmake")):
        raise UsageError(f"{recipe.workdir} has no .exmake/: it is not a workdir exmake made; not deleting it")
    foreign, others = [], set()
    for entry in listing(workdir):
        path = os.path.join(workdir, entry)
        if entry in OWN_DIRS and os.path.isdir(path) and not os.path.islink(path):
            continue
        if entry.startswith(".tmp-") or (_LATEST_RE.match(entry) and os.path.islink(path)):
            continue
        if ws.jobdirs.is_job_directory(entry):
            setup = ws.jobdirs.read_setup(entry)
            if not _same_recipe(setup, recipe):
                others.add(str(setup.get("recipe")))
            continue
        if JOBID_RE.match(entry) and os.path.isdir(path) and not os.path.islink(path) \
                and os.path.lexists(ws.jobdirs.marker(entry)) and not os.path.exists(os.path.join(path, "setup.json")):
            continue  # reserved by a killed build, before its setup record
        foreign.append(entry)
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise UsageError(f"{recipe.workdir} holds what exmake did not make ({shown}); "
                         "clean --workdir will not delete it")
    if others:
        raise UsageError(f"{recipe.workdir} also holds jobs of another recipe ({', '.join(sorted(others))}); "
                         "clean --workdir would break it: not deleting it (exmake gc removes job directories "
                         "that no longer matter)")


def _delete_workdir(workdir):
    """Rename the workdir aside (atomic), then delete it; also what a killed
    clean left aside. False if there was no workdir."""
    parent, name = os.path.split(os.path.abspath(workdir))
    present = os.path.isdir(workdir)
    if present:
        aside = os.path.join(parent, f".{name}{TRASH_MARK}{os.getpid()}")
        os.rename(workdir, aside)
        shutil.rmtree(aside)
    for entry in listing(parent):  # left by a clean killed while deleting
        if entry.startswith(f".{name}{TRASH_MARK}"):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    return present


def _rmdir_quietly(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


def _count(items, noun):
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"
