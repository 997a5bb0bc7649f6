"""Write batch scripts for Slurm or Torque, and a submit.sh that submits them in
dependency order with afterok, for people who submit by hand.

    exmake emit --backend slurm --out batch/ [TARGET...]
    batch/submit.sh

Every job the targets need is written (on the cluster, a job that is
already fresh is reused at once by its script). On Slurm a family's
same-shaped jobs are job arrays (`#SBATCH --array=0-N`, with `%M` from -j)
as in a cluster build; submit.sh does not wait in waves, so it is for
builds within the site's MaxSubmitJobs.
"""

import os

from exmake import graph
from exmake.backends import select_backend
from exmake.backends.base import Limits
from exmake.cluster import check_paths, new_build_id, plan_units, submit_script, write_scripts
from exmake.commands import open_workspace
from exmake.errors import UsageError
from exmake.fs import atomic


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="jobs to emit (default: the default targets)")
    parser.add_argument("--backend", required=True, choices=("slurm", "torque"), help="the scheduler")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write the scripts into")
    parser.add_argument("-j", "--jobs", type=int, metavar="N", default=None,
                        help="at most N tasks of each job array run at once (--array=...%%N)")


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        targets = graph.select_targets(ws.recipe, args.targets)
        order = graph.build_order(ws.recipe, targets)
        backend = select_backend(args.backend)
        out = os.path.abspath(args.out)
        if os.path.exists(out) and not os.path.isdir(out):
            raise UsageError(f"--out {args.out}: exists and is not a directory")
        check_paths(backend, out)
        if args.jobs is not None and args.jobs < 1:
            raise UsageError(f"-j {args.jobs}: at least 1")
        # Written for another time and place: the site's limits are not asked,
        # only what a backend can do (Torque: no arrays).
        units = plan_units(backend, ws.recipe, order, Limits(None if backend.arrays else 1, None))
        scripts = write_scripts(backend, ws.recipe, units, new_build_id(), out, throttle=args.jobs)
        submit = os.path.join(out, "submit.sh")
        atomic.write_bytes(submit, submit_script(backend, ws.recipe, units, scripts).encode(), fsync=False,
                           mode=atomic.SCRIPT_MODE)
    finally:
        ws.close()
    for unit in units:
        print(f"wrote {scripts[unit.label]}" + (f"  (an array of {len(unit.names)} jobs)" if unit.array else ""))
    print(f"wrote {submit}  (run it to submit {len(order)} job{'s' if len(order) != 1 else ''})")
    return 0
