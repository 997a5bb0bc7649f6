"""Running a job script inside its forked job process.

`run_method(...)` is the body of the child exmake forks for a method job. It
sends its output to the job directory's log files, imports the script,
runs `prepare` once, forks one worker per slice for `analysis(sliceno)`
(after prepare, so `prepare_res` is shared copy-on-write), runs `synthesis`
on the results in slice order, saves the job's result, and leaves
`.runner.json` for the parent to fold into post.json:

    {"result": "SUCCESS" | "FAILURE", "exception": str, "traceback": str,
     "slice": failing slice or null, "stage": failing stage or null,
     "timings": {"prepare": s, "analysis": s, "synthesis": s, "slices": [s, ...]},
     "slice_usage": [{"peak_rss_bytes", "user_s", "system_s", "wall_s"}, ...],
     "subjobs": [{"name", "jobid", "path", "key", "state"}, ...] (see exmake.jobapi)}

A job's memory limit is not set here: the runner was started inside the
job's memory cgroup, or is sampled from /proc (exmake.usage), and its slice
workers inherit either. (RLIMIT_AS was used once; it limits address space,
so a JVM or a numpy import could not start under a modest `mem:`.)

Tracebacks (in that record, so in post.json and `exmake show`, and in the
job's stderr logs) start at the job script's own frames: the frames of
exmake and of Python's import machinery that lead to the script are left
out. Set EXMAKE_TRACEBACK=full in exmake's environment to keep them (when
the failure is exmake's own, the frames shown are not the script's).
"""

import importlib
import importlib.util
import json
import os
import sys
import time
import traceback

from exmake.jobapi import RESULT_NAME, Job, JobDir, Namespace, take_subjobs
from exmake.slicer.workers import SliceFailed, run_slices
from exmake.usage import usage_record

RUNNER_RECORD = ".runner.json"
TRACEBACK_ENV = "EXMAKE_TRACEBACK"   # "full": keep exmake's own frames
EXMAKE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def redirect_output(directory, stdout_name, stderr_name):
    """Point fds 1 and 2 (and sys.stdout/err) at log files in `directory`."""
    for fd, name in ((1, stdout_name), (2, stderr_name)):
        target = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)


def run_method(script_path, search_dirs, building, jobid, options, inputs, deps, slices,
               module_name=None):
    """Run one method job in this (forked) process; returns the exit status."""
    os.chdir(building)
    redirect_output(building, "stdout.txt", "stderr.txt")
    timings, record = {}, {"result": "FAILURE", "slice": None, "stage": "import"}
    try:
        module = importlib.import_module(module_name) if module_name \
            else _import_script(script_path, search_dirs)
        job = Job(building, jobid, inputs, slices)
        given = {"job": job, "options": options, "inputs": Namespace(inputs),
                 "deps": Namespace({k: _job_dirs(p) for k, p in deps.items()}),
                 "slices": slices}
        result = _stages(module, given, building, timings, record)
        job.save(result, RESULT_NAME)
        record.update(result="SUCCESS", stage=None)
    except SliceFailed as failure:
        record.update(exception=failure.reason, traceback=failure.traceback, slice=failure.sliceno)
        print(f"exmake: slice {failure.sliceno} failed: {failure.reason}", file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - a job's failure is data, not a crash
        text = user_traceback(exc)
        record.update(exception=f"{type(exc).__name__}: {exc}", traceback=text)
        sys.stderr.write(text)
    record["timings"] = timings
    record["subjobs"] = take_subjobs(building)  # the children `job.build` ran or reused
    try:
        os.unlink(os.path.join(building, ".progress"))
    except FileNotFoundError:
        pass
    _write_record(building, record)
    return 0 if record["result"] == "SUCCESS" else 1


def user_traceback(exc):
    """The traceback text of `exc` from the first frame that is not exmake's
    (nor the import machinery's), unless EXMAKE_TRACEBACK=full."""
    tb = exc.__traceback__
    if os.environ.get(TRACEBACK_ENV) != "full":
        while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
        if tb is None:  # the failure is in exmake itself: show all of it
            tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _is_ours(filename):
    return filename.startswith(EXMAKE_DIR) or filename.startswith("<frozen importlib")


def _job_dirs(dep):
    """A dependency's JobDir from (its path in the job's view, its job id); a
    fan-in's (`FAMILY@*`) list of them, in value order."""
    if isinstance(dep, list):
        return [JobDir(path, jobid) for path, jobid in dep]
    path, jobid = dep
    return JobDir(path, jobid)


def _import_script(path, search_dirs):
    # In exactly the order exmake.method followed the imports for the key: a
    # directory already on sys.path (the cwd under `python -m`, PYTHONPATH)
    # is moved to the front too, or it would win over the script's own.
    for directory in reversed(search_dirs):
        while directory in sys.path:
            sys.path.remove(directory)
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("exmake_job_script", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _call(function, available):
    code = function.__code__
    names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    return function(**{name: available[name] for name in names if name in available})


def _stages(module, given, building, timings, record):
    prepare, analysis, synthesis = (getattr(module, n, None) for n in ("prepare", "analysis", "synthesis"))
    result = None
    record["stage"] = "prepare"
    started = time.monotonic()
    if prepare:
        result = given["prepare_res"] = _call(prepare, given)
    given.setdefault("prepare_res", None)
    timings["prepare"] = round(time.monotonic() - started, 6)
    if analysis:
        record["stage"] = "analysis"
        started = time.monotonic()

        def work(sliceno):
            job = given["job"]
            sliced = Job(job.path, job.jobid, job.inputs, job.slices, sliceno)
            return _call(analysis, {**given, "job": sliced, "sliceno": sliceno})

        def setup_child(sliceno):
            redirect_output(building, f"stdout.{sliceno}.txt", f"stderr.{sliceno}.txt")

        def on_done(count):  # for the progress bar of the exmake that started us
            tmp = os.path.join(building, ".progress.tmp")
            with open(tmp, "w") as f:
                f.write(f"{count} {given['slices']}\n")
            os.rename(tmp, os.path.join(building, ".progress"))

        rusages = {}
        result, timings["slices"] = run_slices(given["slices"], work, setup_child, on_done,
                                               format_failure=user_traceback, rusages=rusages)
        record["slice_usage"] = [usage_record(rusages[n], seconds)
                                 for n, seconds in enumerate(timings["slices"])]
        given["analysis_res"] = result
        timings["analysis"] = round(time.monotonic() - started, 6)
    given.setdefault("analysis_res", None)
    if synthesis:
        record["stage"] = "synthesis"
        started = time.monotonic()
        result = _call(synthesis, given)
        timings["synthesis"] = round(time.monotonic() - started, 6)
    return result


def _write_record(building, record):
    tmp = os.path.join(building, RUNNER_RECORD + ".tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.rename(tmp, os.path.join(building, RUNNER_RECORD))


def read_record(building):
    """The runner's record, removed from the job directory; None if it never wrote one."""
    path = os.path.join(building, RUNNER_RECORD)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    os.unlink(path)
    return record
