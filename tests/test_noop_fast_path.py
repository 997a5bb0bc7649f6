"""The whole-build no-op fast path (exmake.noop, exmake.fs.stamp) is never wrong.

A stamp is written only when every input is older than the racy window, so
these tests age their files first, then check that each kind of change is
seen and leads to the same result as a full build.
"""

import json
import os

from conftest import age

FAST = "nothing changed since the last build"



def settled(project, recipe, files):
    project.recipe(recipe)
    for rel, text in files.items():
        project.write(rel, text)
    age(project.root)
    project.run(expect=0)
    result = project.run("-v", expect=0)
    assert FAST in result.out, result
    return result


RECIPE = """\
jobs:
  cat:
    run: "cat {inputs.parts} > all.txt"
    inputs: {parts: "parts/*.txt"}
    outputs: [all.txt]
    publish: {all.txt: all.txt}
  size:
    run: "wc -c < {deps.cat}/all.txt > size.txt"
    deps: [cat]
"""
FILES = {"parts/a.txt": "a\n", "parts/b.txt": "b\n"}


def test_unchanged_build_takes_the_fast_path_and_reports_every_job(project):
    result = settled(project, RECIPE, FILES)
    assert "  reused  cat-1" in result.out and "  reused  size-1" in result.out
    data = json.loads(project.run("--json", expect=0).out)
    assert data["status"] == "SUCCESS"
    assert {n: j["state"] for n, j in data["jobs"].items()} == {"cat": "reused", "size": "reused"}


def test_changed_input_content_is_seen(project):
    settled(project, RECIPE, FILES)
    project.write("parts/a.txt", "A\n")
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "built   cat-2" in result.out
    assert project.read("results/all.txt") == "A\nb\n"


def test_new_file_matching_a_glob_is_seen(project):
    settled(project, RECIPE, FILES)
    project.write("parts/c.txt", "c\n")
    age(project.root, 5)  # even with an old mtime, the directory listing changed
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "input parts/c.txt added" in result.out


def test_edited_recipe_is_seen(project):
    settled(project, RECIPE, FILES)
    project.recipe(RECIPE.replace("wc -c", "wc -l"))
    assert "command changed" in project.run("-v", expect=0).out


def test_deleted_job_directory_is_rebuilt(project):
    import shutil
    settled(project, RECIPE, FILES)
    shutil.rmtree(project.root / "work/size-1")
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "built   size-2" in result.out


def test_deleted_result_link_is_published_again(project):
    settled(project, RECIPE, FILES)
    os.unlink(project.root / "results/all.txt")
    assert FAST not in project.run("-v", expect=0).out
    assert project.read("results/all.txt") == "a\nb\n"


def test_moved_latest_link_is_restored(project):
    settled(project, RECIPE, FILES)
    os.unlink(project.root / "work/cat-LATEST")
    assert FAST not in project.run("-v", expect=0).out
    assert os.readlink(project.root / "work/cat-LATEST") == "cat-1"


def test_latest_pointed_at_another_finished_job_is_seen(project):
    """The fast path stats `<name>-LATEST/post.json` through the link: a LATEST
    re-aimed at another complete job of the same name (by hand, or by another
    recipe sharing the workdir) must not pass for the one the build used."""
    import shutil
    settled(project, RECIPE, FILES)
    shutil.copytree(project.root / "work/size-1", project.root / "work/size-7", symlinks=True)
    os.unlink(project.root / "work/size-LATEST")
    os.symlink("size-7", project.root / "work/size-LATEST")
    assert FAST not in project.run("-v", expect=0).out
    assert os.readlink(project.root / "work/size-LATEST") == "size-1"


def test_other_targets_have_their_own_stamp(project):
    settled(project, RECIPE, FILES)
    result = project.run("-v", "cat", expect=0)
    assert FAST not in result.out  # first build of just `cat`
    assert FAST in project.run("-v", "cat", expect=0).out


def test_fresh_files_do_not_get_a_stamp(project):
    project.recipe(RECIPE)
    for rel, text in FILES.items():
        project.write(rel, text)
    project.run(expect=0)
    # Inputs written within the racy window: their signature proves nothing yet.
    assert FAST not in project.run("-v", expect=0).out


def test_custom_workdir_is_found(project):
    settled(project, "workdir: 'build dir'  # quoted, with a comment\n" + RECIPE, FILES)
    assert (project.root / "build dir/cat-1/all.txt").exists()


def test_dry_run_and_force_never_take_the_fast_path(project):
    settled(project, RECIPE, FILES)
    assert "fresh   cat-1" in project.run("-n", expect=0).out
    assert "built   cat-2" in project.run("-B", expect=0).out


def test_job_script_and_local_module_edits_are_seen(project):
    script = "from helper import VALUE\n\ndef synthesis(job):\n    job.json_save(VALUE, 'v.json')\n"
    settled(project, "jobs:\n  m:\n    method: m.py\n",
            {"m.py": script, "helper.py": "VALUE = 1\n"})
    project.write("helper.py", "VALUE = 2\n")
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "module helper.py changed" in result.out
    assert project.read("work/m-LATEST/v.json").strip() == "2"


def test_status_is_answered_from_the_stamp_and_still_sees_changes(project):
    settled(project, RECIPE, FILES)
    assert project.run("status", expect=0).out.splitlines()[:2] == [
        "fresh        cat   cat-1", "fresh        size  size-1"]
    project.write("parts/a.txt", "changed\n")
    out = project.run("status", expect=0).out
    assert "stale" in out and "input parts/a.txt changed" in out


def test_the_noop_path_imports_nothing_heavy(project):
    """DESIGN: the no-op path must not import YAML, watchdog, tqdm or the cluster backends."""
    import subprocess
    import sys
    from conftest import exmake_env
    settled(project, RECIPE, FILES)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "exmake"], cwd=project.root,
                          capture_output=True, text=True, env=exmake_env(None), timeout=60)
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "exmake.noop" in imported
    for heavy in ("yaml", "watchdog", "tqdm", "exmake.backends.slurm", "exmake.recipe", "exmake.build"):
        assert heavy not in imported, heavy
