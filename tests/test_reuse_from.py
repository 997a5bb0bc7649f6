"""`reuse_from:`, --reuse-from and $EXMAKE_REUSE_FROM: finished jobs of other workdirs, used in place.

A CI project builds into its workdir, which is then made read-only (and, as
root, left to be read by another user). A second project with the same
recipe, its data elsewhere (`input_dir:`), reuses everything from there,
writes nothing there, and builds locally exactly what differs. Every way a
reuse could be wrong is tried: other options, other code, other input
content, an incomplete or edited job directory, a lying index.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, Project

RECIPE = """\
    input_dir: data
    jobs:
      words:
        run: "tr -s ' ' '\\n' < {inputs.text} > words.txt"
        inputs: {text: book.txt}
        outputs: [words.txt]
      count:
        method: count.py
        deps: {words: words}
        options: {min: 1}
      report:
        run: "cat {deps.count}/n.txt {deps.words}/words.txt > report.txt"
        deps: {count: count, words: words}
        outputs: [report.txt]
        publish: {report.txt: report.txt}
"""

SCRIPT = """\
    options = {"min": 0}

    def synthesis(deps, job, options):
        with open(deps.words.path + "/words.txt") as f:
            n = sum(1 for line in f if len(line.strip()) >= options["min"])
        with job.open("n.txt", "w") as out:
            out.write(f"{n}\\n")
        return n
"""


def make(root, book="a bb ccc\n", recipe=RECIPE, script=SCRIPT, first=""):
    project = Project(root)
    project.write("Exmakefile", first + textwrap.dedent(recipe), dedent=False)
    project.write("count.py", script)
    project.write("data/book.txt", book)
    return project


@pytest.fixture
def ci(tmp_path):
    """The CI project, built; its workdir read-only for the test, writable again after."""
    project = make(tmp_path / "ci")
    project.run(expect=0)
    work = project.root / "work"
    subprocess.run(["chmod", "-R", "a-w", str(work)], check=True)
    yield project
    subprocess.run(["chmod", "-R", "u+w", str(work)], check=True)


def snapshot(top):
    """Everything about a tree that a write would change: each entry's type,
    mode, size, mtime, ctime, content and link target (not atimes)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [".", *dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entry = [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_uid]
            if os.path.islink(path):
                entry.append(os.readlink(path))
            elif os.path.isfile(path):
                entry.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
            state[os.path.relpath(path, top)] = entry
    return state


def jobs(result):
    return json.loads(result.out)["jobs"]


def states(result):
    return {name: job["state"] for name, job in jobs(result).items()}


def unlocked(path):
    """A context to edit a read-only CI workdir (as the tampering tests do)."""
    class Unlocked:
        def __enter__(self):
            subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)

        def __exit__(self, *exc):
            subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
    return Unlocked()


def test_everything_reused_in_place_and_the_other_workdir_untouched(ci, tmp_path):
    ci_work = ci.root / "work"
    before = snapshot(ci_work)
    me = make(tmp_path / "me")
    result = me.run("--json", "--reuse-from", ci_work, expect=0)
    assert states(result) == {"words": "reused", "count": "reused", "report": "reused"}
    for name, job in jobs(result).items():
        assert job["workdir"] == str(ci_work)
        assert job["path"] == str(ci_work / job["jobid"])
    assert snapshot(ci_work) == before
    assert me.job_dirs() == []
    link = me.root / "results/report.txt"
    assert os.path.realpath(link) == str(ci_work / "report-1/report.txt")
    assert link.read_text() == "3\na\nbb\nccc\n"


def test_the_build_log_records_the_workdir_of_each_job(ci, tmp_path):
    me = make(tmp_path / "me")
    me.run("--reuse-from", ci.root / "work", expect=0)
    entry = json.loads(me.run("urd", "export", expect=0).out.splitlines()[-1])
    assert {name: job["workdir"] for name, job in entry["jobs"].items()} == \
        {name: str(ci.root / "work") for name in ("words", "count", "report")}
    shown = me.run("urd", "default/latest", expect=0).out
    assert f"report  reused   report-1  from {ci.root / 'work'}" in shown


