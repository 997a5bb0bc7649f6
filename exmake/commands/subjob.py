"""Run or reuse one subjob for a running job script (its `job.build`); hidden.

Reads the request (JSON, see exmake.subjobs) on standard input and prints
its result as one JSON line. Exit 0 whenever a result was printed, whatever
it is; 2 for a request that is not one.
"""

import json
import os
import sys


def add_arguments(parser):
    pass


def main(args):
    from exmake.errors import UsageError
    from exmake.subjobs import run_subjob
    try:
        request = json.loads(sys.stdin.read())
    except ValueError as exc:
        raise UsageError(f"subjob: the request is not JSON: {exc}") from None
    cores = int(os.environ.get("EXMAKE_CORES") or 1)  # the parent's slots, lent while it waits
    result = run_subjob(request, cores=max(1, cores))
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0
