"""Job arrays (issue 13, "Cluster at scale"): a family's jobs go to Slurm as
arrays, in waves under the site's MaxSubmitJobs, polled with one query.

The planning (exmake.arrays) is tested as the pure function it is; the
rest submits real jobs to the local cluster (scripts/local-slurm-start).
Shims in front of sbatch/squeue/scontrol log each call and exec the real
program; the scontrol shim may add a line to the real configuration, as a
site with that limit would answer. In CI (CI=true) a cluster that is down
fails these tests; elsewhere they are skipped with the reason.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import test_backend_slurm
from conftest import exmake_env
from exmake.arrays import ALL, ANY, CORR, TASKS, index_ranges, plan
from exmake.backends.slurm import SlurmBackend, _count, parse_config

slurm = test_backend_slurm.slurm
run, states = test_backend_slurm.run, test_backend_slurm.states
SLURM_TIMEOUT_S = test_backend_slurm.SLURM_TIMEOUT_S


# -- planning (pure) ---------------------------------------------------------

def planned(jobs, max_tasks=1000):
    """plan() over {name: (family, shape, [deps])}."""
    return plan(list(jobs), lambda n: jobs[n][2], lambda n: jobs[n][0], lambda n: jobs[n][1], max_tasks)


def test_a_family_goes_in_arrays_of_at_most_max_tasks_and_a_fan_in_waits_for_all():
    jobs = {f"t@{i}": ("t", "s", []) for i in range(2500)}
    jobs["sum"] = (None, "s", list(jobs))
    units = planned(jobs)
    assert [(u.label, len(u.names), u.array) for u in units] == [
        ("t.array0", 1000, True), ("t.array1", 1000, True), ("t.array2", 500, True), ("sum", 1, False)]
    assert units[0].names[:2] == ["t@0", "t@1"] and units[2].names[-1] == "t@2499"
    assert {label: kind for label, (kind, _) in units[3].deps.items()} == {
        "t.array0": ALL, "t.array1": ALL, "t.array2": ALL}


def test_a_family_fed_one_to_one_is_put_in_its_feeders_order_and_waits_with_aftercorr():
    jobs = {f"a@{i}": ("a", "s", []) for i in range(5)}
    # b@i needs a@(4-i): listed in the other order, yet task k of b pairs with task k of a
    jobs.update({f"b@{i}": ("b", "s", [f"a@{4 - i}"]) for i in range(5)})
    a, b = planned(jobs)
    assert b.names == ["b@4", "b@3", "b@2", "b@1", "b@0"]
    assert b.deps["a.array0"][0] == CORR
    assert all(jobs[name][2] == [a.names[i]] for i, name in enumerate(b.names))


def test_partial_dependencies_wait_for_the_whole_array_or_for_named_tasks():
    jobs = {f"a@{i}": ("a", "s", []) for i in range(4)}
    jobs.update({f"b@{i}": ("b", "s", [f"a@{i}", "a@0"]) for i in range(4)})  # two of a, not corr
    jobs["one"] = (None, "s", ["a@1", "a@2"])
    a, b, one = planned(jobs)
    assert b.deps["a.array0"][0] == ANY        # afterany: each task checks its own on the node
    assert one.deps["a.array0"] == (TASKS, {(0, 1), (0, 2)})


def test_different_shapes_internal_deps_and_crossed_families_fall_back_safely():
    shapes = planned({"f@1": ("f", "small", []), "f@2": ("f", "big", []), "f@3": ("f", "small", [])})
    assert [u.names for u in shapes] == [["f@1", "f@3"], ["f@2"]]
    chained = planned({"g@1": ("g", "s", []), "g@2": ("g", "s", ["g@1"])})
    assert [u.array for u in chained] == [False, False]
    crossed = planned({"x@1": ("x", "s", []), "y@1": ("y", "s", ["x@1"]),
                       "y@2": ("y", "s", []), "x@2": ("x", "s", ["y@2"])})
    assert not any(u.array for u in crossed) and len(crossed) == 4
    assert planned({f"t@{i}": ("t", "s", []) for i in range(3)}, max_tasks=1)[0].array is False


def test_index_ranges():
    assert index_ranges([7, 0, 1, 2, 5, 8]) == "0-2,5,7-8"
    assert index_ranges([3]) == "3" and index_ranges([]) == ""


def test_site_limits_read_from_scontrol_show_config():
    config = parse_config("Configuration data as of 2026-12-02T13:00:00\nMaxArraySize            = 1001\n"
                          "MaxJobCount             = 10000\nMinJobAge               = 300 sec\n")
    assert config["MaxArraySize"] == "1001" and config["MinJobAge"] == "300 sec"
    assert [_count(v) for v in ("1001", "UNLIMITED", "N/A", "0", None, "", "300 sec")] == [
        1001, None, None, None, None, None, 300]


def test_the_array_directive_and_dependency_syntax():
    backend = SlurmBackend()
    lines = backend.directives({}, None, "exmake-t", "/w/50% x/t.array0.out", "/w/50% x/t.array0.err", "/w",
                               array="0-999%4")
    assert "#SBATCH --array=0-999%4" in lines
    assert '#SBATCH --output="/w/50%% x/t.array0.%a.out"' in lines  # %a: the task's index
    assert backend.submit_argv("t.sh", [("aftercorr", "7"), ("afterok", "8"), ("afterok", "9_3")], "0-2,5") == [
        "sbatch", "--parsable", "--kill-on-invalid-dep=yes", "--array=0-2,5",
        "--dependency=aftercorr:7,afterok:8:9_3", "t.sh"]


# -- on the local cluster -------------------------------------------------------

def shims(tmp_path, extra_config=""):
    """(PATH, log) with counting shims for sbatch, squeue and scontrol; scontrol
    answers the real configuration plus `extra_config` lines (parse_config
    takes the last of a key)."""
    where = tmp_path / "bin"
    where.mkdir()
    log = tmp_path / "calls.log"
    for name in ("sbatch", "squeue", "scontrol"):
        real = shutil.which(name)
        extra = ""
        if name == "scontrol" and extra_config:
            extra = f'if [ "$1" = show ] && [ "$2" = config ]; then {real} "$@"; printf "{extra_config}"; exit; fi\n'
        (where / name).write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\n{extra}exec {real} \"$@\"\n")
        (where / name).chmod(stat.S_IRWXU)
    return f"{where}{os.pathsep}{os.environ['PATH']}", log


def calls(log, name):
    return [line for line in log.read_text().splitlines() if line.split()[0] == name]


FAMILIES = """\
jobs:
  qc:
    foreach: {s: {lines: samples.txt}}
    inputs: {d: "data/{each.s}.txt"}
    run: "cat {inputs.d} > q; ! grep -q bad q"
  two:
    foreach: {s: {lines: samples.txt}}
    run: "cat {deps.q}/q > r"
    deps: {q: "qc@{each.s}"}
  both:
    foreach: {s: {lines: samples.txt}}
    run: "cat {deps.q}/q {deps.first}/q > b"
    deps: {q: "qc@{each.s}", first: "qc@A"}
  all:
    run: "for d in {deps.r}; do cat $d/r; done > all"
    deps: {r: "two@*"}