def test_what_changed_is_built_locally_and_its_view_points_into_the_other_workdir(ci, tmp_path):
    ci_work = ci.root / "work"
    before = snapshot(ci_work)
    me = make(tmp_path / "me", recipe=RECIPE.replace("cat {deps.count}", "cat -A {deps.count}"))
    result = me.run("--json", "--reuse-from", ci_work, expect=0)
    assert states(result) == {"words": "reused", "count": "reused", "report": "built"}
    report = me.root / "work" / jobs(result)["report"]["jobid"]
    assert os.path.realpath(report / "deps/count") == str(ci_work / "count-1")
    assert os.path.realpath(report / "deps/words") == str(ci_work / "words-1")
    assert (report / "report.txt").read_text() == "3$\na$\nbb$\nccc$\n"
    setup = json.loads((report / "setup.json").read_text())
    assert setup["deps"]["count"]["jobid"] == "count-1"
    assert snapshot(ci_work) == before


def test_other_options_are_not_reused(ci, tmp_path):
    me = make(tmp_path / "me", recipe=RECIPE.replace("{min: 1}", "{min: 2}"))
    result = me.run("--json", "--reuse-from", ci.root / "work", expect=0)
    assert states(result) == {"words": "reused", "count": "built", "report": "built"}
    assert (me.root / "work" / jobs(result)["count"]["jobid"] / "n.txt").read_text() == "2\n"


def test_other_code_is_not_reused(ci, tmp_path):
    me = make(tmp_path / "me", script=SCRIPT.replace("return n", "return n + 0"))
    assert "n + 0" in (me.root / "count.py").read_text()
    result = me.run("--json", "--reuse-from", ci.root / "work", expect=0)
    # count ran here and wrote the same bytes: report is still CI's (early cutoff)
    assert states(result) == {"words": "reused", "count": "built", "report": "reused"}
    assert jobs(result)["count"]["path"] == str(me.root / "work/count-1")


def test_other_input_content_after_moving_is_not_reused(ci, tmp_path):
    me = make(tmp_path / "me", book="a bb ccc dddd\n")
    result = me.run("--json", "--reuse-from", ci.root / "work", expect=0)
    assert states(result) == {"words": "built", "count": "built", "report": "built"}
    assert me.read("results/report.txt").startswith("4\n")


def test_moved_data_with_input_dir_option_is_reused(ci, tmp_path):
    me = make(tmp_path / "me")
    shutil.move(str(me.root / "data"), str(tmp_path / "shared-data"))
    result = me.run("--json", "--reuse-from", ci.root / "work", "--input-dir", tmp_path / "shared-data", expect=0)
    assert states(result) == {"words": "reused", "count": "reused", "report": "reused"}


@pytest.mark.parametrize("damage", ["no post.json", "failed post.json", "output edited", "output missing",
                                    "setup edited", "post of another format"])
def test_an_incomplete_or_edited_job_directory_is_not_reused(ci, tmp_path, damage):
    ci_work = ci.root / "work"
    count = ci_work / "count-1"
    with unlocked(ci_work):
        post = json.loads((count / "post.json").read_text())
        if damage == "no post.json":
            (count / "post.json").unlink()
        elif damage == "failed post.json":
            (count / "post.json").write_text(json.dumps({**post, "result": "FAILURE"}))
        elif damage == "output edited":
            (count / "n.txt").write_text("3\n\n")
        elif damage == "output missing":
            (count / "n.txt").unlink()
        elif damage == "setup edited":  # the key kept, the work it describes changed
            setup = json.loads((count / "setup.json").read_text())
            setup["step"]["options"] = {"min": 7}
            (count / "setup.json").write_text(json.dumps(setup))
        else:
            (count / "post.json").write_text(json.dumps({**post, "format": 99}))
    me = make(tmp_path / "me")
    result = me.run("--json", "--reuse-from", ci_work, expect=0)
    # count runs here; it writes what CI's wrote, so CI's report is still good (early cutoff)
    assert states(result) == {"words": "reused", "count": "built", "report": "reused"}
    assert jobs(result)["count"]["path"] == str(me.root / "work/count-1")
    assert any(r.startswith(f"not reusing from {ci_work}") for r in jobs(result)["count"]["reasons"])
    assert me.read("results/report.txt") == "3\na\nbb\nccc\n"


