"""Build, then watch the recipe and everything it reads, and rebuild what a change affects.

Edits are debounced (0.2 s); each rebuild prints one summary line with the
time. A change during a build cancels the running jobs it affects and
re-plans. A recipe that no longer loads prints its error and the watch goes
on. Changes in the workdir and the results directory are ignored. Ctrl-C
stops it (exit 130).
"""

import time

from exmake import graph
from exmake.build import Build, BuildOptions
from exmake.commands.build import add_resource_arguments, check_resource_arguments, prune_results
from exmake.report import Reporter
from exmake.urd import DEFAULT_LIST, check_list_name, log_build
from exmake.watch import Watcher


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="jobs to keep built (default: the default targets)")
    add_resource_arguments(parser)
    parser.add_argument("--poll", action="store_true",
                        help="poll for changes instead of inotify (network filesystems)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print reused jobs")
    parser.add_argument("--urd", metavar="LIST", default=DEFAULT_LIST,
                        help=f"the build-log list each rebuild is recorded in (default: {DEFAULT_LIST})")


def main(args):
    check_resource_arguments(args)
    check_list_name(args.urd)

    def make_build(ws, targets, hooks):
        names = graph.select_targets(ws.recipe, targets)
        reporter = Reporter(verbose=args.verbose, progress="never", hide_reused=not args.verbose)
        build = Build(ws, BuildOptions(args.jobs, keep_going=True, mem_mib=args.mem_mib), reporter)
        build.hooks = hooks
        started = time.monotonic()
        outcomes = build.run(names)
        prune_results(ws, reporter.write)
        failed = any(o.state == "failed" for o in outcomes.values())
        log_build(ws.store, args.urd, ws.recipe.path, ws.recipe.digest, names,
                  "FAILURE" if failed else "SUCCESS", time.monotonic() - started, build.log_jobs(),
                  "exmake watch")
        return outcomes

    Watcher(args.file, args.targets, make_build, poll=args.poll,
            out=lambda text: print(text, flush=True)).run()
    return 0
