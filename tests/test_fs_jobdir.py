"""exmake.fs.jobdir, exmake.fs.locks and exmake.fs.atomic on real directories and flocks.

Job ids come from a store counter (or, without a store, the highest existing
directory), are claimed with a marker under .exmake/building and mkdir, run
in place, and finished by post.json; LATEST follows successes only. Locks are
flocks, so they die with their holder (proven with SIGKILL).
"""

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from exmake.fs import atomic
from exmake.fs.jobdir import JobDirs
from exmake.fs.locks import KeyLock, is_locked
from exmake.fs.store import Store


@pytest.fixture
def jobdirs(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    return JobDirs(str(workdir))


def post(jobid, result="SUCCESS"):
    return {"format": 1, "jobid": jobid, "result": result, "outputs": []}


def hold_flock(path):
    """A live process holding an exclusive flock on `path`; returns once it is held."""
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("held", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc):
    proc.kill()
    proc.wait()
    proc.stdout.close()


# -- reserve ------------------------------------------------------------------

def test_reserve_counts_up(jobdirs):
    first, building = jobdirs.reserve("count")
    second, _ = jobdirs.reserve("count")
    other, _ = jobdirs.reserve("words")
    assert (first, second, other) == ("count-1", "count-2", "words-1")
    assert os.path.isdir(jobdirs.path("count-1")) and os.listdir(jobdirs.path("count-1")) == []
    assert building == jobdirs.path("count-1")  # a job runs in place
    st = os.lstat(building)  # its marker records the very directory made
    assert open(jobdirs.marker("count-1")).read().split() == [str(st.st_dev), str(st.st_ino)]


def test_reserve_continues_after_existing_dirs(jobdirs):
    os.mkdir(jobdirs.path("count-7"))
    os.mkdir(jobdirs.path("count-x"))       # not a number: ignored
    os.mkdir(jobdirs.path("counter-20"))    # another name: ignored
    assert jobdirs.reserve("count")[0] == "count-8"


def test_same_instance_does_not_reuse_an_abandoned_n(jobdirs):
    jobdirs.reserve("count")
    jobid, building = jobdirs.reserve("count")
    jobdirs.abandon(jobid, building)
    assert jobdirs.reserve("count")[0] == "count-3"


def test_without_store_a_new_instance_reuses_a_removed_n(jobdirs):
    """Without a store N is 1 + the highest existing <name>-N, so a removed top N comes back."""
    jobdirs.reserve("count")
    jobid, building = jobdirs.reserve("count")
    jobdirs.abandon(jobid, building)
    assert JobDirs(jobdirs.workdir).reserve("count")[0] == "count-2"


def test_store_counter_never_reuses_an_indexed_n_once_removed(jobdirs, tmp_path):
    """The counters go to the store with the index rows (exmake.ledger's
    commit): a number the index knew is never handed out again, even after
    its directory was deleted (gc). One that was never indexed (a job killed
    before its batch) is named nowhere durable and may come back."""
    store = Store(str(tmp_path / "lmdb"))
    try:
        first = JobDirs(jobdirs.workdir, lambda: store)
        first.reserve("count")
        jobid, building = first.reserve("count")
        first.abandon(jobid, building)
        assert JobDirs(jobdirs.workdir, lambda: store).reserve("count")[0] == "count-2"  # never indexed
        store.commit([("trace", b"k", jobid.encode())], first.taken)
        assert JobDirs(jobdirs.workdir, lambda: store).reserve("count")[0] == "count-3"
    finally:
        store.close()


def test_store_counter_starts_above_existing_dirs(jobdirs, tmp_path):
    os.mkdir(jobdirs.path("count-7"))
    store = Store(str(tmp_path / "lmdb"))
    try:
        assert JobDirs(jobdirs.workdir, lambda: store).reserve("count")[0] == "count-8"
    finally:
        store.close()


def _reserve_many(workdir, lmdb_dir, barrier, queue):
    store = Store(lmdb_dir) if lmdb_dir else None  # opened after fork, never shared
    jobdirs = JobDirs(workdir, lambda: store)
    barrier.wait()
    queue.put([jobdirs.reserve("job")[0] for _ in range(50)])
    if store:
        store.close()


@pytest.mark.parametrize("with_store", [False, True])
def test_concurrent_reservations_are_distinct(jobdirs, tmp_path, with_store):
    lmdb_dir = str(tmp_path / "lmdb") if with_store else None
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_reserve_many, args=(jobdirs.workdir, lmdb_dir, barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    ids = queue.get(timeout=30) + queue.get(timeout=30)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert sorted(ids, key=lambda j: int(j.split("-")[1])) == [f"job-{n}" for n in range(1, 101)]


# -- finish / abandon -----------------------------------------------------------

def test_finish_success_writes_post_drops_the_marker_and_leaves_latest_to_the_ledger(jobdirs):
    jobid, path = jobdirs.reserve("count")
    atomic.write_json(os.path.join(path, "setup.json"), {"jobid": jobid})
    jobdirs.finish(jobid, path, post(jobid))
    assert not os.path.exists(jobdirs.marker(jobid))
    assert sorted(os.listdir(jobdirs.path(jobid))) == ["post.json", "setup.json"]
    assert jobdirs.read_post(jobid) == post(jobid)
    assert jobdirs.is_success(jobid)
    assert jobdirs.latest("count") is None  # exmake.ledger points at it once it is indexed
    jobdirs.set_latest(jobid)
    assert os.readlink(jobdirs.path("count-LATEST")) == jobid


def test_finish_failure_leaves_latest_alone(jobdirs):
    ok, building = jobdirs.reserve("count")
    jobdirs.finish(ok, building, post(ok))
    jobdirs.set_latest(ok)
    failed, building = jobdirs.reserve("count")
    jobdirs.finish(failed, building, post(failed, "FAILURE"))
    assert jobdirs.read_post(failed)["result"] == "FAILURE"
    assert not jobdirs.is_success(failed)
    assert jobdirs.latest("count") == ok


def test_failure_alone_sets_no_latest(jobdirs):
    jobid, building = jobdirs.reserve("count")
    jobdirs.finish(jobid, building, post(jobid, "FAILURE"))
    assert jobdirs.latest("count") is None


def test_abandon_removes_the_job_and_its_marker(jobdirs):
    jobid, path = jobdirs.reserve("count")
    atomic.write_json(os.path.join(path, "setup.json"), {})
    jobdirs.abandon(jobid, path)
    assert not os.path.exists(path)
    assert not os.path.exists(jobdirs.marker(jobid))


def test_abandon_never_removes_a_finished_job(jobdirs):
    jobid, path = jobdirs.reserve("count")
    jobdirs.finish(jobid, path, post(jobid))
    jobdirs.abandon(jobid, path)
    assert jobdirs.is_success(jobid)


def test_abandon_never_removes_a_directory_its_marker_did_not_record(jobdirs):
    """A kill between the marker and the mkdir: the directory under that name
    (a user's, with `workdir: .`) is not exmake's to remove."""
    os.makedirs(jobdirs.building, exist_ok=True)
    open(jobdirs.marker("photos-2019"), "w").close()
    os.mkdir(jobdirs.path("photos-2019"))
    open(os.path.join(jobdirs.path("photos-2019"), "beach.jpg"), "w").close()
    assert jobdirs.clean_stale() == ["photos-2019"]
    assert os.listdir(jobdirs.path("photos-2019")) == ["beach.jpg"]
    assert not os.path.exists(jobdirs.marker("photos-2019"))


def test_a_kill_between_the_mkdir_and_its_record_leaves_nothing_behind(jobdirs):
    """Review of issue 13: the empty directory stayed for ever (gc too)."""
    os.makedirs(jobdirs.building, exist_ok=True)
    open(jobdirs.marker("x-8"), "w").close()   # the marker, nothing recorded yet
    os.mkdir(jobdirs.path("x-8"))
    assert jobdirs.clean_stale() == ["x-8"]
    assert not os.path.exists(jobdirs.path("x-8")) and os.listdir(jobdirs.building) == []


def test_outputs_intact_reads_every_output_again(jobdirs):
    jobid, path = jobdirs.reserve("count")
    with open(os.path.join(path, "out.txt"), "w") as f:
        f.write("one\n")
    os.symlink("out.txt", os.path.join(path, "link"))
    from exmake.fs.hashing import output_digest
    recorded = {"outputs": [[rel, output_digest(os.path.join(path, rel))] for rel in ("link", "out.txt")]}
    jobdirs.finish(jobid, path, post(jobid))
    assert jobdirs.outputs_intact(jobid, recorded)
    with open(os.path.join(path, "out.txt"), "w") as f:  # what a power cut may leave: same name, other bytes
        f.write("\0\0\0\0")
    assert not jobdirs.outputs_intact(jobid, recorded)
    os.unlink(os.path.join(path, "out.txt"))
    assert not jobdirs.outputs_intact(jobid, recorded)


def test_an_earlier_versions_building_directory_is_still_cleaned(jobdirs):
    os.makedirs(os.path.join(jobdirs.building, "count-4"))
    open(os.path.join(jobdirs.building, "count-4", "setup.json"), "w").close()
    os.mkdir(jobdirs.path("count-4"))  # its empty reservation
    assert jobdirs.clean_stale() == ["count-4"]
    assert not os.path.exists(jobdirs.path("count-4")) and os.listdir(jobdirs.building) == []


# -- clean_stale ---------------------------------------------------------------

def test_clean_stale_without_building_dir(jobdirs):
    assert jobdirs.clean_stale() == []


def test_clean_stale_removes_unlocked_markers_and_their_jobs(jobdirs):
    jobid, path = jobdirs.reserve("count")
    open(os.path.join(path, "half-written"), "w").close()  # a job cut off mid-run
    assert jobdirs.clean_stale() == [jobid]
    assert not os.path.exists(path)
    assert not os.path.exists(jobdirs.marker(jobid))


def test_clean_stale_keeps_jobs_locked_by_a_live_process(jobdirs):
    live, live_path = jobdirs.reserve("count")
    dead, _ = jobdirs.reserve("count")
    holder = hold_flock(jobdirs.marker(live))
    try:
        assert jobdirs.clean_stale() == [dead]
        assert os.path.isdir(live_path) and os.path.exists(jobdirs.marker(live))
    finally:
        stop(holder)


# -- locks ---------------------------------------------------------------------

def test_is_locked(tmp_path):
    path = tmp_path / "l"
    assert not is_locked(str(path))  # missing file
    path.touch()
    assert not is_locked(str(path))
    with KeyLock(str(tmp_path), "l"):
        assert is_locked(str(path))
    assert not is_locked(str(path))


def test_keylock_released_lets_another_acquire(tmp_path):
    first, second = KeyLock(str(tmp_path / "locks"), "k"), KeyLock(str(tmp_path / "locks"), "k")
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)  # flocks conflict across descriptors
    first.release()
    assert second.acquire(blocking=False)
    second.release()


def test_keylock_dies_with_a_killed_holder(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    holder = hold_flock(lock_dir / "key")
    lock = KeyLock(str(lock_dir), "key")
    try:
        assert not lock.acquire(blocking=False)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert lock.acquire(blocking=False)
    finally:
        lock.release()
        stop(holder)


# -- atomic --------------------------------------------------------------------

def test_write_json_leaves_no_temp_file(tmp_path):
    path = tmp_path / "post.json"
    atomic.write_json(str(path), {"b": 1, "a": [1, 2]})
    atomic.write_json(str(path), {"b": 2, "a": []})  # replaces
    assert os.listdir(tmp_path) == ["post.json"]
    text = path.read_text()
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [], "b": 2}


def test_read_json_missing_or_garbage_is_none(tmp_path):
    assert atomic.read_json(str(tmp_path / "nope.json")) is None
    (tmp_path / "bad.json").write_text("{not json")
    assert atomic.read_json(str(tmp_path / "bad.json")) is None


def test_symlink_replaces_existing_link(tmp_path):
    link = str(tmp_path / "count-LATEST")
    os.symlink("count-1", link)
    os.symlink("stale", str(tmp_path / f".tmp-link-{os.getpid()}-count-LATEST"))  # leftover
    atomic.symlink("count-2", link)
    assert os.readlink(link) == "count-2"
    assert os.listdir(tmp_path) == ["count-LATEST"]