def test_an_index_that_names_the_wrong_job_is_not_believed(ci, tmp_path):
    """The other workdir's index says count's key is words-1: its records are
    another job's, so nothing is reused for it."""
    ci_work = ci.root / "work"
    key = json.loads((ci_work / "count-1/setup.json").read_text())["key"]
    import lmdb
    with unlocked(ci_work):
        env = lmdb.open(str(ci_work / ".exmake/lmdb"), max_dbs=8)
        with env.begin(write=True, db=env.open_db(b"trace")) as txn:
            txn.put(key.encode(), b"words-1")
        env.close()
    me = make(tmp_path / "me")
    result = me.run("--json", "--reuse-from", ci_work, expect=0)
    assert states(result)["count"] == "built"


def test_a_workdir_without_an_index_is_scanned(ci, tmp_path):
    ci_work = ci.root / "work"
    with unlocked(ci_work):
        shutil.rmtree(ci_work / ".exmake")
    me = make(tmp_path / "me")
    result = me.run("--json", "--reuse-from", ci_work, expect=0)
    assert states(result) == {"words": "reused", "count": "reused", "report": "reused"}


def test_a_job_that_vanished_there_is_run_here_with_a_message(ci, tmp_path):
    ci_work = ci.root / "work"
    me = make(tmp_path / "me")
    me.run("--reuse-from", ci_work, expect=0)
    with unlocked(ci_work):
        shutil.rmtree(ci_work / "report-1")
    result = me.run("--reuse-from", ci_work, expect=0)
    assert "report-1 in " + str(ci_work) in result.out
    assert "used by an earlier build, is gone or no longer complete: running it here" in result.out
    assert os.path.realpath(me.root / "results/report.txt") == str(me.root / "work/report-1/report.txt")
    assert me.read("results/report.txt") == "3\na\nbb\nccc\n"


def test_the_recipe_key_and_the_environment_variable(ci, tmp_path):
    me = make(tmp_path / "me", first=f"reuse_from: [{ci.root / 'work'}]\n")
    assert set(states(me.run("--json", expect=0)).values()) == {"reused"}
    other = make(tmp_path / "other")
    result = other.run("--json", env={"EXMAKE_REUSE_FROM": f"/nonexistent-never:{ci.root / 'work'}"}, expect=2)
    assert "EXMAKE_REUSE_FROM=/nonexistent-never: no such directory" in result.err
    result = other.run("--json", env={"EXMAKE_REUSE_FROM": str(ci.root / "work")}, expect=0)
    assert set(states(result).values()) == {"reused"}
    assert other.job_dirs() == []


def test_a_dry_run_says_where_a_job_would_come_from(ci, tmp_path):
    me = make(tmp_path / "me")
    result = me.run("-n", "--json", "--reuse-from", ci.root / "work", expect=0)
    assert {name: (job["state"], job.get("workdir")) for name, job in jobs(result).items()} == \
        {name: ("fresh", str(ci.root / "work")) for name in ("words", "count", "report")}
    assert not (me.root / "work").exists()


