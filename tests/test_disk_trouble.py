"""Disk trouble: a job that cannot write what it wants fails clearly and
leaves nothing half-written.

Two ways to run out of room. RLIMIT_FSIZE on the exmake process (inherited
by its jobs) makes any write past the limit fail: a command started through
subprocess gets SIGXFSZ's default action back (Python itself ignores the
signal, and subprocess restores it), so a direct command is killed by
SIGXFSZ and bash reports `File size limit exceeded` (exit 153); a job
script is forked from exmake, keeps SIG_IGN, and sees OSError EFBIG. And a
real full filesystem: a 1 MiB tmpfs mounted as the workdir (tests run as
root; where mounting is refused the test is skipped), where exmake's own
post.json cannot be written either. A read-only bind mount stands for a
read-only workdir (chmod does not stop root). Every mount is undone in the
fixture's teardown.
"""

import json
import os
import resource
import subprocess
import sys

import pytest

from conftest import exmake_env

LIMIT = 1_000_000          # bytes: RLIMIT_FSIZE for the limited runs
TOO_MUCH = 3_000_000       # what the jobs try to write

RECIPE = f"""\
jobs:
  shell:
    run: "head -c {TOO_MUCH} /dev/zero > big.bin"
  direct:
    run: dd if=/dev/zero of=big.bin bs=1000000 count=3
  script:
    method: big.py
"""
SCRIPT = f"""\
def synthesis(job):
    with job.open("big.bin", "wb") as f:
        f.write(bytes({TOO_MUCH}))
"""


def run_limited(project, *args, fsize=LIMIT):
    """exmake with RLIMIT_FSIZE set, as `prlimit --fsize` would."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    return subprocess.run([sys.executable, "-m", "exmake", *args], cwd=project.root, env=exmake_env(None),
                          capture_output=True, text=True, timeout=60, preexec_fn=limit)


def post(project, jobid):
    return json.loads((project.root / "work" / jobid / "post.json").read_text())


def half_written(project):
    """Job directories without a post.json, and anything left in the building area."""
    work = project.root / "work"
    unfinished = [p.name for p in work.iterdir()
                  if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
                  and not (p / "post.json").exists()]
    building = work / ".exmake" / "building"
    return unfinished + (sorted(os.listdir(building)) if building.exists() else [])


@pytest.fixture
def limited(project):
    """The three jobs built once with -k under the file size limit."""
    project.recipe(RECIPE)
    project.write("big.py", SCRIPT)
    result = run_limited(project, "-k")
    assert result.returncode == 1, result.stderr
    return result


# -- RLIMIT_FSIZE ----------------------------------------------------------

def test_shell_job_past_the_limit_fails_with_its_reason(project, limited):
    record = post(project, "shell-1")
    assert record["result"] == "FAILURE" and record["reason"] == "exit status 153"
    assert any("File size limit exceeded" in line for line in record["stderr_tail"]), record


def test_direct_command_past_the_limit_is_killed_by_sigxfsz(project, limited):
    record = post(project, "direct-1")
    assert record["result"] == "FAILURE"
    assert (record["signal"], record["reason"]) == ("SIGXFSZ", "killed by SIGXFSZ")


def test_job_script_past_the_limit_fails_with_efbig(project, limited):
    record = post(project, "script-1")
    assert record["result"] == "FAILURE"
    assert record["reason"] == "synthesis raised OSError: [Errno 27] File too large"
    assert not (project.root / "work" / "script-1" / "big.bin").exists()  # job.open is atomic


def test_failures_are_reported_on_stderr(limited):
    assert "FAILED  shell-1" in limited.stdout and "FAILED  script-1" in limited.stdout
    assert limited.stderr == "exmake: jobs failed\n"


def test_limit_leaves_no_half_written_job_directory(project, limited):
    assert half_written(project) == []


def test_next_build_without_the_limit_succeeds(project, limited):
    project.run(expect=0)
    for name in ("shell", "direct", "script"):
        assert post(project, f"{name}-2")["result"] == "SUCCESS"
        assert (project.root / "work" / f"{name}-2" / "big.bin").stat().st_size == TOO_MUCH
    assert half_written(project) == []


# -- a full filesystem and a read-only one -----------------------------------

def mount(*args):
    proc = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip() or proc.returncode}")


def unmount(path):
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tiny_workdir(project):
    """A 1 MiB tmpfs mounted on the project's workdir."""
    work = project.root / "work"
    work.mkdir(parents=True)
    mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", work)
    try:
        yield work
    finally:
        unmount(work)


@pytest.fixture
def filled(project, tiny_workdir):
    """One job filling the tiny workdir: the build's result."""
    project.recipe(f'jobs:\n  big:\n    run: "head -c {TOO_MUCH} /dev/zero > big.bin"\n')
    return project.run()


def test_full_workdir_leaves_no_half_written_job_directory(project, filled):
    assert filled.code == 1
    assert half_written(project) == []


def test_next_build_in_a_grown_workdir_succeeds(project, filled, tiny_workdir):
    mount("-o", "remount,size=16m", tiny_workdir)
    project.run(expect=0)
    jobid = os.readlink(tiny_workdir / "big-LATEST")
    assert post(project, jobid)["result"] == "SUCCESS"
    assert half_written(project) == []


def test_full_workdir_fails_the_job_clearly(filled):
    assert filled.code == 1
    assert "Traceback" not in filled.err, filled
    assert "big" in filled.out and "No space left on device" in filled.out + filled.err


@pytest.fixture
def read_only_workdir(project):
    """The workdir bind-mounted onto itself, read-only."""
    work = project.root / "work"
    work.mkdir(parents=True)
    mount("--bind", work, work)
    try:
        proc = subprocess.run(["mount", "-o", "remount,bind,ro", str(work)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {proc.stderr.strip()}")
        yield work
    finally:
        unmount(work)


def test_read_only_workdir_is_one_clear_error(project, read_only_workdir):
    project.recipe("jobs:\n  a: {run: 'true'}\n")
    result = project.run()
    assert result.code in (1, 2), result
    assert len(result.err.splitlines()) == 1 and result.err.startswith("exmake: "), result
    assert "Read-only file system" in result.err
