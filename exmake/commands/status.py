"""Show every job (or the named ones) as fresh, stale, failed or never built, with the reason.

Runs nothing and writes nothing.
"""

import os

from exmake.commands import open_workspace, outcome_json, print_json
from exmake.report import family_of, grouped_lines, show_path


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="jobs to show (default: every job)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def survey(ws, targets):
    """{name: Outcome} of a dry run over `targets` and their dependencies (the
    rebuilder's, which every command shares)."""
    from exmake.rebuilder import survey as rebuilder_survey  # not at import: the fast path needs no YAML
    return rebuilder_survey(ws, targets)


def describe(outcome):
    """(state word, detail) for one surveyed job."""
    if outcome.state == "fresh":
        return "fresh", outcome.jobid
    if outcome.state == "failed":
        return "failed", "; ".join(outcome.reasons)
    if outcome.detail.get("never_built") or outcome.reasons[:1] == ["no earlier job"]:
        return "never built", "; ".join(r for r in outcome.reasons if r != "no earlier job")
    return "stale", "; ".join(outcome.reasons)


def _all_fresh(args):
    """The fast path: the last build of every job is unchanged (see exmake.fs.stamp);
    print them all fresh without reading the recipe's YAML."""
    from exmake.noop import unchanged_build
    found = unchanged_build(args.file, [])
    if not found or set(found[0]["all_jobs"]) != {name for name, *_ in found[0]["jobs"]}:
        return False
    jobs = found[0]["jobs"]
    if args.json:
        print_json({name: {"state": "fresh", "jobid": jobid, "path": path, "reasons": []}
                    for name, jobid, path, _ in jobs})
        return True
    from exmake.outcome import Outcome
    for line in status_lines({name: Outcome("fresh", jobid, path) for name, jobid, path, _ in jobs}):
        print(line)
    print(f"workdir: {show_path(found[1].rsplit(os.sep + '.exmake', 1)[0])}")
    return True


def empty_families(recipe, asked):
    """The families among `asked` (every family when nothing is asked) that have
    no jobs: a glob that matches nothing, an empty list or file of lines."""
    return [family for family, jobs in recipe.families.items() if not jobs and (not asked or family in asked)]


def status_lines(outcomes):
    """One line per job, or per family where its jobs agree: `fresh  map@{A,B,C}  3 jobs`."""
    described = {name: describe(outcome) for name, outcome in outcomes.items()}

    def agreement(name):
        state, detail = described[name]
        return (state, "" if state == "fresh" else detail)

    def line_for(label, names):
        state, detail = described[names[0]]
        if len(names) > 1:
            detail = f"{len(names):,} jobs" if state == "fresh" else f"{len(names):,} jobs: {detail}"
        return label, state, detail
    rows = grouped_lines(list(outcomes), family_of, agreement, line_for)
    width = max((len(label) for label, _, _ in rows), default=0)
    return [f"{state:<12} {label:<{width}}  {detail}".rstrip() for label, state, detail in rows]


def cluster_states(ws, outcomes):
    """{name: "slurm job 31: RUNNING"} for jobs not yet fresh that the newest
    cluster build submitted, from one scheduler query."""
    from exmake.cluster import latest_build, read_jobs
    build = latest_build(ws.recipe.workdir)
    record = read_jobs(ws.recipe.workdir, build) if build else None
    if not record:
        return {}
    waiting = {name: job_id for name, job_id in record["jobs"].items()
               if name in outcomes and outcomes[name].state != "fresh"}
    if not waiting:
        return {}
    from exmake.backends import SchedulerError, select_backend
    try:
        states = select_backend(record["backend"]).query(list(waiting.values()))
    except SchedulerError as exc:
        return {name: f"{record['backend']} job {job_id}: unknown ({exc})" for name, job_id in waiting.items()}
    return {name: f"{record['backend']} job {job_id}: "
            + (states[job_id].state if job_id in states else "unknown to the scheduler")
            for name, job_id in waiting.items()}


def main(args):
    if not args.targets and _all_fresh(args):
        return 0
    from exmake import graph
    ws = open_workspace(args, readonly=True)
    try:
        targets = graph.select_targets(ws.recipe, args.targets) if args.targets else list(ws.recipe.jobs)
        outcomes = survey(ws, targets)
        cluster = cluster_states(ws, outcomes)
        empty = empty_families(ws.recipe, args.targets)
    finally:
        ws.close()
    for name, text in cluster.items():
        outcomes[name].reasons = outcomes[name].reasons + [text]
    if args.json:
        print_json({name: outcome_json(o) for name, o in outcomes.items()})
        return 0
    for line in status_lines(outcomes) + [f"{'empty':<12} {family}@{{}}  no values" for family in empty]:
        print(line)
    print(f"workdir: {show_path(ws.recipe.workdir)}")
    return 0
