"""Build the targets: run every stale job they need, reuse every fresh one.

A job is fresh when a finished job directory has the same key: the same
command, options and env, the same input file contents and the same
dependency outputs. Everything else runs, in parallel where the
dependencies allow, and every decision is printed with its reason. Each
build (not a dry run) appends one entry to the build log: see `exmake urd`.
"""

import os
import time

from exmake.commands import add_sharing_arguments, open_workspace, outcome_json, overrides_stamp, print_json
from exmake.errors import Interrupted, JobFailed, UsageError
from exmake.report import PROGRESS_MODES, Reporter
from exmake.outcome import Outcome
from exmake.urd import DEFAULT_LIST, check_list_name


def add_arguments(parser):
    parser.add_argument("targets", nargs="*", metavar="TARGET",
                        help="jobs to build (default: the recipe's `default:`, else every job)")
    add_resource_arguments(parser)
    add_sharing_arguments(parser)
    parser.add_argument("-k", "--keep-going", action="store_true",
                        help="go on past a failed job: only its dependents are skipped")
    parser.add_argument("-B", "--always-make", action="store_true",
                        help="run every job again even if it is fresh")
    parser.add_argument("-n", "--dry-run", action="store_true",
                        help="print each job as fresh or stale, with reasons; run and write nothing")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document describing the build instead of lines")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                        help="a progress bar: auto (on a terminal), always, never (one line per job)")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report (one test case per job)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when the build succeeds (as make -s); a failed job, "
                             "its log and the summary are still printed")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also print reasons for reused jobs, and keep exmake's own frames in "
                             "job-script tracebacks")
    parser.add_argument("--backend", metavar="NAME", default=None,
                        help="local, slurm, torque or auto (default: $EXMAKE_BACKEND, the recipe's "
                             "`backend:`, else local); slurm/torque submit batch jobs chained with afterok")
    parser.add_argument("--no-wait", action="store_true",
                        help="with a cluster backend: submit, print the scheduler ids and return "
                             "(`exmake status` shows later what finished)")
    parser.add_argument("--urd", metavar="LIST", default=DEFAULT_LIST,
                        help=f"the build-log list to record this build in (default: {DEFAULT_LIST})")
    parser.add_argument("-m", "--message", metavar="CAPTION", default="",
                        help="a caption for this build's log entry")


def add_resource_arguments(parser):
    """-j and --mem: what the local build's jobs may hold at once (build and watch)."""
    parser.add_argument("-j", "--jobs", type=int, metavar="N", default=None,
                        help="cores the jobs may use at once: a job holds `resources.cores` (default 1; "
                             "a sliced job its slices) while it runs (default: the CPUs, here "
                             f"{len(os.sched_getaffinity(0))})")
    parser.add_argument("--mem", metavar="SIZE", default=None,
                        help="memory the jobs with `mem:` may hold at once, e.g. 16G (default: the "
                             "machine's physical memory)")


def check_resource_arguments(args):
    """-j and --mem checked; --mem turned into MiB (args.mem_mib)."""
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"-j {args.jobs}: the number of cores must be at least 1")
    args.mem_mib = None
    if args.mem is not None:
        from exmake.resources import parse_mem_mib
        try:
            args.mem_mib = parse_mem_mib(args.mem)
        except ValueError as exc:
            raise UsageError(f"--mem {args.mem}: {exc}") from None


