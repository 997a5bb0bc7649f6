"""Run one job as a cluster batch script does (used by exmake's batch scripts).

Computes the job's key from its dependencies' finished jobs, reuses an
equal finished job if there is one, else runs it exactly as a local build
would, and writes `<job>.result.json` into the build's batch directory for
the submitting exmake. Exit 0 when the job is built or reused, 1 if not.

A task of a job array names no job: `--tasks FILE` (written before the
array was submitted) and $SLURM_ARRAY_TASK_ID say which one it runs.
"""

import os

from exmake.build import Build, BuildOptions
from exmake.cluster import task_job, write_result
from exmake.commands import open_workspace
from exmake.errors import JobFailed, UsageError
from exmake.report import Reporter


def add_arguments(parser):
    parser.add_argument("job", metavar="JOB", nargs="?", help="the recipe job to run")
    parser.add_argument("--tasks", metavar="FILE", help="an array's tasks file: run the job of this task")
    parser.add_argument("--build", required=True, metavar="ID", help="the cluster build this belongs to")
    parser.add_argument("-B", "--always-make", action="store_true", help="run it even if it is fresh")


def main(args):
    if args.tasks:
        if args.job:
            raise UsageError("exec-job: name a JOB or --tasks, not both")
        args.job = task_job(args.tasks, os.environ.get("SLURM_ARRAY_TASK_ID"))
    elif not args.job:
        raise UsageError("exec-job: name a JOB (or --tasks FILE in an array task)")
    ws = open_workspace(args, readonly=False)
    try:
        if args.job not in ws.recipe.jobs:
            raise UsageError(f"no job named {args.job!r} in {ws.recipe.path}")
        reporter = Reporter()
        # One job runs here, on the cores the batch system gave this node's
        # process (its cpuset): they are what its thread variables should say.
        build = Build(ws, BuildOptions(force=args.always_make, only=args.job), reporter)
        outcomes = build.run([args.job])
        outcome = outcomes[args.job]
        if outcome.state == "skipped":  # a dependency had no finished job
            failed = next(o for o in outcomes.values() if o.state == "failed")
            outcome.state, outcome.detail = "failed", failed.detail
        write_result(ws.recipe.workdir, args.build, args.job, outcome)
    finally:
        ws.close()
    if outcome.state not in ("built", "reused"):
        raise JobFailed(f"job {args.job} failed")
    return 0
