"""Print the absolute path of a job directory, for use in shell commands.

JOB is NAME (its current fresh job; exit 1 if it is stale), NAME-N or NAME-LATEST.
Example: `cat $(exmake path count)/counts.txt`.
"""

from exmake import jobref
from exmake.commands import add_sharing_arguments, open_workspace
from exmake.rebuilder import current_job, survey


def add_arguments(parser):
    parser.add_argument("job", metavar="JOB", help="NAME, NAME-N or NAME-LATEST")
    add_sharing_arguments(parser)


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        if args.job in ws.recipe.jobs and ws.recipe.reuse_from:  # it may be fresh in another workdir
            outcome = survey(ws, [args.job])[args.job]
            if outcome.state == "fresh" and outcome.detail.get("workdir"):
                print(outcome.path)
                return 0
        print(ws.jobdirs.path(jobref.resolve(ws, args.job, current_job)))
    finally:
        ws.close()
    return 0
