"""scripts/local-slurm-start and -stop respect the machine: they never change a
Slurm or munge configuration they did not write, keep their own in their own
directory (SLURM_CONF), take ports nobody listens on when another cluster
runs, and stop only what they started.

A second test cluster is started in a scratch directory beside the suite's
own, in a private mount namespace whose /etc/slurm holds someone else's
slurm.conf (a real bind mount, so the machine's own file is not touched
even if the script misbehaved). Needs root and Slurm's packages; in CI
(CI=true) their absence fails these tests, elsewhere it skips them.
"""

import hashlib
import os
import shutil
import subprocess

import pytest

from conftest import REPO, SLURM_DIR, pid_alive, wait_for

START = REPO / "scripts/local-slurm-start"
STOP = REPO / "scripts/local-slurm-stop"
FOREIGN_CONF = "# someone else's cluster\nClusterName=production\nSlurmctldHost=elsewhere\n"


@pytest.fixture(scope="module")
def suite_cluster():
    """The suite's own test cluster, running (the script is idempotent)."""
    problem = None
    if os.geteuid() != 0:
        problem = "the local Slurm scripts need root"
    elif not shutil.which("slurmctld") and not os.path.exists("/usr/sbin/slurmctld"):
        problem = "slurmctld is not installed (scripts/install-test-deps installs it)"
    elif not shutil.which("unshare"):
        problem = "unshare (util-linux) is not installed"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    proc = subprocess.run([str(START)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc
    return os.path.join(SLURM_DIR, "slurm.conf")


def ports(conf):
    values = dict(line.split("=", 1) for line in open(conf).read().splitlines()
                  if line.startswith(("SlurmctldPort=", "SlurmdPort=")))
    return int(values["SlurmctldPort"]), int(values["SlurmdPort"])


def fingerprint(path):
    """Content hash and mtime of every file under `path` (or of the file)."""
    found = {}
    files = [path] if os.path.isfile(path) else [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
    for name in files:
        with open(name, "rb") as f:
            found[name] = (hashlib.sha256(f.read()).hexdigest(), os.stat(name).st_mtime_ns)
    return found


def run(argv, env, expect=0):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    assert proc.returncode == expect, proc
    return proc


def test_a_second_cluster_beside_a_running_one_leaves_every_other_configuration_alone(suite_cluster, tmp_path):
    decoy = tmp_path / "etc-slurm"
    decoy.mkdir()
    (decoy / "slurm.conf").write_text(FOREIGN_CONF)
    guarded = [str(decoy)] + [p for p in ("/etc/slurm", "/etc/munge") if os.path.isdir(p)]
    before = {p: fingerprint(p) for p in guarded}
    suite_before = fingerprint(suite_cluster)
    cluster = tmp_path / "cluster"
    env = {"EXMAKE_SLURM_DIR": str(cluster), "SLURM_CONF": str(cluster / "slurm.conf")}
    try:
        # /etc/slurm, in the script's own mount namespace, is someone else's.
        run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount --bind "$1" /etc/slurm && exec "$2"', "sh", str(decoy), str(START)], env)
        assert {p: fingerprint(p) for p in guarded} == before
        assert fingerprint(suite_cluster) == suite_before
        # Its own configuration, state and munge are in its own directory, on other ports.
        conf = (cluster / "slurm.conf").read_text()
        assert f"StateSaveLocation={cluster}/state" in conf and f"AuthInfo=socket={cluster}/munge/" in conf
        assert set(ports(cluster / "slurm.conf")).isdisjoint(ports(suite_cluster))
        # It is a working cluster.
        out = tmp_path / "job.out"
        run(["sbatch", "--wait", "-o", str(out), "--wrap", "echo ran on the second cluster"], env)
        assert out.read_text() == "ran on the second cluster\n"
        # Running it again changes nothing and starts nothing.
        again = run([str(START)], env).stdout
        assert "wrote" not in again and "started" not in again
    finally:
        started = {p.name: int(p.read_text()) for p in (cluster / "started").glob("*.pid")}
        run([str(STOP)], env)
    assert set(started) == {"munged.pid", "slurmctld.pid", "slurmd.pid"}
    wait_for(lambda: not any(pid_alive(pid) for pid in started.values()), timeout=60)
    # What it did not start still runs.
    ping = run(["scontrol", "ping"], {"SLURM_CONF": suite_cluster}).stdout
    assert "is UP" in ping
    assert {p: fingerprint(p) for p in guarded} == before


def test_it_refuses_a_slurm_conf_it_did_not_write(suite_cluster, tmp_path):
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    (cluster / "slurm.conf").write_text(FOREIGN_CONF)
    result = run([str(START)], {"EXMAKE_SLURM_DIR": str(cluster)}, expect=1)
    assert "was not written by local-slurm-start; not touching it" in result.stderr
    assert (cluster / "slurm.conf").read_text() == FOREIGN_CONF
    assert sorted(os.listdir(cluster)) == ["slurm.conf"]  # nothing else made, nothing started


def daemons_of(cluster):
    """{pid: comm} of every live slurmctld, slurmd and munged whose command line names `cluster`'s files."""
    names = {f"{cluster}/slurm.conf", f"--socket={cluster}/munge/munge.socket.2"}
    found = {}
    for entry in os.listdir("/proc"):
        try:
            args = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace").split("\0")
            comm = open(f"/proc/{entry}/comm").read().strip()
            state = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if comm in ("slurmctld", "slurmd", "munged") and state != "Z" and names & set(args):
            found[int(entry)] = comm
    return found


def test_its_own_daemons_are_known_without_their_pidfiles_or_records(suite_cluster, tmp_path):
    """Review of issue 18: with run/ (the daemons' pidfiles) deleted a start started a second set
    on the same state dir; with started/ deleted, stop left its own daemons running."""
    cluster = tmp_path / "cluster"
    env = {"EXMAKE_SLURM_DIR": str(cluster), "SLURM_CONF": str(cluster / "slurm.conf")}
    try:
        run([str(START)], env)
        first = daemons_of(cluster)
        assert sorted(first.values()) == ["munged", "slurmctld", "slurmd"]
        shutil.rmtree(cluster / "run")
        again = run([str(START)], env).stdout
        assert "started" not in again, again
        assert daemons_of(cluster) == first  # the same three, and no second set
        assert "is UP" in run(["scontrol", "ping"], env).stdout
        shutil.rmtree(cluster / "started")
        stopped = run([str(STOP)], env).stdout
        assert "left running" not in stopped, stopped
        wait_for(lambda: not daemons_of(cluster), timeout=60)
    finally:
        run([str(STOP)], env)
    assert "is UP" in run(["scontrol", "ping"], {"SLURM_CONF": suite_cluster}).stdout
