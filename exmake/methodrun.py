"""Running a job script inside its forked job process.

`run_method(...)` is the body of the child exmake forks for a method job. It
sends its output to the job directory's log files, imports the script,
runs `prepare` once, forks one worker per slice for `analysis(sliceno)`
(after prepare, so `prepare_res` is shared copy-on-write), runs `synthesis`
on the results in slice order, saves the job's result, and leaves
`.runner.json` for the parent to fold into post.json:

    {"result": "SUCCESS" | "FAILURE", "exception": str, "traceback": str,
     "slice": failing slice or null, "stage": failing stage or null,
     "timings": {"prepare": s, "analysis": s, "synthesis": s, "slices": [s, ...],
                 "chunking": s (a chunked job)},
     "slice_usage": [{"peak_rss_bytes", "user_s", "system_s", "wall_s"}, ...],
     "chunks": a chunked job's counts, as post.json has them (exmake.fs.records),
     "subjobs": [{"name", "jobid", "path", "key", "state"}, ...] (see exmake.jobapi)}

A job with `chunks:` (a ChunkPlan) runs analysis_chunk(lines, ...) instead
of analysis: once per chunk of its chunked input (exmake.chunks) that the
chunk cache (exmake.chunkcache) has no result for, those spread over its
slices; synthesis gets every chunk's result in input order as `chunk_res`.

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

import copy
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
PROGRESS_COUNT = ".progress.count"   # a byte appended per chunk computed, by any slice
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


class ChunkPlan:
    """What a chunked job's runner needs (exmake.chunks, exmake.chunkcache).

    input      the chunked input's name (its path is `inputs[input]`)
    size       the target chunk size in bytes
    cache      the chunk cache directory, or None to compute every chunk
               and store none (`exmake verify`: a re-run must really re-run)
    base       the job's chunk base key (chunkcache.base_key)
    hints      what names this job's hints (job name and input)
    """

    __slots__ = ("input", "size", "cache", "base", "hints")

    def __init__(self, input, size, cache, base, hints):
        self.input, self.size, self.cache, self.base, self.hints = input, size, cache, base, hints


def run_method(script_path, search_dirs, building, jobid, options, inputs, deps, slices,
               module_name=None, chunks=None):
    """Run one method job in this (forked) process; returns the exit status.
    `chunks`: a ChunkPlan for a job with `chunks:`, else None."""
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
        result = _stages(module, given, building, timings, record, chunks)
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
    for name in (".progress", PROGRESS_COUNT):
        try:
            os.unlink(os.path.join(building, name))
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


def _parameters(function):
    code = function.__code__
    return code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]


def _call(function, available):
    return function(**{name: available[name] for name in _parameters(function) if name in available})


def _stages(module, given, building, timings, record, chunks=None):
    prepare, analysis, synthesis = (getattr(module, n, None) for n in ("prepare", "analysis", "synthesis"))
    result = None
    record["stage"] = "prepare"
    started = time.monotonic()
    if prepare:
        result = given["prepare_res"] = _call(prepare, given)
    given.setdefault("prepare_res", None)
    timings["prepare"] = round(time.monotonic() - started, 6)
    if chunks:
        record["stage"] = "analysis_chunk"
        started = time.monotonic()
        given["chunk_res"] = _chunk_stage(module.analysis_chunk, given, chunks, building, timings, record)
        timings["analysis"] = round(time.monotonic() - started, 6)
    elif analysis:
        record["stage"] = "analysis"
        started = time.monotonic()

        def work(sliceno):
            job = given["job"]
            sliced = Job(job.path, job.jobid, job.inputs, job.slices, sliceno)
            return _call(analysis, {**given, "job": sliced, "sliceno": sliceno})

        def setup_child(sliceno):
            redirect_output(building, f"stdout.{sliceno}.txt", f"stderr.{sliceno}.txt")

        def on_done(count):  # for the progress bar of the exmake that started us
            write_progress(building, count, given["slices"])

        rusages = {}
        result, timings["slices"] = run_slices(given["slices"], work, setup_child, on_done,
                                               format_failure=user_traceback, rusages=rusages)
        record["slice_usage"] = [usage_record(rusages[n], seconds)
                                 for n, seconds in enumerate(timings["slices"])]
        given["analysis_res"] = result
        timings["analysis"] = round(time.monotonic() - started, 6)
    given.setdefault("analysis_res", None)
    given.setdefault("chunk_res", None)
    if synthesis:
        record["stage"] = "synthesis"
        started = time.monotonic()
        result = _call(synthesis, given)
        timings["synthesis"] = round(time.monotonic() - started, 6)
    return result


class ChunkChanged(Exception):
    """The chunked input changed between chunking and computing a chunk."""


def write_progress(building, done, total, unit="slices"):
    """`.progress` ("DONE TOTAL UNIT"), read by exmake.jobrun for the progress bar."""
    tmp = os.path.join(building, f".progress.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(f"{done} {total} {unit}\n")
    os.rename(tmp, os.path.join(building, ".progress"))


def _chunk_stage(analysis_chunk, given, plan, building, timings, record):
    """chunk_res: analysis_chunk's result for every chunk of the chunked input,
    in input order; the chunk cache's where it has them, the rest computed in
    parallel in the job's slices (and stored)."""
    from exmake import chunkcache
    path = given["inputs"][plan.input]
    cap = chunkcache.cap_bytes()
    cache = chunkcache.ChunkCache(plan.cache) if plan.cache and cap else None  # a cap of 0 keeps nothing
    pieces, keys = _chunk_keys(analysis_chunk, given, plan, path, cache, timings)
    # Computing starts first, for the chunks with no entry; the others are
    # loaded while the slices compute (a fork before the heap grows, too).
    # One that fails its check on load (torn, evicted meanwhile) is computed
    # here, after them.
    missing, stored = {}, {}
    for key, piece in zip(keys, pieces):
        if key in missing or key in stored:
            continue
        if cache and os.path.exists(cache.path(key)):
            stored[key] = piece
        else:
            missing[key] = piece
    results, late = {}, {}

    def load():
        for key, piece in stored.items():
            found, value = cache.load(key)
            if found:
                results[key] = value
            else:
                late[key] = piece

    done = len(pieces) - sum(k in missing for k in keys)  # for the progress bar
    write_progress(building, done, len(pieces), "chunks")
    computed = _compute_chunks(analysis_chunk, given, path, missing, cache, building, len(pieces), done,
                               timings, record, load)
    if late:  # rare: computed in this process, one by one
        computed.update(_compute_chunks(analysis_chunk, {**given, "slices": 1}, path, late, cache, building,
                                        len(pieces), done, {}, {}, None, fork=False))
    results.update(computed)
    reused = sum(key not in computed for key in keys)
    record["chunks"] = {"input": plan.input, "size": plan.size, "total": len(pieces), "reused": reused,
                        "computed": len(pieces) - reused, "bytes": pieces[-1].end if pieces else 0,
                        "computed_bytes": sum(len(p) for k, p in zip(keys, pieces) if k in computed)}
    if cache:
        cache.evict(cap)
    # Equal chunks have one result; each position gets its own object, as each
    # slice of a plain analysis does (a synthesis that adds into chunk_res[0]
    # must not count a repeated chunk twice).
    seen, chunk_res = set(), []
    for key in keys:
        chunk_res.append(copy.deepcopy(results[key]) if key in seen else results[key])
        seen.add(key)
    return chunk_res


