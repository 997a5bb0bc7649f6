"""Shared fixtures: a scratch project and the real exmake command line.

Tests run `python -m exmake` as a real process in a temporary directory, so
exit statuses, signals, files and LMDB are all the real thing.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
# The test Slurm cluster (scripts/local-slurm-start) keeps its configuration in its own
# directory, never in /etc/slurm: every Slurm command the tests run, and every exmake
# they start, reaches it through SLURM_CONF.
SLURM_DIR = os.environ.get("EXMAKE_SLURM_DIR", "/var/lib/exmake-slurm")
os.environ["SLURM_CONF"] = os.path.join(SLURM_DIR, "slurm.conf")


class Result:
    def __init__(self, proc):
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"<exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}>"


class Project:
    """A directory with an Exmakefile, and a way to run exmake in it."""

    def __init__(self, root):
        self.root = Path(root)

    def write(self, rel, text, dedent=True):
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text) if dedent else text)
        return path

    def recipe(self, text):
        return self.write("Exmakefile", text)

    def run(self, *args, expect=None, env=None, timeout=120):
        proc = subprocess.run(
            [sys.executable, "-m", "exmake", *map(str, args)], cwd=self.root,
            capture_output=True, text=True, timeout=timeout, env=exmake_env(env))
        result = Result(proc)
        if expect is not None:
            assert result.code == expect, result
        return result

    def popen(self, *args, env=None, **kwargs):
        return subprocess.Popen([sys.executable, "-m", "exmake", *map(str, args)], cwd=self.root,
                                env=exmake_env(env), text=True, **kwargs)

    def read(self, rel):
        return (self.root / rel).read_text()

    def job_dirs(self, name=None):
        work = self.root / "work"
        if not work.exists():
            return []
        return sorted(p.name for p in work.iterdir()
                      if not p.is_symlink() and p.is_dir() and not p.name.startswith(".")
                      and (name is None or p.name.rsplit("-", 1)[0] == name))


def wait_for(predicate, timeout=20):
    """The first truthy value of `predicate()`, polled; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def age(root, seconds=10):
    """Set every file's and directory's mtime outside the workdir into the past,
    as on a settled project (the no-op fast path trusts only such files)."""
    past = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        if ".exmake" in dirpath or "/work" in dirpath:
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.utime(path, (past, past))


def running_dirs(root, pattern="*"):
    """The directories of the jobs running now under `root`/work: each has a
    marker of the same name in work/.exmake/building (exmake.fs.jobdir)."""
    building = root / "work/.exmake/building"
    return [root / "work" / m.name for m in sorted(building.glob(pattern))] if building.exists() else []


def pid_alive(pid):
    """True while `pid` runs (a zombie counts as gone: PID 1 here reaps slowly)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        # /proc/PID may vanish between the open and the read (ESRCH)
        return False


def exmake_env(extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path / "proj")


@pytest.fixture
def recipes_copy(tmp_path):
    """A copy of the repository's recipes/ (data included) to build in."""
    dest = tmp_path / "recipes"
    shutil.copytree(RECIPES, dest, ignore=shutil.ignore_patterns("work", "results"))
    return dest