def test_bad_reuse_from_values_are_one_error_and_write_nothing(tmp_path):
    me = make(tmp_path / "me", first="reuse_from: [../nowhere]\n")
    result = me.run(expect=2)
    assert "Exmakefile:1" in result.err and "reuse_from" in result.err and "no such directory" in result.err
    make(tmp_path / "me", first="reuse_from: {a: 1}\n")
    assert "must be a list of workdirs" in me.run(expect=2).err
    make(tmp_path / "me")
    assert "--reuse-from nowhere: no such directory" in me.run("--reuse-from", "nowhere", expect=2).err
    assert not (me.root / "work").exists()


def _other_user_python(tmp):
    """(python, PYTHONPATH) with which user `nobody` runs this exmake, or None:
    the interpreter of the tests may live where only root can read (pyenv under
    /root), so the system one of the same version runs copies of the
    third-party packages."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    python = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    if not os.path.exists(python):
        return None
    import blake3
    import lmdb
    import yaml
    site = os.path.join(tmp, "site")
    os.makedirs(site)
    for module in (lmdb, yaml, blake3):
        source = os.path.dirname(module.__file__)
        shutil.copytree(source, os.path.join(site, os.path.basename(source)))
    for extra in ("_yaml",):
        source = os.path.join(os.path.dirname(os.path.dirname(yaml.__file__)), extra)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(site, extra))
    subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
    path = f"{site}:{REPO}"
    check = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={path}", python, "-c",
                            "import exmake.cli, lmdb, yaml, blake3"], capture_output=True)
    return (python, path) if check.returncode == 0 else None


def test_another_user_reuses_a_read_only_workdir_owned_by_root(tmp_path):
    tmp = tempfile.mkdtemp(prefix="exmake-reuse-")
    try:
        os.chmod(tmp, 0o755)
        found = _other_user_python(tmp)
        if found is None:
            pytest.skip("needs root, runuser and a system Python of this version to run as nobody")
        python, path = found
        ci = make(os.path.join(tmp, "ci"))
        ci.run(expect=0)
        ci_work = ci.root / "work"
        subprocess.run(["chmod", "-R", "a-w", str(ci_work)], check=True)
        subprocess.run(["chmod", "-R", "a+rX", str(ci.root)], check=True)
        before = snapshot(ci_work)
        me = make(os.path.join(tmp, "me"), recipe=RECIPE.replace("cat {deps.count}", "cat -A {deps.count}"))
        subprocess.run(["chown", "-R", "nobody", str(me.root)], check=True)
        proc = subprocess.run(["runuser", "-u", "nobody", "--", "env", f"PYTHONPATH={path}", "HOME=/nonexistent",
                               python, "-m", "exmake", "--json", "--reuse-from", str(ci_work)],
                              cwd=me.root, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)["jobs"]
        assert {n: j["state"] for n, j in result.items()} == {"words": "reused", "count": "reused", "report": "built"}
        assert snapshot(ci_work) == before
        assert (me.root / "work" / result["report"]["jobid"] / "report.txt").read_text() == "3$\na$\nbb$\nccc$\n"
    finally:
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def test_show_and_verify_name_the_other_workdir(ci, tmp_path):
    ci_work = ci.root / "work"
    me = make(tmp_path / "me", first=f"reuse_from: [{ci_work}]\n",
              recipe=RECIPE.replace("cat {deps.count}", "cat -A {deps.count}"))
    me.run(expect=0)
    shown = me.run("show", "report", expect=0).out
    assert f"dep      count: count-1 in {ci_work}" in shown and f"dep      words: words-1 in {ci_work}" in shown
    assert "1 of 1 job reproducible" in me.run("verify", "report", expect=0).out
    refused = me.run("show", "words", expect=1)
    assert f"words is words-1 in {ci_work} (`reuse_from:`), not a job of this workdir" in refused.err
    assert me.run("path", "words", expect=0).out.strip() == str(ci_work / "words-1")
    assert f"words   words-1 in {ci_work}" in me.run("status", expect=0).out
    assert f"words: fresh - words-1 in {ci_work}" in me.run("why", "report", expect=0).out
