"""Show every job (or the named ones) as fresh, stale, failed or never built, with the reason.

`--resources`: what the jobs of the last build used instead (the newest entry
of the build log's list): the slowest and the biggest, from each job's
post.json. Runs nothing and writes nothing.
"""

import os

from exmake.commands import add_sharing_arguments, open_workspace, outcome_json, print_json
from exmake.report import family_of, grouped_lines, show_path


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="jobs to show (default: every job)")
    add_sharing_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--resources", action="store_true",
                        help="the slowest and biggest jobs of the last build: wall time, CPU, peak memory")
    parser.add_argument("--urd", metavar="LIST", default="default",
                        help="with --resources: the build-log list whose last build to show")


TOP_JOBS = 10   # --resources shows this many of the slowest and of the biggest


def survey(ws, targets):
    """{name: Outcome} of a dry run over `targets` and their dependencies (the
    rebuilder's, which every command shares)."""
    from exmake.rebuilder import survey as rebuilder_survey  # not at import: the fast path needs no YAML
    return rebuilder_survey(ws, targets)


def describe(outcome):
    """(state word, detail) for one surveyed job."""
    if outcome.state == "fresh" and outcome.detail.get("workdir"):  # `reuse_from:`
        return "fresh", f"{outcome.jobid} in {outcome.detail['workdir']}"
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


def last_build_usage(ws, list_name, targets):
    """(entry, {name: (state, jobid, usage)}) of the newest build in `list_name`
    (only `targets`' jobs if any are named); usage is post.json's, or None."""
    from exmake.urd import Log, check_list_name
    check_list_name(list_name)
    entries = Log(ws.store).entries(list_name) if ws.store is not None else []
    if not entries:
        return None, {}
    entry = entries[-1]
    jobs = {}
    for name, job in entry["jobs"].items():
        if targets and name not in targets or not job.get("jobid"):
            continue
        post = ws.jobdirs.read_post(job["jobid"])
        jobs[name] = (job["state"], job["jobid"], (post or {}).get("usage"))
    return entry, jobs


def resource_lines(entry, jobs, top=TOP_JOBS):
    """The --resources view: totals, then the slowest and the biggest jobs."""
    from exmake.resources import format_bytes
    used = {name: u for name, (_, _, u) in jobs.items() if u}
    lines = [f"last build: {entry['timestamp']}  {entry['status']}  {len(entry['jobs'])} jobs, "
             f"{len(used)} with a record of what they used"]
    if not used:
        return lines
    cpu = sum((u.get("user_s") or 0) + (u.get("system_s") or 0) for u in used.values())
    lines.append(f"cpu {cpu:.1f}s in all; wall {sum(u['wall_s'] for u in used.values()):.1f}s in all")
    width = max(len(jobs[name][1]) for name in used)

    def row(name):
        u = used[name]
        cpu_s = (u.get("user_s") or 0) + (u.get("system_s") or 0)
        limit = f"  of {u['mem_limit_mib']}M" if u.get("mem_limit_mib") else ""
        return (f"  {jobs[name][1]:<{width}}  {jobs[name][0]:<7} wall {u['wall_s']:8.2f}s  cpu {cpu_s:8.2f}s  "
                f"peak {format_bytes(u['peak_rss_bytes']):>6}{limit}  cores {u.get('cores', 1)}")
    lines.append("slowest:")
    lines += [row(n) for n in sorted(used, key=lambda n: -used[n]["wall_s"])[:top]]
    lines.append("biggest:")
    lines += [row(n) for n in sorted(used, key=lambda n: -used[n]["peak_rss_bytes"])[:top]]
    return lines


def _resources(args):
    ws = open_workspace(args, readonly=True)
    try:
        entry, jobs = last_build_usage(ws, args.urd, args.targets)
    finally:
        ws.close()
    if entry is None:
        print(f"no build recorded in list {args.urd!r} yet")
        return 0
    if args.json:
        print_json({"timestamp": entry["timestamp"], "status": entry["status"],
                    "jobs": {name: {"state": state, "jobid": jobid, "usage": usage}
                             for name, (state, jobid, usage) in jobs.items()}})
        return 0
    for line in resource_lines(entry, jobs):
        print(line)
    return 0


def main(args):
    if args.resources:
        return _resources(args)
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
