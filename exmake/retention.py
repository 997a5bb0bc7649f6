"""Which job directories `exmake gc` keeps, and removing the rest safely.

Kept, with the first reason that applies:
- the current fresh job of every recipe job (a dry-run survey decides),
- every job a `<name>-LATEST` link or a result symlink points into,
- every job in the newest `keep` entries of each build-log list,
- failed or unfinished directories made since the newest logged build
  (someone may be looking at them),
- and every job a kept job depends on, as its setup.json `deps` records it,
  and every subjob a kept job script built (post.json's `subjobs`),
  transitively. With early cutoff a fresh job can be older than its
  dependency's current job: `count-1` stays fresh after `words-2` wrote the
  same output as `words-1`, and its `{deps.words}` still names `words-1`.
Every other job directory (`<name>-<N>` holding setup.json) directly in
the workdir goes. A
directory is first renamed into `.exmake/trash/` (atomic: no half-deleted
job ever stands under its name), then deleted; a kill mid-way leaves only
trash, which the next gc empties. Nothing outside the workdir is touched.

`exmake verify`'s scratch directories (`.exmake/verify/<jobid>-<pid>/`)
go too, the ones kept on purpose after a difference included, except one
a running verify holds: each verify holds an flock on `<scratch>/.verify.lock`
while it runs (the kernel drops it when verify exits, however it ends).
"""

import os
import shutil

from exmake.fs.jobdir import JOBID_RE, listing
from exmake.fs.locks import KeyLock, is_locked
from exmake.fs.publish import links_into


def directory_bytes(path):
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def plan(ws, keep_entries, survey):
    """({jobid: reason kept}, [jobids to remove]) for the workdir of `ws`.
    `survey()` returns {name: Outcome} of a dry run over every recipe job."""
    workdir = ws.recipe.workdir
    jobids = sorted(e for e in listing(workdir) if ws.jobdirs.is_job_directory(e))
    keep = {}
    for name, outcome in survey().items():
        if outcome.state == "fresh":
            keep.setdefault(outcome.jobid, f"current job of {name}")
    for jobid, link in _linked_jobs(ws):
        keep.setdefault(jobid, f"linked from {link}")
    newest = None
    if ws.store is not None:
        from exmake.urd import Log
        log = Log(ws.store)
        for list_name in log.lists():
            entries = log.entries(list_name)
            for entry in entries[-keep_entries:] if keep_entries else []:
                for job in entry["jobs"].values():
                    if job.get("jobid"):
                        keep.setdefault(job["jobid"], f"in {list_name}/{entry['timestamp']}")
            newest = max(newest or "", entries[-1]["timestamp"]) if entries else newest
    for jobid in jobids:
        if jobid not in keep and not ws.jobdirs.is_success(jobid) and _made_since(ws, jobid, newest):
            keep[jobid] = "failed or unfinished, made since the newest build"
    _keep_dependencies(ws, keep)
    return {j: keep[j] for j in jobids if j in keep}, [j for j in jobids if j not in keep]


def _keep_dependencies(ws, keep):
    """Add to `keep` every job a kept job's setup.json names in `deps`, transitively."""
    todo = list(keep)
    while todo:
        jobid = todo.pop()
        setup = ws.jobdirs.read_setup(jobid) if JOBID_RE.match(jobid) else None
        deps = setup.get("deps") if isinstance(setup, dict) else None
        post = ws.jobdirs.read_post(jobid) if JOBID_RE.match(jobid) else None
        subjobs = [s for s in (post or {}).get("subjobs", []) if isinstance(s, dict)]  # job.build's children
        for dep in [*(deps.values() if isinstance(deps, dict) else ()), *subjobs]:
            dep_jobid = dep.get("jobid") if isinstance(dep, dict) else None
            if isinstance(dep_jobid, str) and dep_jobid not in keep:
                keep[dep_jobid] = f"dependency of {jobid}"
                todo.append(dep_jobid)


def _linked_jobs(ws):
    """(jobid, link) for every LATEST link and every result symlink into the workdir."""
    for entry in listing(ws.recipe.workdir):
        link = os.path.join(ws.recipe.workdir, entry)
        if entry.endswith("-LATEST") and os.path.islink(link):
            yield os.readlink(link), link
    for link, jobid in links_into(ws.recipe.results, ws.recipe.workdir):
        yield jobid, link


def _made_since(ws, jobid, newest):
    """Whether a failed/unfinished job directory is as new as the newest logged build."""
    if newest is None:
        return True
    from datetime import datetime, timezone
    mtime = os.stat(ws.jobdirs.path(jobid)).st_mtime
    made = datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return made >= newest


def remove(ws, jobids):
    """Move each job directory to the trash, then empty it; returns bytes freed."""
    trash = os.path.join(ws.jobdirs.meta, "trash")
    os.makedirs(trash, exist_ok=True)
    freed = 0
    for jobid in jobids:
        path = ws.jobdirs.path(jobid)
        if not ws.jobdirs.is_job_directory(jobid) or os.path.dirname(path) != ws.recipe.workdir:
            continue  # never anything but a job directory right in the workdir
        freed += directory_bytes(path)
        os.rename(path, os.path.join(trash, jobid))
    empty_trash(trash)
    rows = []
    for table in ("trace", "failed"):
        for key, value in ws.store.items(table):
            if value.decode() in jobids:
                rows.append((table, key, None))
    ws.store.put_many(rows)
    return freed


VERIFY_DIR = "verify"  # in <workdir>/.exmake/
VERIFY_LOCK = ".verify.lock"


def hold_verify_scratch(scratch):
    """Make `scratch` afresh (empty) and lock it for a running verify; the KeyLock.
    gc may move an unlocked scratch directory away between making it and
    locking it: then the lock file is no longer at its path, and this starts
    again."""
    while True:
        shutil.rmtree(scratch, ignore_errors=True)
        lock = KeyLock(scratch, VERIFY_LOCK)  # makes the directory
        lock.acquire()
        try:
            if os.stat(lock.path).st_ino == os.fstat(lock.fd).st_ino:
                return lock
        except FileNotFoundError:
            pass
        lock.release()


def collect_verify_scratch(meta, dry_run=False):
    """[(name, bytes)] of the verify scratch directories in `meta` moved to the
    trash (with `dry_run`, that would be), and [name] of those a running verify
    holds, left alone."""
    root, trash = os.path.join(meta, VERIFY_DIR), os.path.join(meta, "trash")
    gone, held = [], []
    for name in listing(root) if os.path.isdir(root) else []:
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        if dry_run:  # look, write nothing (not even a lock file)
            if is_locked(os.path.join(path, VERIFY_LOCK)):
                held.append(name)
            else:
                gone.append((name, directory_bytes(path)))
            continue
        lock = KeyLock(path, VERIFY_LOCK)
        if not lock.acquire(blocking=False):
            held.append(name)
            continue
        try:  # moved while locked: a verify starting now finds its lock file gone and starts again
            size = directory_bytes(path)
            os.makedirs(trash, exist_ok=True)
            os.rename(path, os.path.join(trash, f"verify-{name}-{os.getpid()}-{len(gone)}"))
            gone.append((name, size))
        finally:
            lock.release()
    return gone, held


def empty_trash(trash):
    for entry in listing(trash):
        shutil.rmtree(os.path.join(trash, entry), ignore_errors=True)