def main(args):
    check_resource_arguments(args)
    check_list_name(args.urd)
    from exmake.backends import NAMES
    for where, given in (("--backend ", args.backend), ("EXMAKE_BACKEND=", os.environ.get("EXMAKE_BACKEND"))):
        if given and given not in NAMES:  # before the fast path, which never looks at it
            raise UsageError(f"{where}{given}: choose one of {', '.join(NAMES)}")
    if os.environ.get("EXMAKE_CHUNK_CACHE_MAX"):  # read by chunked jobs as they end: checked before anything runs
        from exmake.chunkcache import cap_bytes
        try:
            cap_bytes()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    started = time.monotonic()
    reporter = Reporter(quiet=args.quiet, verbose=args.verbose, enabled=not args.json, progress=args.progress)
    if args.verbose:  # read by the forked job-script runners (exmake.methodrun)
        from exmake.methodrun import TRACEBACK_ENV
        os.environ.setdefault(TRACEBACK_ENV, "full")
    if not (args.dry_run or args.always_make or overrides_stamp(args)):
        from exmake.noop import unchanged_build
        unchanged = unchanged_build(args.file, args.targets)
        if unchanged is not None:
            return _unchanged(args, reporter, started, *unchanged)
    from exmake import graph
    from exmake.build import Build, BuildOptions
    from exmake.recipe import check_publish_targets, save_parsed
    ws = open_workspace(args, readonly=args.dry_run)
    try:
        targets = graph.select_targets(ws.recipe, args.targets)
        check_publish_targets(ws.recipe, graph.build_order(ws.recipe, targets))  # before any job runs
        reporter.job_lines = {name: (ws.recipe.path, job.line) for name, job in ws.recipe.jobs.items()}
        if args.dry_run:
            return _dry_run(args, ws, targets, reporter, started)
        backend = _backend(args, ws.recipe)
        if backend is not None:
            return _cluster(args, ws, backend, targets, reporter, started)
        options = BuildOptions(args.jobs, args.keep_going, args.always_make, mem_mib=args.mem_mib)
        build = Build(ws, options, reporter)
        try:
            outcomes = build.run(targets)
        except Interrupted:
            _log(ws.store, args, ws.recipe, targets, "INTERRUPTED", started, build.log_jobs())
            if args.junit:
                from exmake.junit import write_junit
                write_junit(args.junit, ws.recipe.path, build.outcomes, time.monotonic() - started)
            if args.json:
                print_json(_document("INTERRUPTED", build.outcomes))
            raise
        failed = any(o.state == "failed" for o in outcomes.values())
        prune_results(ws, reporter.write)
        if not (overrides_stamp(args) or any(o.detail.get("workdir") for o in outcomes.values())):
            build.stamp(args.targets)  # a job reused from elsewhere is checked afresh each build
        save_parsed(ws.recipe)  # only after a build: bad input writes nothing
        _log(ws.store, args, ws.recipe, targets, "FAILURE" if failed else "SUCCESS", started,
             with_subjobs(ws.recipe, outcomes, build.log_jobs()))
    finally:
        ws.close()
    return _report(args, reporter, outcomes, started, "FAILURE" if failed else "SUCCESS")


def with_subjobs(recipe, outcomes, jobs):
    """The build log's jobs, each job script's children (`job.build`, from its
    post.json's "subjobs") listed under it as {"name", "jobid", "key", "state"}."""
    from exmake.fs.atomic import read_json
    for name, outcome in outcomes.items():
        if outcome.path and name in jobs and recipe.jobs[name].method:
            post = read_json(os.path.join(outcome.path, "post.json")) or {}
            if isinstance(post.get("subjobs"), list):
                jobs[name]["subjobs"] = [{k: s.get(k) for k in ("name", "jobid", "key", "state")}
                                         for s in post["subjobs"] if isinstance(s, dict)]
    return jobs


def prune_results(ws, write):
    """Results of jobs no longer in the recipe go, and the build says so (with
    `write`); the local build, the cluster build and watch all do it."""
    from exmake.ledger import Ledger
    from exmake.report import show_path
    for link, name in Ledger(ws).prune():
        why = "no longer publishes it" if name in ws.recipe.jobs else "is no longer in the recipe"
        write(f"  unpublished {show_path(link)} (job {name} {why})")


def _dry_run(args, ws, targets, reporter, started):
    """-n: the rebuilder's survey, printed; runs and writes nothing. A job whose
    last attempt with this key failed shows as failed (it would run again).
    Each job that would run is followed by the exact command it would run
    (its stable view makes that knowable before its dependencies run);
    a family's fresh jobs share a line. -q: only the names of the jobs that
    would run, one a line."""
    from exmake.rebuilder import survey
    from exmake.report import family_of, grouped_lines, job_line
    outcomes = survey(ws, targets, force=args.always_make)
    would_run = lambda name: outcomes[name].state != "fresh"  # noqa: E731
    for name in filter(would_run, outcomes):  # for --json ("command": one, or one per slice)
        commands = _commands(ws, name)
        if commands:
            outcomes[name].detail["command"] = commands if ws.recipe.jobs[name].slices else commands[0]
    if reporter.enabled and args.quiet:
        for name in filter(would_run, outcomes):
            print(name)
        return 0
    if reporter.enabled:

        def line_for(label, names):
            first = outcomes[names[0]]
            if len(names) == 1:
                line = job_line(label, first, args.verbose, reporter.colour)
                return "\n".join([line, *_command_lines(ws, names[0])]) if would_run(names[0]) else line
            return job_line(f"{label} ({len(names):,} jobs)", Outcome(first.state), args.verbose, reporter.colour)
        # Fresh jobs of a family share a line; each job that would run has its own, for its command.
        agreement = lambda name: name if would_run(name) else "fresh"  # noqa: E731
        for line in grouped_lines(list(outcomes), family_of, agreement, line_for):
            reporter.write(line)
        from exmake.commands.status import empty_families
        for family in empty_families(ws.recipe, args.targets):
            reporter.write(f"  empty   {family}@{{}}            (no values: the family has no jobs)")
    return _report(args, reporter, outcomes, started, "SUCCESS")


