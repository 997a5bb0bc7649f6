"""Run finished jobs again in a scratch directory and compare their outputs with the recorded hashes.

JOB is NAME (its current fresh job), NAME-N, NAME-LATEST, or a PATH in a
job directory (a published result, say); with none, every job the
recipe's default targets need, in build order. Each is run again exactly
as a build would run it, under another job number, in
`<workdir>/.exmake/verify/`, and each output file that differs, is
missing or is new is named. Nothing a build reads is touched. A scratch
directory whose job differed or failed is kept for a look (diff it with
the job's own directory); the others are removed. A job whose input (or
job script) changed while it ran again is reported as such, not as
differing: the re-run proves nothing, verify it again. A job made before
the stable view (a shell job whose setup.json has no `command`; one without
`deps/` or `inputs/` links) cannot be compared with a re-run: it is
skipped with that said, the others are verified. Exit 1 if any job
verified is not shown reproducible, else 2 if any job was skipped.
"""

from exmake import graph, jobref
from exmake.commands import open_workspace, print_json
from exmake.errors import JobFailed, UsageError
from exmake.rebuilder import current_job, survey
from exmake.report import Reporter, show_path


def add_arguments(parser):
    parser.add_argument("jobs", nargs="*", metavar="JOB|PATH",
                        help="NAME, NAME-N, NAME-LATEST or a file a job made (default: the default targets' jobs)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def main(args):
    from exmake.verify import PredatesView, verify_job
    ws = open_workspace(args, readonly=False)
    results, skipped = [], {}
    try:
        for jobid in _jobids(ws, args.jobs):
            reporter = Reporter(enabled=False)
            try:
                results.append(verify_job(ws, jobid, reporter))
            except PredatesView as exc:
                skipped[jobid] = str(exc)
                if not args.json:
                    print(f"skipped  {exc}")
                continue
            if not args.json:
                _print(results[-1])
    finally:
        ws.close()
    bad = [r for r in results if not r.reproducible]
    changed = [r.jobid for r in bad if r.changed]
    differ = [r.jobid for r in bad if not r.changed]
    if args.json:
        jobs = {r.jobid: _json(r) for r in results}
        jobs.update({jobid: {"reproducible": False, "state": "skipped", "reason": why}
                     for jobid, why in skipped.items()})
        print_json({"status": "FAILURE" if bad or skipped else "SUCCESS", "jobs": jobs})
    else:
        unsure = f" ({len(changed)} could not be compared: what it read changed while it ran)" if changed else ""
        print(f"exmake: {len(results) - len(bad)} of {len(results)} job{'s' if len(results) != 1 else ''} "
              f"reproducible{unsure}" + (f"; {len(skipped)} skipped: made before the stable view, "
                                         f"remake with exmake -B" if skipped else ""))
    if bad:
        raise JobFailed("; ".join(([f"not reproducible: {', '.join(differ)}"] if differ else []) +
                                  ([f"changed while verified (verify again): {', '.join(changed)}"]
                                   if changed else [])))
    if skipped:
        raise UsageError(f"made before the stable view, not compared: {', '.join(skipped)}")
    return 0


def _jobids(ws, refs):
    """The job ids to verify, in the order given (or build order)."""
    if not refs:
        outcomes = survey(ws, graph.select_targets(ws.recipe, []))
        return [o.jobid for o in outcomes.values() if o.state == "fresh"]
    return [jobref.from_path(ws, ref)[0] if jobref.is_path(ws, ref)
            else jobref.resolve(ws, ref, current_job) for ref in refs]


def _print(result):
    outcome = result.outcome
    if result.changed:
        print(f"changed  {result.jobid}: cannot compare, {result.changed.replace('run exmake', 'run verify')}")
        return
    if outcome.state != "built":
        print(f"failed   {result.jobid}: ran again and failed: {outcome.detail.get('reason')}")
        print(f"         kept in {show_path(result.scratch)}")
        return
    print(f"{'same' if result.reproducible else 'DIFFERS':<8} {result.jobid}  "
          f"({result.same} output{'s' if result.same != 1 else ''} identical, "
          f"ran again as {outcome.jobid} in {outcome.duration:.2f}s)")
    for path, recorded, now in result.differences:
        what = "missing in the re-run" if now is None else "new in the re-run" if recorded is None \
            else f"{recorded[:22]} recorded, {now[:22]} now"
        print(f"  differs  {path}  ({what})")
    if result.scratch:
        print(f"         the re-run is kept in {show_path(result.scratch)}")


def _json(result):
    return {"reproducible": result.reproducible,
            "state": "changed" if result.changed else result.outcome.state,
            "reason": result.changed or (result.outcome.detail.get("reason") if result.outcome.detail else None),
            "same": result.same, "scratch": result.scratch,
            "differences": [{"path": p, "recorded": a, "now": b} for p, a, b in result.differences]}
