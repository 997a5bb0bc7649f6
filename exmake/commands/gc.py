"""Delete job directories that no longer matter, and say how much space that frees.

Kept: each recipe job's current fresh job, every job a result or -LATEST
link points into, every job of the newest --keep entries of each build-log
list, failed or unfinished jobs made since the newest build, and every job
a kept job depends on (its setup.json `deps`, transitively). Also removed:
`exmake verify`'s scratch directories in <workdir>/.exmake/verify/, those
kept on purpose after a job differed or failed included, except one a
running verify holds. The chunk cache (<workdir>/.exmake/chunks/) is cut
to its cap, EXMAKE_CHUNK_CACHE_MAX (default 2G), least recently used
entries first. Use --dry-run to see the list first. Never touches
anything outside the workdir.
"""

import os

from exmake import chunkcache, retention
from exmake.commands import open_workspace
from exmake.commands.status import survey
from exmake.errors import ExmakeError, UsageError
from exmake.report import show_path


def add_arguments(parser):
    parser.add_argument("--keep", type=int, default=5, metavar="N",
                        help="keep the jobs of the newest N entries of each build-log list (default: 5)")
    parser.add_argument("-n", "--dry-run", action="store_true", help="list what would go, delete nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list what is kept, and why")


def main(args):
    if args.keep < 0:
        raise UsageError(f"--keep {args.keep}: must be 0 or more")
    try:
        cap = chunkcache.cap_bytes()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ws = open_workspace(args, readonly=args.dry_run)
    try:
        if not os.path.isdir(ws.recipe.workdir):
            print(f"nothing to collect: {show_path(ws.recipe.workdir)} does not exist")
            return 0
        if not args.dry_run and not ws.enter_alone():
            # A running build could be about to reuse a job gc would delete.
            raise ExmakeError("a build is running on this workdir; run gc when it has finished")
        keep, remove = retention.plan(ws, args.keep, lambda: survey(ws, list(ws.recipe.jobs)))
        if args.verbose:
            for jobid, reason in keep.items():
                print(f"  keep    {jobid:<24} {reason}")
        sizes = {jobid: retention.directory_bytes(ws.jobdirs.path(jobid)) for jobid in remove}
        for jobid in remove:
            print(f"  {'would remove' if args.dry_run else 'remove'} {jobid:<24} {_size(sizes[jobid])}")
        if not args.dry_run and remove:
            retention.remove(ws, remove)
        scratch, held = retention.collect_verify_scratch(ws.jobdirs.meta, dry_run=args.dry_run)
        for name, size in scratch:
            print(f"  {'would remove' if args.dry_run else 'remove'} verify scratch {name:<12} {_size(size)}")
        for name in held:
            print(f"  keep    verify scratch {name} (a verify is running in it)")
        _chunk_cache(ws, cap, args.dry_run)
        if not args.dry_run:
            ws.jobdirs.clean_stale()  # only reservations recorded as exmake's (see exmake.fs.jobdir)
            retention.empty_trash(os.path.join(ws.jobdirs.meta, "trash"))
        verb = "would free" if args.dry_run else "freed"
        extra = f" and {len(scratch)} verify scratch director{'ies' if len(scratch) != 1 else 'y'}" \
            if scratch else ""
        print(f"exmake gc: {len(remove)} of {len(keep) + len(remove)} job directories{extra}, "
              f"{verb} {_size(sum(sizes.values()) + sum(size for _, size in scratch))}")
    finally:
        ws.close()
    return 0


def _chunk_cache(ws, cap, dry_run):
    """Cut the chunk cache to its cap (no build is running: every temporary file is a killed writer's)."""
    cache = chunkcache.ChunkCache(chunkcache.cache_dir(ws.jobdirs.meta))
    removed, freed, kept, kept_bytes = cache.evict(cap, dry_run=dry_run, all_tmp=True)
    if removed or kept:
        verb = "would remove" if dry_run else "remove"
        print(f"  {verb} {removed} of {removed + kept} chunk cache entries, {_size(freed)} "
              f"(keeping {_size(kept_bytes)}; cap {_size(cap)}, {chunkcache.CAP_ENV})")


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
