"""The command line: parse, dispatch to `exmake.commands`, and exit.

This is the only place that exits. Every ExmakeError carries its status
(0 success, 1 a job failed, 2 usage or recipe error, 130 interrupted);
KeyboardInterrupt and a closed stdout (EPIPE) are handled here once.
"""

import argparse
import importlib
import os
import sys

from exmake import __version__
from exmake.errors import ExmakeError

# subcommand -> (module under exmake.commands, one-line help)
COMMANDS = {
    "build": ("build", "build targets (the default when no command is given)"),
    "status": ("status", "show each job: fresh, stale, failed or never built, and why"),
    "why": ("why", "explain why a target would (or would not) run"),
    "show": ("show", "print what made a job or a result file: command, inputs, dependencies, build"),
    "path": ("path", "print the absolute path of a job directory"),
    "verify": ("verify", "run finished jobs again in a scratch directory and compare their outputs"),
    "watch": ("watch", "build, then rebuild whenever an input, job script or the recipe changes"),
    "urd": ("urd", "read the build log: lists, entries, export and import"),
    "gc": ("gc", "delete job directories that no longer matter"),
    "emit": ("emit", "write Slurm or Torque batch scripts and a submit.sh, for submitting by hand"),
    "resources": ("resources", "list the resource keys with their Slurm and Torque forms"),
    "init": ("init", "write a starter Exmakefile"),
    "list": ("list", "list the recipe's jobs and families, with their `doc:` descriptions"),
    "clean": ("clean", "remove the published results and -LATEST links (--workdir: the workdir too)"),
    "completion": ("completion", "print a bash, zsh or fish completion script"),
}
# Commands that scripts use but people need not see in --help.
HIDDEN = {"exec-job": ("exec_job", "run one job as a batch script does")}
# Options that take a value, so the first bare word after them is not a command.
VALUE_OPTIONS = {"-f", "--file", "-C", "--directory", "-j", "--jobs", "--urd", "-m", "--message",
                 "--backend"}

EPILOG = """\
Run `exmake COMMAND --help` for a command's own options. With no command,
exmake builds: `exmake` builds the recipe's default targets, `exmake NAME...`
builds those jobs and what they depend on. A job named like a command
(`status`, `show`, `gc`...) is built with `exmake build NAME`.

Exit status: 0 success, 1 a job failed, 2 usage or recipe error, 130 interrupted.
"""


def common_options():
    """The options every command takes, as a parent parser."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-f", "--file", metavar="FILE", default="Exmakefile",
                        help="the recipe to read (default: ./Exmakefile)")
    parent.add_argument("-C", "--directory", metavar="DIR",
                        help="change to DIR before doing anything")
    return parent


def split_command(argv):
    """(command, remaining argv): the first bare word names a command, if it is one."""
    skip = False
    for index, word in enumerate(argv):
        if skip:
            skip = False
        elif word == "--":
            break
        elif word in VALUE_OPTIONS:
            skip = True
        elif not word.startswith("-"):
            if word in COMMANDS or word in HIDDEN:
                return word, argv[:index] + argv[index + 1:]
            break
    return "build", argv


def make_parser(command):
    module = importlib.import_module(f"exmake.commands.{(COMMANDS.get(command) or HIDDEN[command])[0]}")
    if command == "build":
        prog, description = "exmake", module.__doc__
    else:
        prog, description = f"exmake {command}", module.__doc__
    parser = argparse.ArgumentParser(
        prog=prog, description=description, parents=[common_options()],
        epilog=EPILOG if command == "build" else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if command == "build":
        parser.add_argument("--version", action="version", version=f"exmake {__version__}")
        width = max(map(len, COMMANDS))
        commands = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
        parser.epilog = f"commands:\n{commands}\n\n{EPILOG}"
    module.add_arguments(parser)
    # Recipes are loaded below this layer; they warn about jobs these words shadow.
    # `completion` writes every command's flags into its scripts: it gets the parsers from here.
    parser.set_defaults(command_words=tuple(COMMANDS), make_parser=make_parser,
                        command_help={name: text for name, (_, text) in COMMANDS.items()})
    return parser, module


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        command, rest = split_command(argv)
        parser, module = make_parser(command)
        args = parser.parse_args(rest)
        if args.directory:
            try:
                os.chdir(args.directory)
            except OSError as exc:
                parser.error(f"-C {args.directory}: {exc.strerror}")
        status = module.main(args) or 0
    except ExmakeError as exc:
        print(f"exmake: {exc}", file=sys.stderr)
        status = exc.exit_code
    except KeyboardInterrupt:
        print("exmake: interrupted", file=sys.stderr)
        status = 130
    except BrokenPipeError:
        # `exmake status | head`: stop quietly; stdout is gone.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 0
    except OSError as exc:
        # The machine's trouble, not a bug of ours: say it in one line.
        print(f"exmake: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        status = 1
    sys.exit(status)
