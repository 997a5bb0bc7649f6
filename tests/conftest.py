"""Shared fixtures: a scratch project and the real exmake command line.

Tests run `python -m exmake` as a real process in a temporary directory, so
exit statuses, signals, files and LMDB are all the real thing.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"


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
