"""Ctrl-C and SIGTERM mid-build: exit 130, no job left running, nothing half-done,
and the next build completes correctly."""

import json
import os
import signal
import subprocess
import time

from conftest import pid_alive, running_dirs, wait_for

RECIPE = """\
jobs:
  slow:
    run: "echo $$ > pid; echo started > marker; sleep 30; echo done > out.txt"
  quick:
    run: "echo quick > out.txt"
  after:
    run: "cat {deps.slow}/out.txt > copy.txt"
    deps: [slow]
"""



def building_marker(project):
    return next((d / "marker" for d in running_dirs(project.root, "slow-*") if (d / "marker").exists()), None)



def interrupt_mid_build(project, sig):
    project.recipe(RECIPE)
    proc = project.popen("-j", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    marker = wait_for(lambda: building_marker(project))
    job_pid = int((marker.parent / "pid").read_text())
    started = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 5
    return proc.returncode, out, err, job_pid


def test_sigint_exits_130_and_kills_the_job(project):
    code, out, err, job_pid = interrupt_mid_build(project, signal.SIGINT)
    assert code == 130, (out, err)
    assert "interrupted" in err
    wait_for(lambda: not pid_alive(job_pid), timeout=5)
    # Nothing of the interrupted job looks finished.
    assert list((project.root / "work/.exmake/building").iterdir()) == []
    assert project.job_dirs("slow") == []
    assert not (project.root / "work/slow-LATEST").exists()


def test_sigterm_is_handled_like_sigint(project):
    code, _, err, job_pid = interrupt_mid_build(project, signal.SIGTERM)
    assert code == 130, err
    wait_for(lambda: not pid_alive(job_pid), timeout=5)


def test_next_build_after_interrupt_completes_correctly(project):
    interrupt_mid_build(project, signal.SIGINT)
    project.recipe(RECIPE.replace("sleep 30", "sleep 0.1"))
    result = project.run("--json", expect=0)
    jobs = json.loads(result.out)["jobs"]
    assert jobs["slow"]["state"] == "built"
    assert project.read(f"work/{jobs['after']['jobid']}/copy.txt") == "done\n"


def test_interrupted_json_reports_interrupted(project):
    project.recipe(RECIPE)
    proc = project.popen("--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: building_marker(project))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert json.loads(out)["status"] == "INTERRUPTED"


def test_sigkilled_build_leaves_nothing_reusable_and_is_cleaned_up(project):
    project.recipe(RECIPE)
    proc = project.popen(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = wait_for(lambda: building_marker(project))
    job_pid = int((marker.parent / "pid").read_text())
    proc.kill()
    proc.wait()
    os.killpg(job_pid, signal.SIGKILL)  # the orphaned job, as a reboot would
    wait_for(lambda: not pid_alive(job_pid), timeout=5)
    project.recipe(RECIPE.replace("sleep 30", "sleep 0.1"))
    project.run(expect=0)
    assert list((project.root / "work/.exmake/building").iterdir()) == []
    for jobid in project.job_dirs("slow"):
        post = project.root / "work" / jobid / "post.json"
        assert post.exists() or not any((project.root / "work" / jobid).iterdir())
