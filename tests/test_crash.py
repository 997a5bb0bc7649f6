"""Crash consistency: SIGKILL at random instants, then a normal build, gives
exactly the results of an uninterrupted build.

Each round forces a rebuild (`exmake -B`), kills at a random instant either
exmake alone (its jobs run on, orphaned), exmake and every job process at
once (a power cut), or one job process, then runs a normal build and
checks: exit 0, the published results and every job's outputs byte for
byte as in an uninterrupted build, no job directory without a SUCCESS
post.json in use, the LMDB index and log readable, and after `exmake gc`
no building directory or empty reservation left.

EXMAKE_CRASH_ROUNDS (default 50) and EXMAKE_CRASH_SEED (default fixed) let
it run longer by hand: EXMAKE_CRASH_ROUNDS=500 python3 -m pytest tests/test_crash.py
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

from conftest import exmake_env, pid_alive

ROUNDS = int(os.environ.get("EXMAKE_CRASH_ROUNDS", "50"))
SEED = int(os.environ.get("EXMAKE_CRASH_SEED", "20261121"))
LEAVES = 12

METHOD = '''\
def analysis(sliceno, job):
    import time
    time.sleep(0.02)
    return sum(len(line) for line in job.input_lines("text"))


def synthesis(analysis_res, job):
    job.json_save(analysis_res, "sizes.json")
    return sum(analysis_res)
'''


def recipe():
    lines = ["slices: 2", "jobs:"]
    for i in range(LEAVES):
        lines += [f"  leaf{i}:", f'    run: "sleep 0.0{i % 4}; sha256sum < {{inputs.text}} > sum.txt"',
                  f"    inputs: {{text: data/{i}.txt}}", "    outputs: [sum.txt]"]
    for i in range(0, LEAVES, 2):
        lines += [f"  pair{i}:", '    run: "cat {deps.a}/sum.txt {deps.b}/sum.txt | sort > pair.txt"',
                  f"    deps: {{a: leaf{i}, b: leaf{i + 1}}}", "    outputs: [pair.txt]"]
    lines += ["  sliced:", '    run: "sleep 0.03; cat {deps.p}/pair.txt | wc -c > part.{sliceno}"',
              "    deps: {p: pair0}", "    slices: 3"]
    for i in range(3):
        lines += [f"  sizes{i}:", "    method: sizes.py", f"    inputs: {{text: data/{i}.txt}}"]
    lines += ["  report:", "    run: \"cat " + " ".join(f"{{deps.p{i}}}/pair.txt" for i in range(0, LEAVES, 2))
              + " {deps.s}/part.0 {deps.z}/sizes.json > report.txt\"",
              "    deps: {" + ", ".join(f"p{i}: pair{i}" for i in range(0, LEAVES, 2)) + ", s: sliced, z: sizes0}",
              "    publish: {report.txt: report.txt}"]
    return "\n".join(lines) + "\n"


def make_project(root):
    (root / "data").mkdir(parents=True)
    for i in range(LEAVES):
        (root / f"data/{i}.txt").write_text("".join(f"line {j} of file {i}\n" for j in range(200 + i)))
    (root / "Exmakefile").write_text(recipe())
    (root / "sizes.py").write_text(METHOD)


def exmake(root, *args, expect=0):
    proc = subprocess.run([sys.executable, "-m", "exmake", *args], cwd=root, capture_output=True,
                          text=True, env=exmake_env(None), timeout=120)
    assert proc.returncode == expect, (args, proc.stdout, proc.stderr)
    return proc


def snapshot(root):
    """What a build must produce: published files and each job's output digests."""
    jobs = json.loads(exmake(root, "status", "--json").stdout)
    outputs = {}
    for name, job in jobs.items():
        assert job["state"] == "fresh", (name, job)
        post = json.loads((root / "work" / job["jobid"] / "post.json").read_text())
        assert post["result"] == "SUCCESS"
        outputs[name] = post["outputs"]
    published = {p.name: p.read_bytes() for p in (root / "results").iterdir()}
    return outputs, published


def job_processes(root):
    """Pids of processes running in the build's job directories (a job runs in place)."""
    work = str(root / "work") + os.sep
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/cwd").startswith(work):
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


def wait_gone(pids, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return
        time.sleep(0.02)
    raise AssertionError(f"processes still running: {alive}")



def crash_round(root, rng, kind):
    proc = subprocess.Popen([sys.executable, "-m", "exmake", "-q", "-B", "-j", "2"], cwd=root,
                            env=exmake_env(None), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.0, 1.2))
    if kind == "job":
        jobs = job_processes(root)
        if jobs:
            os.kill(rng.choice(jobs), signal.SIGKILL)
        proc.wait(timeout=60)  # the build goes on without that job (exit 1 if it caught it)
        return
    jobs = job_processes(root)
    proc.kill()
    proc.wait()
    if kind == "power":
        for pid in jobs + job_processes(root):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    wait_gone(job_processes(root))  # orphans finish (or died) before we look


def test_random_kills_never_change_the_results(tmp_path):
    reference = tmp_path / "reference"
    make_project(reference)
    exmake(reference)
    expected = snapshot(reference)

    root = tmp_path / "crashed"
    make_project(root)
    exmake(root)
    rng = random.Random(SEED)
    kinds = ["exmake", "power", "job"]
    deadline = time.monotonic() + 600
    for round_no in range(ROUNDS):
        assert time.monotonic() < deadline, f"only {round_no} rounds in time"
        kind = kinds[round_no % 3]
        crash_round(root, rng, kind)
        exmake(root)  # the normal build after the crash
        outputs, published = snapshot(root)
        assert published == expected[1], (round_no, kind)
        assert outputs == expected[0], (round_no, kind)
    # Index and log open cleanly; every logged build is there.
    log = exmake(root, "urd", "default").stdout.splitlines()
    assert len(log) >= ROUNDS + 1
    exmake(root, "gc", "--keep", "1000")
    assert list((root / "work/.exmake/building").iterdir()) == []
    for entry in (root / "work").iterdir():
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            assert (entry / "post.json").exists(), entry  # no half-made job under its name
    shutil.rmtree(reference)
