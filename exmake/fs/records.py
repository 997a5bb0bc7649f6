"""A job directory's two records: setup.json and post.json, made and checked here.

setup.json (format 1), written before the job starts:
    {"format": 1, "jobid", "name", "key", "created" (UTC ISO time),
     "step": the canonical step (see exmake.keys),
     "inputs": {local: [[path relative to the recipe, digest], ...]},
     "deps": {local: {"jobid", "outputs": [[path, digest], ...],
              and "workdir" for a job used from another workdir (`reuse_from:`)}},
     "recipe": absolute recipe path,
     "command": a shell job's command as it runs, placeholders expanded to
                the job's stable view (exmake.view): a string, or a list of
                one per slice; absent for a job script, and in records
                written before it was added (readers must not need it)}

post.json (format 1), written last:
    {"format": 1, "jobid", "result": "SUCCESS" | "FAILURE",
     "exit_code": int or null, "signal": name or null, "reason": str or null,
     "exception": str or null, "traceback": str or null,
     "start", "end" (UTC ISO times), "duration" (seconds),
     "timings": {stage or "slices": seconds or [seconds per slice]},
     "outputs": [[path relative to the job directory, digest], ...],
     "declared_outputs": bool, "stderr_tail": [lines] (on failure),
     "usage": what the job used (absent in records of older exmakes):
        {"peak_rss_bytes": int (its processes' resident memory together),
         "user_s", "system_s": CPU seconds (wait4's, each process tree's),
         "wall_s", "cores": the cores it held,
         "mem_limit_mib", "limited_by": "cgroup" | "sampling" (with `mem:`),
         "slices": [{"peak_rss_bytes", "user_s", "system_s", "wall_s"}, ...]
                   (sliced jobs)},
     "subjobs": the children a job script ran or reused with `job.build`
        (absent when none): [{"name", "jobid", "path", "key",
        "state": "built" | "reused"}, ...] (see exmake.jobapi),
     "chunks": a chunked job's chunks (absent for other jobs):
        {"input": the chunked input's name, "size": target chunk bytes,
         "total": chunks, "reused": results found in the chunk cache,
         "computed": total - reused, "bytes": the input's size,
         "computed_bytes": the bytes of the chunks computed}}

A record is checked when it is read: one of another format, or missing a
field a reader relies on, reads as None, exactly like a missing one, so a
job directory written by another exmake version (or damaged by hand) is
never reused; it is run again instead.
"""

from datetime import datetime, timezone

FORMAT = 1
SETUP = "setup.json"
POST = "post.json"
RESULTS = ("SUCCESS", "FAILURE")


def utc_now():
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def make_setup(name, key, step, inputs, deps, recipe_path, command=None):
    """The setup record of a would-be job (jobid and created are added when it starts)."""
    setup = {"format": FORMAT, "name": name, "key": key, "step": step, "inputs": inputs,
             "deps": deps, "recipe": recipe_path}
    if command is not None:
        setup["command"] = command
    return setup


def make_post(jobid, ok, exit_code, signal_name, reason, record, start, duration, timings, outputs,
              declared_outputs, stderr_tail=None, usage=None):
    """The post record of a finished job. `record`: what a job-script runner
    reported (exception, traceback), or None."""
    post = {
        "format": FORMAT, "jobid": jobid, "result": "SUCCESS" if ok else "FAILURE",
        "exit_code": exit_code, "signal": signal_name, "reason": reason,
        "exception": record.get("exception") if record else None,
        "traceback": record.get("traceback") if record else None,
        "start": start, "end": utc_now(), "duration": round(duration, 6),
        "timings": timings, "outputs": outputs, "declared_outputs": declared_outputs,
    }
    if not ok:
        post["stderr_tail"] = stderr_tail or []
    if usage is not None:
        post["usage"] = usage
    if record and record.get("subjobs"):  # children a job script built (exmake.jobapi's job.build)
        post["subjobs"] = record["subjobs"]
    if record and record.get("chunks"):
        post["chunks"] = record["chunks"]
    return post


def check_setup(record):
    """`record` if it is a setup record of this format, else None."""
    if not _has(record, {"key": str, "name": str, "step": dict, "inputs": dict, "deps": dict}):
        return None
    return record


def check_post(record):
    """`record` if it is a post record of this format, else None."""
    if not _has(record, {"result": str, "outputs": list}) or record["result"] not in RESULTS:
        return None
    if not all(isinstance(o, list) and len(o) == 2 and all(isinstance(x, str) for x in o)
               for o in record["outputs"]):
        return None
    return record


def _has(record, fields):
    return (isinstance(record, dict) and record.get("format") == FORMAT
            and all(isinstance(record.get(k), t) for k, t in fields.items()))
