"""Packaging: `pip wheel .` and `python -m build` make a wheel and an sdist
that hold exmake, its metadata (PEP 621, from pyproject.toml) and its
licence, and the installed wheel's `exmake` command runs.

Offline: the build backend is the one installed (`--no-build-isolation`,
`--no-isolation`) and nothing is resolved (`--no-deps`). The build runs in a
copy of the tracked files, so it neither writes into the checkout nor
depends on anything not committed.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser

import pytest

from conftest import REPO
from exmake import __version__

WHEEL_NAME = f"exmake-{__version__}-py3-none-any.whl"


def run(*argv, cwd):
    # Without PYTHONPATH: the tests' own (the checkout) must not stand in for what was installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, (argv, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The checkout's tracked files (as they are in the work tree), copied."""
    dest = tmp_path_factory.mktemp("src") / "exmake"
    dest.mkdir()
    files = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO).stdout
    archive = subprocess.run(["tar", "-c", "--null", "-T", "-"], cwd=REPO, input=files.encode(),
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x"], cwd=dest, input=archive, check=True)
    return dest


def metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        return Parser().parsestr(z.read(f"exmake-{__version__}.dist-info/METADATA").decode())


def test_pip_wheel_holds_the_package_its_metadata_and_licence(source, tmp_path):
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
        "--no-cache-dir", "-w", str(tmp_path), cwd=source)
    wheel = tmp_path / WHEEL_NAME
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(f"exmake-{__version__}.dist-info/entry_points.txt").decode()
        licence = z.read(f"exmake-{__version__}.dist-info/licenses/LICENSE").decode()
    modules = {str(p.relative_to(source)) for p in (source / "exmake").rglob("*.py")}
    assert modules and modules <= names, sorted(modules - names)
    assert not any(n.startswith(("tests/", "recipes/", "bench/")) for n in names)
    assert "exmake = exmake.cli:main" in entry_points
    assert licence == (REPO / "LICENSE").read_text() and licence.startswith("MIT License")
    meta = metadata(wheel)
    assert meta["Name"] == "exmake" and meta["Version"] == __version__
    assert meta["License-Expression"] == "MIT"
    # exmake/schedule.py uses bisect.insort(key=): 3.10 and newer only.
    assert meta["Requires-Python"] == ">=3.10"
    versions = {c.rsplit(" :: ", 1)[1] for c in meta.get_all("Classifier")
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert versions and min(versions, key=lambda v: int(v.split(".")[1])) == "3.10", versions
    assert meta["Summary"] and meta["Author"]
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# exmake")  # the README
    requires = meta.get_all("Requires-Dist")
    for dependency in ("PyYAML", "lmdb", "blake3", "tqdm", "watchdog"):
        [spec] = [r for r in requires if r.startswith(dependency) and "extra ==" not in r]
        assert ">=" in spec and "<" in spec, spec  # bounded both ways
    assert "test" in meta.get_all("Provides-Extra")
    assert any(r.startswith("pytest") and 'extra == "test"' in r for r in requires)
    assert {u.split(",")[0] for u in meta.get_all("Project-URL")} >= {"Homepage", "Documentation", "Issues"}
    assert any(c.startswith("Topic :: Software Development :: Build Tools") for c in meta.get_all("Classifier"))


def test_python_m_build_makes_an_sdist_and_a_wheel_that_installs_a_working_exmake(source, tmp_path):
    """... and the README's quick start runs with it (pip install . is that build and that install;
    offline here, so the wheel is built with the machine's setuptools and installed without deps)."""
    out = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), cwd=source)
    [sdist] = out.glob("exmake-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pyproject.toml", "setup.py", "LICENSE", "README.md", "exmake/cli.py"} <= members
    # No tests in the sdist: they need the whole checkout (conftest.py, recipes/, docs/,
    # scripts/, a Slurm cluster), so shipped alone they could not run (MANIFEST.in prunes them).
    assert not any(m.startswith(("tests/", "bench/", "recipes/")) for m in members), sorted(members)
    # A venv that sees the machine's packages (the dependencies are there: offline),
    # with the wheel installed into it (over any exmake installed there): its own `exmake` entry point runs.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", str(venv), cwd=tmp_path)
    run(str(venv / "bin/python"), "-m", "pip", "install", "--no-deps", "--no-index", "--no-cache-dir", "--ignore-installed",
        str(out / WHEEL_NAME), cwd=tmp_path)
    version = run(str(venv / "bin/exmake"), "--version", cwd=tmp_path).stdout
    assert version.strip() == f"exmake {__version__}"
    # ... and it is the installed copy, not the checkout's.
    where = run(str(venv / "bin/python"), "-c", "import exmake; print(exmake.__file__)", cwd=tmp_path).stdout
    assert where.startswith(str(venv))
    # The README's quick start, with what was installed: `python3 -m exmake -f Exmakefile.example`.
    example = tmp_path / "example"
    shutil.copytree(source, example, ignore=shutil.ignore_patterns("exmake", "tests", "build", "*.egg-info"))
    run(str(venv / "bin/python"), "-m", "exmake", "-q", "-f", "Exmakefile.example", cwd=example)
    report = (example / "results/report.md").read_text()
    assert report.startswith("#") and "genesis" in report.lower()

