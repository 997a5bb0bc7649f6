"""The processes of a job, end to end: time limits, stopping, descriptors,
environment, pid reuse, interrupts while jobs start, tracebacks (issue 10)."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import REPO, pid_alive, running_dirs, wait_for
from exmake.fs.locks import is_locked


def post_of(project, jobid):
    return json.loads((project.root / "work" / jobid / "post.json").read_text())


def building_dir(project, name):
    return next(iter(running_dirs(project.root, f"{name}-*")), None)


# -- time limit (defect 2) ---------------------------------------------------

def test_job_exiting_0_on_sigterm_at_its_time_limit_fails_and_is_never_reused(project):
    project.recipe("""\
        jobs:
          slow:
            run: "trap 'echo partial > out.txt; exit 0' TERM; sleep 30 & wait"
            resources: {time: 1s}
        """)
    result = project.run("--json", expect=1)
    job = json.loads(result.out)["jobs"]["slow"]
    assert job["state"] == "failed"
    post = post_of(project, job["jobid"])
    assert post["result"] == "FAILURE"
    assert post["reason"] == "time limit of 1s exceeded"
    again = json.loads(project.run("--json", expect=1).out)["jobs"]["slow"]
    assert again["state"] == "failed" and again["jobid"] != job["jobid"]


def test_job_ignoring_sigterm_is_killed_after_the_grace_and_exmake_sleeps_meanwhile(project):
    project.recipe("""\
        jobs:
          stubborn:
            run: "trap '' TERM; echo $$ > pid; sleep 60; echo done > out.txt"
            resources: {time: 1s}
        """)
    started = time.monotonic()
    proc = project.popen("--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 1, out
    job = json.loads(out)["jobs"]["stubborn"]
    post = post_of(project, job["jobid"])
    assert post["reason"] == "time limit of 1s exceeded"
    assert post["signal"] == "SIGKILL"   # SIGTERM was ignored; the grace ran out
    assert not pid_alive(int((project.root / "work" / job["jobid"] / "pid").read_text()))
    # Behaviour, not speed: waiting for the job, exmake (and its children)
    # used a small part of the wall time, i.e. it slept instead of spinning.
    cpu = usage.ru_utime + usage.ru_stime
    assert cpu < 0.4 * wall, (cpu, wall)


# -- environment (defect 4) --------------------------------------------------

def test_job_script_env_does_not_remove_exmakes_own_value(project):
    project.write("setenv.py", """\
        import os

        def synthesis(job):
            job.json_save(os.environ["SHARED"], "seen.json")
        """)
    project.recipe("""\
        jobs:
          script:
            method: setenv.py
            env: {SHARED: inner}
          after:
            run: "echo \\"$SHARED\\" > seen.txt"
            deps: [script]
        """)
    result = json.loads(project.run("--json", "-j", "1", env={"SHARED": "outer"}, expect=0).out)
    jobs = result["jobs"]
    assert json.loads(project.read(f"work/{jobs['script']['jobid']}/seen.json")) == "inner"
    assert project.read(f"work/{jobs['after']['jobid']}/seen.txt") == "outer\n"


# -- descriptors (defect 14) -------------------------------------------------

def test_forked_job_script_does_not_hold_another_jobs_key_lock(project):
    project.write("slow.py", """\
        import time

        def synthesis(job):
            open("started", "w").close()
            time.sleep(30)
        """)
    project.recipe("""\
        jobs:
          bad:
            run: "exit 3"
          slow:
            method: slow.py
        """)
    proc = project.popen("-k", "-j", "2", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (project.root / "work/bad-1/post.json").exists())
        wait_for(lambda: building_dir(project, "slow") and (building_dir(project, "slow") / "started").exists())
        key = json.loads(project.read("work/bad-1/setup.json"))["key"]
        # bad has ended; once it is indexed (exmake.ledger's group commit, a
        # fraction of a second) nothing may hold its key (a second build of it
        # would wait for the unrelated job script otherwise, which sleeps 30 s).
        wait_for(lambda: not is_locked(str(project.root / "work/.exmake/locks" / key)), timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_a_daemon_a_finished_job_left_running_does_not_hold_its_key(project):
    """Second review of issue 10: the key lock's descriptor reached a daemon the job
    started (`setsid ... &`); after the job ended the daemon still held the key,
    and the next build of it waited silently for as long as the daemon lived."""
    project.recipe('jobs:\n  serve:\n    run: "setsid sleep 60 >/dev/null 2>&1 </dev/null & echo $! > pid; '
                   'sleep 0.5; echo ok > out.txt"\n')  # the sleep: setsid runs before the job ends
    project.run(expect=0)
    daemon = int(project.read("work/serve-1/pid"))
    try:
        assert pid_alive(daemon)
        key = json.loads(project.read("work/serve-1/setup.json"))["key"]
        assert not is_locked(str(project.root / "work/.exmake/locks" / key))
        again = project.run("-B", "serve", timeout=30, expect=0)
        assert "built" in again.out
    finally:
        os.kill(daemon, signal.SIGKILL)


# -- pid reuse (defect 6) ----------------------------------------------------

def _spawn_with_pid(pid):
    """Start a process-group leader that gets `pid` if the kernel lets us
    choose (root, /proc/sys/kernel/ns_last_pid); else whatever pid comes."""
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(pid - 1))
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


@pytest.mark.skipif(not os.access("/proc/sys/kernel/ns_last_pid", os.W_OK),
                    reason="needs to choose the next pid (root)")
def test_a_finished_slices_reused_pid_is_never_signalled(project):
    project.recipe("""\
        jobs:
          sliced:
            run: "if [ {sliceno} = 0 ]; then echo $$ > pid0; else while [ ! -e go ]; do sleep 0.05; done; fi"
            slices: 2
        """)
    proc = project.popen("--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    victim = None
    try:
        building = wait_for(lambda: building_dir(project, "sliced"))
        pid0 = int(wait_for(lambda: (building / "pid0").exists() and (building / "pid0").read_text().strip()))
        wait_for(lambda: not pid_alive(pid0))
        time.sleep(0.5)  # time for exmake to notice the slice's end
        # A stranger's process group with slice 0's pid, if the pid is free
        # (it is not while exmake keeps the slice's leader unreaped).
        for _ in range(5):
            victim = _spawn_with_pid(pid0)
            if victim.pid == pid0 or os.path.exists(f"/proc/{pid0}"):
                break
            victim.kill()
            victim.wait()
        (building / "go").touch()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        time.sleep(0.2)
        assert victim.poll() is None, "exmake signalled a process group that was not its own"
    finally:
        if proc.poll() is None:
            proc.kill()
        if victim is not None:
            victim.kill()
            victim.wait()


# -- interrupts while jobs start (defects 5 and 29) --------------------------

# Stretches one step of starting a job, in the real exmake, so that a signal
# lands inside it for sure: `STALL_AT` names the step, the stalled process
# touches `stalled` in the project when it is there.
STALL_HOOK = """\
import os, time