def _chunk_keys(analysis_chunk, given, plan, path, cache, timings):
    """The chunks of the chunked input (hints from the cache, refreshed) and
    their cache keys."""
    from exmake import chunkcache
    from exmake.chunks import Sizes, chunk_file
    sizes = Sizes(plan.size)
    started = time.monotonic()
    hints = cache.load_hints(plan.hints, sizes.ident()) if cache else None
    pieces = chunk_file(path, plan.size, hints)
    if cache:  # the size that was chunked, not the file's now: a growing log's last chunk may end mid-line
        cache.save_hints(plan.hints, sizes.ident(), pieces[-1].end if pieces else 0, pieces)
    timings["chunking"] = round(time.monotonic() - started, 6)
    # The chunked input's path is what analysis_chunk may see of it besides its
    # lines (`inputs.X`): part of what every chunk's result depends on.
    base = chunkcache.chunk_key(plan.base, "path:" + str(path))
    if "prepare_res" in _parameters(analysis_chunk):
        # prepare may have read anything (the job's id, the slice count): what
        # it returned is part of what every chunk's result depends on.
        from exmake.fs.hashing import hash_bytes
        from exmake.jobapi import stable_dumps
        base = chunkcache.chunk_key(base, hash_bytes(stable_dumps(given["prepare_res"])))
    return pieces, [chunkcache.chunk_key(base, piece.digest) for piece in pieces]