"""


def families(path):
    path.mkdir(parents=True)
    (path / "Exmakefile").write_text(FAMILIES)
    (path / "samples.txt").write_text("A\nB\nC\nD\n")
    (path / "data").mkdir()
    for sample in "ABCD":
        (path / f"data/{sample}.txt").write_text("bad\n" if sample == "C" else f"{sample}\n")
    return path


def test_a_failed_task_fails_only_its_own_dependents(slurm, tmp_path):
    project = families(tmp_path / "p")
    path, log = shims(tmp_path)
    result = run(project, "--backend", "slurm", "--json", expect=1, env={"PATH": path})
    assert states(result) == {
        "qc@A": "built", "qc@B": "built", "qc@C": "failed", "qc@D": "built",
        "two@A": "built", "two@B": "built", "two@C": "skipped", "two@D": "built",       # aftercorr
        "both@A": "built", "both@B": "built", "both@C": "skipped", "both@D": "built",   # afterany
        "all": "skipped"}
    assert len(calls(log, "sbatch")) == 4  # three arrays and one job
    assert (project / "work/both@D-1/b").read_text() == "D\nA\n"
    assert not list(project.glob("work/two@C-*")) and not list(project.glob("work/all-*"))
    [batch] = (project / "work/.batch").iterdir()
    record = json.loads((batch / "jobs.json").read_text())
    array = record["arrays"]["two.array0"]
    assert record["format"] == 2 and record["jobs"]["two@D"] == f"{array}_3"
    assert json.loads((batch / "two.array0.tasks.json").read_text()) == {
        "format": 1, "tasks": ["two@A", "two@B", "two@C", "two@D"]}
    script = (batch / "two.array0.sh").read_text()
    assert "#SBATCH --array=0-3\n" in script and "--tasks" in script
    # One query per poll, each for the arrays themselves (squeue -r lists their tasks).
    for line in calls(log, "squeue"):
        assert line.split(" -j ")[1].split()[0].count("_") == 0, line


def test_each_task_runs_the_job_it_would_have_run_alone(slurm, tmp_path):
    cluster, local = families(tmp_path / "cluster"), families(tmp_path / "local")
    run(local, "-k", "--json", expect=1)
    run(cluster, "--backend", "slurm", "--json", expect=1)
    for name in ("qc@A", "two@B", "both@D"):
        ours = json.loads((cluster / f"work/{name}-1/setup.json").read_text())
        theirs = json.loads((local / f"work/{name}-1/setup.json").read_text())
        assert ours["key"] == theirs["key"] and ours["command"] == theirs["command"], name
        assert json.loads((cluster / f"work/{name}-1/post.json").read_text())["result"] == "SUCCESS"
    # After a fix, the cluster build runs only what failed and what it stopped.
    (cluster / "data/C.txt").write_text("C\n")
    again = states(run(cluster, "--backend", "slurm", "--json"))
    assert {n for n, s in again.items() if s == "built"} == {"qc@C", "two@C", "both@C", "all"}
    assert {n for n, s in again.items() if s == "reused"} == set(again) - {"qc@C", "two@C", "both@C", "all"}
    assert (cluster / "work/all-1/all").read_text() == "A\nB\nC\nD\n"


def test_waves_keep_the_queue_under_max_submit_jobs(slurm, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Exmakefile").write_text('jobs:\n  wv:\n    foreach: {i: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n'
                                        '    run: "echo {each.i} > o"\n')
    path, log = shims(tmp_path, extra_config="MaxSubmitJobs           = 4\\n")
    # The sbatch shim also notes how many of this build's tasks the queue holds.
    sbatch = tmp_path / "bin/sbatch"
    sbatch.write_text(sbatch.read_text().replace(
        "exec ", f"echo queued $(squeue -h -r -n exmake-wv -t PENDING,RUNNING,CONFIGURING,COMPLETING | wc -l) "
                 f">> {log}\nexec "))
    result = run(project, "--backend", "slurm", "--json", env={"PATH": path})
    assert set(states(result).values()) == {"built"} and len(states(result)) == 10
    submitted = [line for line in calls(log, "sbatch")]
    queued = [int(line.split()[1]) for line in calls(log, "queued")]
    assert len(submitted) == 3 == len(queued)  # arrays of 4, 4 and 2
    sizes = [4, 4, 2]
    assert all(q + size <= 4 for q, size in zip(queued, sizes)), queued


def test_ctrl_c_cancels_the_arrays(slurm, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Exmakefile").write_text('jobs:\n  long:\n    foreach: {i: [1, 2, 3]}\n    run: "sleep 120"\n')
    proc = subprocess.Popen([sys.executable, "-m", "exmake", "--backend", "slurm"], cwd=project,
                            env=exmake_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    array = wait_for_array(project, "long.array0")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    deadline = time.monotonic() + SLURM_TIMEOUT_S
    while time.monotonic() < deadline:
        found = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", array, "-o", "%T"],
                               capture_output=True, text=True).stdout.split()
        if found and set(found) == {"CANCELLED"}:
            break
        time.sleep(0.2)
    assert found == ["CANCELLED"] * 3


def wait_for_array(project, label):
    deadline = time.monotonic() + SLURM_TIMEOUT_S
    while time.monotonic() < deadline:
        for record in project.glob("work/.batch/*/jobs.json"):
            array = json.loads(record.read_text()).get("arrays", {}).get(label)
            if array:
                return array
        time.sleep(0.1)
    raise AssertionError(f"{label} was never submitted")


def test_a_rerun_after_a_kill_waits_for_the_running_tasks_and_submits_nothing_again(slurm, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Exmakefile").write_text('jobs:\n  slow:\n    foreach: {i: [1, 2, 3]}\n'
                                        '    run: "sleep 4; echo {each.i} > o"\n')
    proc = subprocess.Popen([sys.executable, "-m", "exmake", "--backend", "slurm"], cwd=project,
                            env=exmake_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    array = wait_for_array(project, "slow.array0")
    proc.kill()
    proc.wait()
    assert subprocess.run(["squeue", "-h", "-r", "-j", array, "-o", "%i"], capture_output=True,
                          text=True).stdout.split(), "the killed build's tasks should still be queued or running"
    path, log = shims(tmp_path)
    result = run(project, "--backend", "slurm", "--json", env={"PATH": path})
    assert set(states(result).values()) == {"reused"} and len(states(result)) == 3
    assert calls(log, "sbatch") == []
    for i in (1, 2, 3):  # each ran once, by the killed build's array
        assert [p.name for p in project.glob(f"work/slow@{i}-*") if not p.is_symlink()] == [f"slow@{i}-1"]


def test_no_wait_then_status_names_the_array_tasks(slurm, tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "Exmakefile").write_text('jobs:\n  nw:\n    foreach: {i: [1, 2]}\n    run: "sleep 3; echo > o"\n')
    result = run(project, "--backend", "slurm", "--no-wait")
    assert "submit  nw.array0" in result.stdout and "array job" in result.stdout
    status = run(project, "status").stdout
    array = wait_for_array(project, "nw.array0")
    assert f"slurm job {array}_0" in status and f"slurm job {array}_1" in status, status


def test_emitted_arrays_with_a_throttle_pass_sbatch_and_run(slurm, tmp_path):
    project = families(tmp_path / "p")
    out = tmp_path / "batch"
    emitted = run(project, "emit", "--backend", "slurm", "-j", "2", "--out", str(out))
    assert "qc.array0.sh  (an array of 4 jobs)" in emitted.stdout
    script = (out / "qc.array0.sh").read_text()
    assert "#SBATCH --array=0-3%2\n" in script
    # sbatch itself checks the script's directives (and submits nothing).
    checked = subprocess.run(["sbatch", "--test-only", str(out / "qc.array0.sh")], capture_output=True, text=True)
    assert checked.returncode == 0 and "to start at" in checked.stderr, checked
    submit = (out / "submit.sh").read_text()
    assert 'aftercorr:"${exmake_ids[qc.array0]}"' in submit and 'afterany:"${exmake_ids[qc.array0]}"' in submit
    submitted = subprocess.run(["bash", str(out / "submit.sh")], capture_output=True, text=True,
                               env=exmake_env(None), timeout=60)
    assert submitted.returncode == 0, submitted
    assert set(dict(line.split() for line in submitted.stdout.splitlines())) == {
        "qc.array0", "two.array0", "both.array0", "all"}
    deadline = time.monotonic() + SLURM_TIMEOUT_S
    while time.monotonic() < deadline and not (project / "work/both@D-LATEST").exists():
        time.sleep(0.3)
    assert (project / "work/both@D-LATEST/b").read_text() == "D\nA\n"


def test_torque_submits_a_family_job_by_job(project, tmp_path):
    project.recipe('jobs:\n  f:\n    foreach: {i: [1, 2]}\n    run: "echo {each.i} > o"\n')
    out = tmp_path / "b"
    project.run("emit", "--backend", "torque", "--out", out, expect=0)
    assert sorted(p.name for p in out.glob("*.sh")) == ["f@1.sh", "f@2.sh", "submit.sh"]
    assert not any(" -t " in line or "-J" in line for line in (out / "submit.sh").read_text().splitlines())


def test_site_limits_from_the_real_scontrol_and_when_arrays_are_off(slurm, tmp_path, monkeypatch):
    config = parse_config(subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout)
    limits = SlurmBackend().limits()
    assert limits.max_tasks == int(config["MaxArraySize"]) - 1  # task indices 0..MaxArraySize-1, one spare
    assert limits.max_submit == _count(config.get("MaxSubmitJobs"))
    path, _ = shims(tmp_path, extra_config="MaxArraySize            = 0\\nMaxSubmitJobs           = UNLIMITED\\n")
    monkeypatch.setenv("PATH", path)
    off = SlurmBackend().limits()
    assert (off.max_tasks, off.max_submit) == (1, None)  # slurm.conf(5): 0 disables arrays
