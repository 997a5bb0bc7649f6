"""slicer.workers: run_slices forks one worker per slice and collects their results.

These tests fork the pytest process itself. run_slices ends every child with
os._exit, so work functions here stay tiny and never touch pytest.
Failures must kill the other slices at once and leave no child behind.
"""

import glob
import os
import signal
import time

import pytest

from exmake.slicer import workers
from exmake.slicer.workers import SliceFailed

SLEEP_S = 30  # what the surviving slices would take if they were not killed


@pytest.fixture
def run_slices(tmp_path, monkeypatch):
    """run_slices(n, work, setup_child=None), run inside the empty tmp_path
    (results travel through pipes: tmp_path must stay empty)."""
    monkeypatch.chdir(tmp_path)
    return workers.run_slices


def children():
    """Pids of the live or zombie child processes of this process."""
    pids = set()
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        if int(text.rsplit(")", 1)[1].split()[1]) == os.getpid():
            pids.add(int(text.split()[0]))
    return pids


def test_results_come_back_in_slice_order(run_slices):
    def work(sliceno):
        time.sleep(0.05 * (4 - sliceno))  # the last slice finishes first
        return {"slice": sliceno}

    results, _ = run_slices(4, work)
    assert results == [{"slice": i} for i in range(4)]


def test_each_slice_runs_in_its_own_process(run_slices):
    pids, _ = run_slices(4, lambda sliceno: os.getpid())
    assert len(set(pids)) == 4
    assert os.getpid() not in pids


def test_slices_run_at_the_same_time(run_slices):
    started = time.monotonic()
    run_slices(4, lambda sliceno: time.sleep(0.5))
    assert time.monotonic() - started < 1.5


def test_data_prepared_before_the_call_is_seen_by_children(run_slices):
    prepared = [f"prepared {i}" * 1000 for i in range(3)]
    results, _ = run_slices(3, lambda sliceno: prepared[sliceno])
    assert results == prepared


def test_timings_have_one_entry_per_slice(run_slices):
    _, timings = run_slices(5, lambda sliceno: None)
    assert len(timings) == 5
    assert all(isinstance(t, float) and t >= 0 for t in timings)


def test_setup_child_runs_in_each_child_before_work(run_slices):
    def setup_child(sliceno):
        os.environ["EXMAKE_TEST_SETUP"] = f"set up {sliceno}"

    results, _ = run_slices(3, lambda sliceno: os.environ.get("EXMAKE_TEST_SETUP"), setup_child)
    assert results == [f"set up {i}" for i in range(3)]
    assert "EXMAKE_TEST_SETUP" not in os.environ  # only the children were set up


def test_results_larger_than_a_pipe_buffer_arrive_whole(run_slices):
    results, _ = run_slices(3, lambda sliceno: bytes([sliceno]) * 3_000_000)
    assert results == [bytes([i]) * 3_000_000 for i in range(3)]


def test_no_temp_files_are_left_after_success(run_slices, tmp_path):
    run_slices(3, lambda sliceno: [sliceno] * 10)
    assert list(tmp_path.iterdir()) == []


def exploding_work(sliceno):
    if sliceno == 1:
        raise RuntimeError("boom in slice one")
    time.sleep(SLEEP_S)


def sigkill_work(sliceno):
    if sliceno == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(SLEEP_S)


def exit_work(sliceno):
    if sliceno == 1:
        os._exit(3)
    time.sleep(SLEEP_S)


FAILURES = {
    "raises": (exploding_work, "boom in slice one"),
    "sigkill": (sigkill_work, "killed by SIGKILL"),
    "exit": (exit_work, "exit status 3"),
}


def fail(run_slices, kind):
    """Run 3 slices where slice 1 fails as `kind`; (the SliceFailed, seconds taken)."""
    started = time.monotonic()
    with pytest.raises(SliceFailed) as info:
        run_slices(3, FAILURES[kind][0])
    return info.value, time.monotonic() - started


@pytest.mark.parametrize("kind", FAILURES)
def test_a_failing_slice_is_named_with_its_reason(run_slices, kind):
    failure, _ = fail(run_slices, kind)
    assert failure.sliceno == 1
    assert FAILURES[kind][1] in failure.reason


def test_an_exception_carries_its_traceback(run_slices):
    failure, _ = fail(run_slices, "raises")
    assert "RuntimeError" in failure.reason
    assert "exploding_work" in failure.traceback


@pytest.mark.parametrize("kind", [k for k in FAILURES if k != "raises"])
def test_a_dead_slice_has_no_traceback(run_slices, kind):
    failure, _ = fail(run_slices, kind)
    assert failure.traceback is None


@pytest.mark.parametrize("kind", FAILURES)
def test_a_failure_kills_the_other_slices_at_once(run_slices, kind):
    _, seconds = fail(run_slices, kind)
    assert seconds < 3


@pytest.mark.parametrize("kind", FAILURES)
def test_no_child_is_left_after_a_failure(run_slices, kind):
    before = children()
    fail(run_slices, kind)
    assert children() == before
    if not before:
        with pytest.raises(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)


def dies_leaving_a_grandchild(sliceno):
    if sliceno == 1:
        if os.fork() == 0:  # a helper process the slice started, still running
            time.sleep(2)
            os._exit(0)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(SLEEP_S)


def test_a_death_is_seen_at_once_even_with_a_grandchild_alive(run_slices):
    started = time.monotonic()
    with pytest.raises(SliceFailed, match="killed by SIGKILL"):
        run_slices(3, dies_leaving_a_grandchild)
    assert time.monotonic() - started < 1.5