def _stall():
    open(os.path.join(os.environ["STALL_DIR"], "stalled"), "w").close()
    time.sleep(2)

if os.environ.get("STALL_AT") == "setup":
    import exmake.fs.atomic as atomic
    _write_json = atomic.write_json
    def write_json(path, *args, **kwargs):
        _write_json(path, *args, **kwargs)
        if path.endswith("setup.json"):
            _stall()
    atomic.write_json = write_json
elif os.environ.get("STALL_AT") == "started":
    import exmake.report as report
    for _cls in vars(report).values():
        if isinstance(_cls, type) and hasattr(_cls, "job_started"):
            _started = _cls.job_started
            def job_started(self, *args, _started=_started):
                _started(self, *args)
                _stall()
            _cls.job_started = job_started
"""


def stalled_env(project, at):
    hooks = project.root.parent / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(STALL_HOOK)
    return {"PYTHONPATH": f"{hooks}{os.pathsep}{REPO}", "STALL_AT": at, "STALL_DIR": str(project.root)}


START_RECIPE = """\
jobs:
  slow:
    run: "echo $$ > {root}/pid; sleep 30"
"""


@pytest.mark.parametrize("sig,at", [(signal.SIGTERM, "setup"), (signal.SIGINT, "started")])
def test_signal_while_a_job_starts_leaves_nothing_half_made_and_no_process(project, sig, at):
    project.recipe(START_RECIPE.format(root=project.root))
    proc = project.popen(stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=stalled_env(project, at))
    wait_for(lambda: (project.root / "stalled").exists())
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    written = project.read("pid").strip() if (project.root / "pid").exists() else ""
    if written:  # (empty: the job was stopped between creating the file and writing to it)
        job_pid = int(written)
        wait_for(lambda: not pid_alive(job_pid), timeout=5)
    assert list((project.root / "work/.exmake/building").iterdir()) == []
    assert project.job_dirs("slow") == []


def test_second_ctrl_c_during_cancellation_still_stops_every_job(project):
    project.recipe("""\
        jobs:
          a:
            run: "trap '' TERM INT; echo $$ > pid; sleep 60"
          b:
            run: "trap '' TERM INT; echo $$ > pid; sleep 60"
        """)
    proc = project.popen("-j", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pids = []
    for name in ("a", "b"):
        pidfile = wait_for(lambda: building_dir(project, name) and (building_dir(project, name) / "pid").exists()
                           and building_dir(project, name) / "pid")
        pids.append(int(wait_for(lambda: pidfile.read_text().strip())))
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # inside the grace exmake gives the SIGTERM-ignoring jobs
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    for pid in pids:
        wait_for(lambda: not pid_alive(pid), timeout=5)
    assert list((project.root / "work/.exmake/building").iterdir()) == []
    assert project.job_dirs() == []


# -- word splitting (defect 19) ----------------------------------------------

def test_direct_exec_keeps_a_no_break_space_inside_a_word_as_bash_does(project):
    command = "echo a\u00a0b c"   # no shell syntax: executed directly
    project.recipe(f"""\
        jobs:
          nbsp:
            run: "{command}"
        """)
    result = json.loads(project.run("--json", expect=0).out)
    out = project.read(f"work/{result['jobs']['nbsp']['jobid']}/stdout.txt")
    expected = subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout
    assert out == expected == "a\u00a0b c\n"


# -- tracebacks (defect 25) --------------------------------------------------

FAILING_SCRIPT = '''\
def analysis(sliceno):
    if sliceno == 1:
        fail_here()


def fail_here():
    raise ValueError("bad slice")


def synthesis(job):
    raise RuntimeError("bad synthesis")
'''


@pytest.mark.parametrize("stage", ["analysis", "synthesis"])
def test_job_script_traceback_shows_the_scripts_frames_only(project, stage):
    script = FAILING_SCRIPT if stage == "analysis" else FAILING_SCRIPT.replace("sliceno == 1", "sliceno == -1")
    project.write("fails.py", script, dedent=False)
    project.recipe("slices: 2\njobs:\n  fails:\n    method: fails.py\n")
    result = project.run("--json", expect=1)
    post = post_of(project, json.loads(result.out)["jobs"]["fails"]["jobid"])
    text = post["traceback"]
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "fails.py" in lines[1], text
    assert "methodrun.py" not in text and "workers.py" not in text and "process.py" not in text
    assert not any(set(line.strip()) <= {"^", "~"} and line.strip() for line in lines), text
    log = "stderr.1.txt" if stage == "analysis" else "stderr.txt"
    assert "methodrun.py" not in project.read(f"work/{post['jobid']}/{log}")

    full = project.run("--json", "-B", env={"EXMAKE_TRACEBACK": "full"}, expect=1)
    post = post_of(project, json.loads(full.out)["jobs"]["fails"]["jobid"])
    assert "methodrun.py" in post["traceback"] and "fails.py" in post["traceback"]
    verbose = project.run("--json", "-B", "-v", expect=1)
    post = post_of(project, json.loads(verbose.out)["jobs"]["fails"]["jobid"])
    assert "methodrun.py" in post["traceback"] and "fails.py" in post["traceback"]


def test_release_of_a_process_already_reaped_does_not_raise(tmp_path):
    """Review of issue 13: a Ctrl-C landing between release()'s wait4 and its
    bookkeeping made the cancel reap again: ECHILD, exit 1, and the jobs after
    it were never stopped. Reaping again must be harmless."""
    from exmake.process import Process
    p = Process.spawn(["true"], str(tmp_path), dict(os.environ), str(tmp_path / "out"), str(tmp_path / "err"))
    os.wait4(p.pid, 0)  # what the interrupted release had already done
    p.release()
    assert p.reaped and p.returncode is not None
    p.release()  # and again: nothing


def test_one_tasks_trouble_on_cancel_does_not_leave_the_others_running():
    from exmake.schedule import Scheduler

    class Task:
        def __init__(self, fails):
            self.fails, self.cancelled = fails, False

        def cancel(self):
            self.cancelled = True
            if self.fails:
                raise ChildProcessError(10, "No child processes")

    tasks = [Task(True), Task(False), Task(False)]
    with pytest.raises(ChildProcessError):
        Scheduler._cancel_all(tasks)
    assert [t.cancelled for t in tasks] == [True, True, True]
