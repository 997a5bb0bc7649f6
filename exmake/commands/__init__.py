"""One module per subcommand: each has `add_arguments(parser)` and `main(args)`.

Commands parse, call the core, and render; they never exit (cli.main does).
"""

import json
import sys


def open_workspace(args, readonly):
    from exmake.workspace import Workspace  # not at import: the no-op path must not load YAML
    return Workspace.load(args.file, readonly=readonly)


def print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def outcome_json(outcome):
    return {"state": outcome.state, "jobid": outcome.jobid, "path": outcome.path,
            "reasons": outcome.reasons}
