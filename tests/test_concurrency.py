"""Two and three exmake processes on one workdir at once: every job key runs
exactly once, every build succeeds, and the log holds every build."""

import os
import signal
import subprocess
import time

import pytest

# Each job notes that it ran in $RUNS_LOG, a file outside the recipe's inputs
# (an input that jobs append to would change every key).
RECIPE = """\
jobs:
  base:
    run: "echo base >> $RUNS_LOG; sleep 0.5; echo base > out"
  left:
    run: "echo left >> $RUNS_LOG; sleep 0.3; cat {deps.base}/out > out"
    deps: [base]
  right:
    run: "echo right >> $RUNS_LOG; sleep 0.3; cat {deps.base}/out > out"
    deps: [base]
  sliced:
    run: "echo sliced.{sliceno} >> $RUNS_LOG; sleep 0.3; echo {sliceno} > part"
    slices: 2
    deps: [base]
  top:
    run: "echo top >> $RUNS_LOG; cat {deps.left}/out {deps.right}/out > out"
    deps: [left, right]
"""


@pytest.mark.parametrize("targets", [
    [["top"], ["top"]],
    [["top"], ["left", "sliced"], ["right"]],
    [[], ["top"], ["sliced", "base"]],
])
def test_concurrent_builds_run_each_key_once(project, targets):
    project.recipe(RECIPE)
    log = project.root / "runs.log"
    env = {"RUNS_LOG": str(log)}
    procs = [project.popen(*t, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for t in targets]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(code == 0 for _, _, code in results), results
    runs = sorted(log.read_text().split())
    needed = {"base"} | {n for t in targets for n in (t or ["top", "sliced"])} | (
        {"left", "right"} if any("top" in t or not t for t in targets) else set())
    expected = sorted(n for n in needed if n != "sliced") + (
        ["sliced.0", "sliced.1"] if "sliced" in needed else [])
    assert runs == sorted(expected), results
    entries = project.run("urd", "default").out.splitlines()
    assert len(entries) == len(targets)
    assert all("SUCCESS" in e for e in entries)


def test_a_lock_held_by_a_killed_build_never_blocks(project):
    project.recipe('jobs:\n  slow: {run: "sleep 30"}\n')
    proc = project.popen(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    building = project.root / "work/.exmake/building"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (building.exists() and any(building.iterdir())):
        time.sleep(0.05)
    job_dir = project.root / "work" / next(building.iterdir()).name  # a job runs in place
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _cwd(p) == str(job_dir)]
    proc.kill()
    proc.wait()
    for pid in pids:  # the orphaned job too: a machine that went down
        os.killpg(pid, signal.SIGKILL)
    time.sleep(0.3)
    project.recipe('jobs:\n  slow: {run: "echo done > x"}\n')
    started = time.monotonic()
    project.run(expect=0, timeout=30)
    assert time.monotonic() - started < 10


def _cwd(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None

