"""Write batch scripts for Slurm or Torque, and a submit.sh that submits them in
dependency order with afterok, for people who submit by hand.

    exmake emit --backend slurm --out batch/ [TARGET...]
    batch/submit.sh

Every job the targets need is written (on the cluster, a job that is
already fresh is reused at once by its script).
"""

import os

from exmake import graph
from exmake.backends import select_backend
from exmake.cluster import check_paths, new_build_id, submit_script, write_scripts
from exmake.commands import open_workspace
from exmake.errors import UsageError
from exmake.fs import atomic


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="jobs to emit (default: the default targets)")
    parser.add_argument("--backend", required=True, choices=("slurm", "torque"), help="the scheduler")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write the scripts into")


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
        scripts = write_scripts(backend, ws.recipe, order, new_build_id(), out)
        submit = os.path.join(out, "submit.sh")
        atomic.write_bytes(submit, submit_script(backend, ws.recipe, order, scripts).encode(), fsync=False,
                           mode=atomic.SCRIPT_MODE)
    finally:
        ws.close()
    for name in order:
        print(f"wrote {scripts[name]}")
    print(f"wrote {submit}  (run it to submit {len(order)} job{'s' if len(order) != 1 else ''})")
    return 0