def _compute_chunks(analysis_chunk, given, path, missing, cache, building, total, reused, timings, record,
                    meanwhile, fork=True):
    """{key: result} of the `missing` chunks ({key: Chunk}), computed in up to
    `slices` forked workers (or here, without `fork`), each storing what it
    computed in the cache; `meanwhile()` runs while they work."""
    if not missing:
        if meanwhile:
            meanwhile()
        return {}
    from exmake.chunks import chunk_lines, read_range
    from exmake.fs.hashing import hash_bytes
    from exmake.jobapi import stable_dumps
    shares = _shares(list(missing.items()), given["slices"])
    counter = os.path.join(building, PROGRESS_COUNT)
    chunk_given = {k: v for k, v in given.items() if k in ("options", "inputs", "deps", "prepare_res")}

    def work(sliceno):
        done = {}
        with open(path, "rb") as f, open(counter, "ab") as count:
            for key, piece in shares[sliceno]:
                data = read_range(f.fileno(), piece.start, piece.end)
                if hash_bytes(data) != piece.digest:  # rewritten since it was chunked: nothing may be stored
                    raise ChunkChanged(f"{path} changed while the job ran (bytes {piece.start}-{piece.end})")
                try:
                    lines = chunk_lines(data)
                    value = _call(analysis_chunk, {**chunk_given, "lines": lines})
                except Exception as exc:
                    if hasattr(exc, "add_note"):
                        exc.add_note(f"in the chunk of bytes {piece.start}-{piece.end} of {path}")
                    raise
                if cache:
                    cache.store(key, stable_dumps(value))
                done[key] = value
                count.write(b".")
                count.flush()
                write_progress(building, reused + os.fstat(count.fileno()).st_size, total, "chunks")
        return done

    if not fork:
        return work(0)

    def setup_child(sliceno):
        redirect_output(building, f"stdout.{sliceno}.txt", f"stderr.{sliceno}.txt")

    rusages = {}
    results, timings["slices"] = run_slices(len(shares), work, setup_child, format_failure=user_traceback,
                                            rusages=rusages, meanwhile=meanwhile)
    record["slice_usage"] = [usage_record(rusages[n], seconds) for n, seconds in enumerate(timings["slices"])]
    return {key: value for done in results for key, value in done.items()}


def _shares(items, slices):
    """`items` ([(key, Chunk)]) dealt to at most `slices` workers, balanced by
    bytes (largest first, each to the least loaded)."""
    count = max(1, min(slices, len(items)))
    shares, loads = [[] for _ in range(count)], [0] * count
    for item in sorted(items, key=lambda item: -len(item[1])):
        n = loads.index(min(loads))
        shares[n].append(item)
        loads[n] += len(item[1])
    return shares


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
