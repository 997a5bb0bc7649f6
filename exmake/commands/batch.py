"""Run or reuse one job from a JSON environ and print one JSON result document.

sioworkers' batch interface: the environ, `{"job": NAME, "options": {...}}`
(and optionally "recipe" and "targets"), is read from $environ when set,
else from standard input. The job runs, or is reused, with its
dependencies; options given in the environ are laid over the recipe's, and
so key another job. The document printed is the environ plus "result"
(SUCCESS or FAILURE), "jobid", "path", "outputs" ({file: digest}) and, for a
failure, "exception" and "traceback".

Exit status: 0 whenever a document was printed, whatever its result; 2 for
an environ that is not JSON, names no job, or does not fit the recipe
(nothing is written then); 130 interrupted.
"""

import sys
import time

from exmake.commands import add_sharing_arguments, open_workspace


def add_arguments(parser):
    parser.add_argument("--markers", action="store_true",
                        help="wrap the document in --- BEGIN ENVIRON --- / --- END ENVIRON --- lines, "
                             "as sio-batch does")
    parser.add_argument("-j", "--jobs", type=int, metavar="N", default=None,
                        help="cores the jobs may use at once (default: the CPUs)")
    add_sharing_arguments(parser)


def main(args):
    from exmake.batch import apply_environ, read_environ, render, result_document
    from exmake.errors import UsageError
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"-j {args.jobs}: the number of cores must be at least 1")
    started = time.monotonic()
    environ = read_environ(sys.stdin)  # before anything is opened: bad input writes nothing
    if "recipe" in environ:
        args.file = environ["recipe"]
    ws = open_workspace(args, readonly=False)  # writes nothing until the build starts
    try:
        targets = apply_environ(ws.recipe, environ)
        outcome = _run(ws, args, targets, started)[environ["job"]]
        post = ws.jobdirs.read_post(outcome.jobid) if outcome.jobid and not outcome.detail.get("workdir") \
            else None
    finally:
        ws.close()
    sys.stdout.write(render(result_document(environ, outcome, post), args.markers))
    return 0


def _run(ws, args, targets, started):
    """Build `targets` quietly; the build is logged like any other."""
    from exmake.build import Build, BuildOptions
    from exmake.commands.build import _log, with_subjobs
    from exmake.report import Reporter
    build = Build(ws, BuildOptions(args.jobs, keep_going=True), Reporter(enabled=False))
    args.dry_run, args.urd, args.message = False, "default", "exmake batch"
    outcomes = build.run(targets)
    failed = any(o.state == "failed" for o in outcomes.values())
    _log(ws.store, args, ws.recipe, targets, "FAILURE" if failed else "SUCCESS", started,
         with_subjobs(ws.recipe, outcomes, build.log_jobs()))
    return outcomes
