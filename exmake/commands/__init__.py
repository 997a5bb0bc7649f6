"""One module per subcommand: each has `add_arguments(parser)` and `main(args)`.

Commands parse, call the core, and render; they never exit (cli.main does).
"""

import json
import sys


def open_workspace(args, readonly):
    from exmake.workspace import Workspace  # not at import: the no-op path must not load YAML
    ws = Workspace.load(args.file, readonly=readonly)
    warn_shadowed(ws.recipe, getattr(args, "command_words", ()))
    return ws


def warn_shadowed(recipe, command_words):
    """A job named like a command is silently not built by `exmake NAME`: say so."""
    for name in (n for n in recipe.jobs if n in command_words):
        print(f"exmake: warning: {recipe.path}:{recipe.jobs[name].line}: jobs.{name}: `exmake {name}` runs "
              f"the {name} command; build this job with `exmake build {name}`", file=sys.stderr)


def print_json(obj):
    json.dump(obj, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def outcome_json(outcome):
    document = {"state": outcome.state, "jobid": outcome.jobid, "path": outcome.path,
                "reasons": outcome.reasons}
    if "command" in outcome.detail:  # a dry run's job that would run
        document["command"] = outcome.detail["command"]
    if outcome.detail.get("usage"):  # a job that ran: what it used (post.json's "usage")
        document["usage"] = outcome.detail["usage"]
    return document
