"""exmake.fs.atomic: whole files under their final name, with the mode an
ordinary open() would give them."""

import os
import stat

import pytest

from exmake.fs import atomic


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the umask of this process (and so of the exmake it starts); restored after."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_job_records_honour_the_umask(project, tmp_path, umask, mask):
    # Issue 10, defect 21: setup.json and post.json were 0600 (mkstemp), so a
    # team sharing a workdir could not read each other's job records.
    umask(mask)
    project.recipe('jobs:\n  a:\n    run: "echo hi > out.txt"\n')
    project.run(expect=0)
    job = project.root / "work/a-1"
    for name in ("setup.json", "post.json"):
        assert mode(job / name) == 0o666 & ~mask, name
    assert mode(job / "out.txt") == 0o666 & ~mask  # what the job made itself, for comparison
    project.run("emit", "--backend", "slurm", "--out", tmp_path / "batch", expect=0)
    assert mode(tmp_path / "batch/a.sh") == 0o777 & ~mask
    assert mode(tmp_path / "batch/submit.sh") == 0o777 & ~mask


def test_write_bytes_replaces_whole_and_leaves_no_temporary(tmp_path, umask):
    umask(0o002)
    path = tmp_path / "f.json"
    atomic.write_json(str(path), {"a": 1})
    atomic.write_bytes(str(path), b"two\n", fsync=False)
    assert path.read_bytes() == b"two\n" and mode(path) == 0o664
    assert os.listdir(tmp_path) == ["f.json"]
