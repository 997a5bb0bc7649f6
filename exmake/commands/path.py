"""Print the absolute path of a job directory, for use in shell commands.

JOB is NAME (its current fresh job; exit 1 if it is stale), NAME-N or NAME-LATEST.
Example: `cat $(exmake path count)/counts.txt`.
"""

from exmake import jobref
from exmake.commands import open_workspace
from exmake.rebuilder import current_job


def add_arguments(parser):
    parser.add_argument("job", metavar="JOB", help="NAME, NAME-N or NAME-LATEST")


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        print(ws.jobdirs.path(jobref.resolve(ws, args.job, current_job)))
    finally:
        ws.close()
    return 0