def _command_lines(ws, name):
    """What job `name` would run, indented under its line: its command (one per
    slice), or the job script it would run."""
    job = ws.recipe.jobs[name]
    if job.method:
        return [f"          job script {ws.recipe.relpath(job.method.path)}"]
    commands = _commands(ws, name)
    if len(commands) == 1:
        return [f"          {commands[0]}"]
    return [f"          slice {n}: {command}" for n, command in enumerate(commands)]


def _commands(ws, name):
    from exmake import view
    return view.commands(ws.recipe.jobs[name], ws.recipe.root)


def _backend(args, recipe):
    """The cluster backend asked for (command line, then $EXMAKE_BACKEND, then the
    recipe), or None for a local build."""
    from exmake.backends import select_backend
    name = args.backend or os.environ.get("EXMAKE_BACKEND") or recipe.backend or "local"
    return select_backend(name)


def _cluster(args, ws, backend, targets, reporter, started):
    from exmake.cluster import ClusterBuild
    from exmake.commands.status import survey
    # -j on a cluster: at most N tasks of each job array run at once (`--array=...%N`)
    cluster = ClusterBuild(ws, backend, reporter, lambda t: survey(ws, t), force=args.always_make,
                           throttle=args.jobs)
    scheduler = {"backend": backend.name, "build": cluster.build_id, "ids": cluster.ids}
    try:
        outcomes = cluster.run(targets, wait=not args.no_wait)
        prune_results(ws, reporter.write)
    except Interrupted:
        _log(ws.store, args, ws.recipe, targets, "INTERRUPTED", started, _jobs(cluster.outcomes), scheduler)
        raise
    failed = any(o.state == "failed" for o in outcomes.values())
    status = "SUBMITTED" if args.no_wait else "FAILURE" if failed else "SUCCESS"
    _log(ws.store, args, ws.recipe, targets, status, started, _jobs(outcomes), scheduler)
    if args.verbose:
        reporter.write(f"exmake: {backend.queries} {backend.name} status queries")
    return _report(args, reporter, outcomes, started, "FAILURE" if failed else "SUCCESS")


def _jobs(outcomes):
    return {name: {"jobid": o.jobid, "key": None, "state": o.state} for name, o in outcomes.items()}


def _unchanged(args, reporter, started, record, lmdb_dir):
    """The no-op fast path: report every job reused and log the build."""
    from exmake.fs.store import Store
    outcomes = {name: Outcome("reused", jobid, path) for name, jobid, path, _ in record["jobs"]}
    if args.verbose:
        reporter.write("exmake: nothing changed since the last build of these targets")
    for name, outcome in outcomes.items():
        reporter.job_done(name, outcome)
    store = Store(lmdb_dir)
    try:
        jobs = {name: {"jobid": jobid, "key": key, "state": "reused"} for name, jobid, _, key in record["jobs"]}
        _append(store, args, record["recipe"][0], record["recipe_digest"], record["targets"],
                "SUCCESS", started, jobs)
    finally:
        store.close()
    return _report(args, reporter, outcomes, started, "SUCCESS")


def _log(store, args, recipe, targets, status, started, jobs, scheduler=None):
    if store is not None and not args.dry_run:
        _append(store, args, recipe.path, recipe.digest, targets, status, started, jobs, scheduler)


def _append(store, args, recipe_path, digest, targets, status, started, jobs, scheduler=None):
    from exmake.urd import log_build
    log_build(store, args.urd, recipe_path, digest, targets, status, time.monotonic() - started,
              jobs, args.message, scheduler)


def _report(args, reporter, outcomes, started, status):
    if args.junit:
        from exmake.junit import write_junit
        write_junit(args.junit, os.path.abspath(args.file), outcomes, time.monotonic() - started)
    if args.json:
        print_json(_document(status, outcomes))
    else:
        reporter.summary(outcomes, time.monotonic() - started)
    if status == "FAILURE":
        raise JobFailed("a job failed" if sum(o.state == "failed" for o in outcomes.values()) == 1
                        else "jobs failed")
    return 0


def _document(status, outcomes):
    return {"status": status, "jobs": {name: outcome_json(o) for name, o in outcomes.items()}}
