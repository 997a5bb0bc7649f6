"""Remove what a build made visible: the published results and the -LATEST links.

The job directories stay, so the next build finds every job fresh and only
makes its links again: nothing runs. Only links to jobs of this recipe go
(two recipes may share a workdir and a results directory), and a results
directory left empty goes with them.

`--workdir --yes` deletes the whole workdir too: every job directory, the
index and the build log. The workdir is first renamed aside, then deleted,
so a kill halfway never leaves a half-deleted job directory that a later
build could take for a finished one. A workdir that holds the recipe
(`workdir: .`) is never deleted; use `exmake gc` there.
"""

import os
import shutil

from exmake.errors import ExmakeError, UsageError
from exmake.fs.jobdir import JOBID_RE, LATEST, listing
from exmake.fs.publish import links_into, unpublish
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
        _check_deletable(recipe)
    if os.path.isdir(ws.jobdirs.meta) and not ws.enter_alone():
        raise ExmakeError("a build is running on this workdir; clean when it has finished")
    try:
        results = [_remove_result(ws, link) for link in _results_of(ws)]
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


def _results_of(ws):
    """The result links into this recipe's jobs (a job directory gone, a name of this recipe's)."""
    recipe = ws.recipe
    if not os.path.isdir(recipe.results):
        return []
    return sorted(link for link, jobid in links_into(recipe.results, recipe.workdir) if _ours(ws, jobid))


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
    return setup is not None and setup.get("recipe") == ws.recipe.path


def _remove_result(ws, link):
    unpublish(ws.recipe.results, link)
    print(f"  removed {show_path(link)}")
    return link


def _remove_link(link):
    os.unlink(link)
    print(f"  removed {show_path(link)}")
    return link


def _check_deletable(recipe):
    """Refuse (exit 2, nothing done) a workdir that holds the recipe or is not exmake's."""
    if os.path.islink(recipe.workdir):
        raise UsageError(f"the workdir {recipe.workdir} is a symlink; clean --workdir will not follow it")
    workdir = os.path.realpath(recipe.workdir)
    root = os.path.realpath(recipe.root)
    if root == workdir or root.startswith(workdir + os.sep):
        raise UsageError(f"the workdir {recipe.workdir} holds the recipe; clean --workdir will not delete "
                         "it (exmake gc removes job directories that no longer matter)")
    if os.path.isdir(workdir) and not os.path.isdir(os.path.join(workdir, ".exmake")):
        raise UsageError(f"{recipe.workdir} has no .exmake/: it is not a workdir exmake made; not deleting it")


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
