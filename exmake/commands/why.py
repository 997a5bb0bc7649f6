"""Explain why a target would run (or is fresh), walking its dependencies.

Prints the target's decision and, indented, the decision of each job it
depends on. Runs nothing and writes nothing.
"""

from exmake import graph
from exmake.commands import add_sharing_arguments, open_workspace
from exmake.commands.status import describe, survey


def add_arguments(parser):
    parser.add_argument("target", metavar="TARGET", help="the job to explain")
    add_sharing_arguments(parser)


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        targets = graph.select_targets(ws.recipe, [args.target])  # a family: each of its jobs
        outcomes = survey(ws, targets)
        recipe = ws.recipe
    finally:
        ws.close()
    printed = set()

    def show(name, depth):
        state, detail = describe(outcomes[name])
        again = " (see above)" if name in printed else ""
        print(f"{'  ' * depth}{name}: {state}{' - ' + detail if detail and not again else ''}{again}")
        if name in printed:
            return
        printed.add(name)
        for dep in recipe.jobs[name].deps.values():
            show(dep, depth + 1)

    for target in targets:
        show(target, 0)
    if not targets:
        print(f"{args.target}: a family with no jobs (its foreach values are empty)")
    return 0
