"""One module per subcommand: each has `add_arguments(parser)` and `main(args)`.

Commands parse, call the core, and render; they never exit (cli.main does).
"""

import json
import os
import sys


def open_workspace(args, readonly):
    from exmake.workspace import Workspace  # not at import: the no-op path must not load YAML
    input_dir = getattr(args, "input_dir", None)
    ws = Workspace.load(args.file, readonly=readonly, input_dir=input_dir)
    reuse_from = reuse_sources(args)
    if reuse_from is not None:  # --reuse-from, else $EXMAKE_REUSE_FROM, over the recipe's `reuse_from:`
        ws.recipe.reuse_from = reuse_from
        os.environ[REUSE_ENV] = ":".join(reuse_from)  # the subjobs this build's job scripts ask for
    if input_dir:
        os.environ[INPUT_DIR_ENV] = os.path.abspath(input_dir)  # likewise (exmake.subjobs)
    warn_shadowed(ws.recipe, getattr(args, "command_words", ()))
    return ws


REUSE_ENV = "EXMAKE_REUSE_FROM"  # workdirs separated by ':', like PATH
INPUT_DIR_ENV = "EXMAKE_INPUT_DIR"  # --input-dir, handed to `exmake subjob` (exmake.subjobs)


def add_sharing_arguments(parser):
    """--input-dir and --reuse-from (build, batch, status, why)."""
    parser.add_argument("--input-dir", metavar="DIR", default=None,
                        help="name inputs relative to DIR (overrides the recipe's `input_dir:`); "
                             "keys record paths relative to it, so moved data is reused")
    parser.add_argument("--reuse-from", metavar="DIR", action="append", default=None,
                        help="reuse finished jobs with the same key from this other workdir, in place, "
                             f"never writing there (repeatable; default: ${REUSE_ENV}, separated by ':', "
                             "else the recipe's `reuse_from:`)")


def reuse_sources(args):
    """The workdirs --reuse-from or $EXMAKE_REUSE_FROM name (absolute), or None
    when neither does; a directory that does not exist is a usage error."""
    from exmake.errors import UsageError
    given = getattr(args, "reuse_from", None)
    where = "--reuse-from "
    if given is None:
        env = os.environ.get(REUSE_ENV)
        if not env:
            return None
        given, where = [d for d in env.split(":") if d], f"{REUSE_ENV}="
    dirs = []
    for directory in given:
        path = os.path.abspath(os.path.expanduser(directory))
        if not os.path.isdir(path):
            raise UsageError(f"{where}{directory}: no such directory")
        if path not in dirs:
            dirs.append(path)
    return dirs


def overrides_stamp(args):
    """Whether this command line decides inputs or reuse in a way the no-op
    stamp does not record (--input-dir, --reuse-from, $EXMAKE_REUSE_FROM): then
    the fast path is not taken, and no stamp is written."""
    return bool(getattr(args, "input_dir", None) or getattr(args, "reuse_from", None)
                or os.environ.get(REUSE_ENV))


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
    if outcome.detail.get("workdir"):  # reused in place from another workdir (`reuse_from:`)
        document["workdir"] = outcome.detail["workdir"]
    if "command" in outcome.detail:  # a dry run's job that would run
        document["command"] = outcome.detail["command"]
    if outcome.detail.get("usage"):  # a job that ran: what it used (post.json's "usage")
        document["usage"] = outcome.detail["usage"]
    return document
