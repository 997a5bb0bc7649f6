"""The rebuilder: one answer to "is this job fresh, and why" for build, -n,
status, why, gc, show, the no-op stamp and watch; and the defects of issue 10
that came from those answers disagreeing."""

import json
import os
import subprocess
import time

from conftest import age, wait_for
from test_noop_fast_path import FAST, settled
from test_watch import Watching


def states(result):
    return states_of(result.out)


def states_of(text):
    return {n: j["state"] for n, j in json.loads(text)["jobs"].items()}


SCRIPT_USING_LIB = """\
from lib.wordlib import shout

def synthesis(job):
    job.json_save(shout("hi"), "v.json")
"""


def test_a_module_in_a_namespace_package_is_part_of_the_identity(project):
    """Defect 1: `from lib.wordlib import f` with lib/ lacking __init__.py."""
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    project.write("m.py", SCRIPT_USING_LIB)
    project.write("lib/wordlib.py", "def shout(s):\n    return s.upper()\n")
    project.run(expect=0)
    assert json.loads(project.read("work/m-1/v.json")) == "HI"
    project.write("lib/wordlib.py", "def shout(s):\n    return s.upper() + '!'\n")
    result = project.run("-v", "--json", expect=0)
    assert states(result) == {"m": "built"}
    assert "module lib/wordlib.py changed" in json.loads(result.out)["jobs"]["m"]["reasons"]
    assert json.loads(project.read("work/m-LATEST/v.json")) == "HI!"


OPTIONAL_IMPORT = """\
try:
    from extra import VALUE
except ImportError:
    VALUE = 0

def synthesis(job):
    job.json_save(VALUE, "v.json")
"""


def test_a_new_local_module_is_seen_by_the_fast_path_dry_run_and_build_alike(project):
    """Defect 9: a module that appears where an import looks made the fast path say
    "reused" while -n said stale."""
    settled(project, "jobs:\n  m:\n    method: m.py\n", {"m.py": OPTIONAL_IMPORT})
    extra = project.write("extra.py", "VALUE = 7\n")
    past = time.time() - 5
    os.utime(extra, (past, past))  # only the new file: everything the stamp recorded is as it was
    dry = project.run("-n", "--json", expect=0)
    assert states(dry) == {"m": "stale"}
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "module extra.py added" in result.out
    assert json.loads(project.read("work/m-LATEST/v.json")) == 7


SLICED = """\
def analysis(sliceno):
    return 1

def synthesis(analysis_res, job):
    job.json_save(sum(analysis_res), "n.json")
"""


def test_a_changed_default_slice_count_is_seen_by_the_fast_path(project):
    """Defect 9: the default slice count (CPUs, or EXMAKE_DEFAULT_SLICES) is in the
    key, so the stamp must not answer for another one."""
    project.recipe("jobs:\n  s:\n    method: s.py\n")
    project.write("s.py", SLICED)
    age(project.root)
    two = {"EXMAKE_DEFAULT_SLICES": "2"}
    project.run(env=two, expect=0)
    assert FAST in project.run("-v", env=two, expect=0).out
    result = project.run("--json", env={"EXMAKE_DEFAULT_SLICES": "3"}, expect=0)
    assert states(result) == {"s": "built"}
    assert json.loads(project.read("work/s-LATEST/n.json")) == 3


def test_a_same_size_rewrite_with_the_mtime_restored_is_seen(project):
    """Defect 10: `rsync --inplace -t` / `cp -p` onto an existing file keep size and
    mtime; only the ctime tells. Both the stamp and the hash cache must see it."""
    settled(project, 'jobs:\n  a:\n    run: "cat {inputs.t} > o"\n    inputs: {t: data.txt}\n',
            {"data.txt": "aaaa\n"})
    path = project.root / "data.txt"
    before = os.stat(path)
    time.sleep(0.05)  # a later ctime than the one recorded
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(b"bbbb\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert states(project.run("-n", "--json", expect=0)) == {"a": "stale"}  # the hash cache
    result = project.run("--json", expect=0)  # the stamp
    assert states(result) == {"a": "built"}
    assert project.read("work/a-LATEST/o") == "bbbb\n"


FAILING = """\
jobs:
  broken:
    run: "echo half > out; exit 3"
  after:
    run: "cat {deps.b}/out > o"
    deps: {b: broken}
  ok:
    run: "echo fine > o"
"""


def test_one_failed_job_does_not_stop_status_dry_run_or_gc(project):
    """Defect 11: after one failed job, status called an unrelated fresh job stale,
    -n listed only some jobs and `gc -n` would delete an unrelated current job."""
    project.recipe(FAILING)
    project.run("-k", expect=1)
    status = json.loads(project.run("status", "--json", expect=0).out)
    assert {n: j["state"] for n, j in status.items()} == {"broken": "failed", "after": "stale",
                                                          "ok": "fresh"}
    assert "last attempt broken-1 failed" in status["broken"]["reasons"]
    assert "dependency b will run" in status["after"]["reasons"]
    assert states(project.run("-n", "--json", expect=0)) == {"broken": "failed", "after": "stale",
                                                              "ok": "fresh"}
    gc = project.run("gc", "-n", "--keep", "0", expect=0)
    assert "ok-1" not in gc.out


def test_a_failed_job_can_be_shown_and_its_next_attempt_names_it(project):
    """Defect 22: `show NAME` refused a failed job, and each new attempt said
    "no earlier job"."""
    project.recipe(FAILING)
    project.run("broken", expect=1)
    shown = project.run("show", "broken", expect=0)
    assert "broken-1" in shown.out and "FAILURE" in shown.out and "exit status 3" in shown.out
    again = project.run("broken", "--json", expect=1)
    reasons = json.loads(again.out)["jobs"]["broken"]["reasons"]
    assert "last attempt broken-1 failed" in reasons and "no earlier job" not in reasons
    assert project.run("path", "broken", expect=1).code == 1  # path never names a failure


def test_verbose_prints_why_a_job_was_reused(project):
    """Defect 23: -v promised reasons for reused jobs and printed none."""
    project.recipe('jobs:\n  a:\n    run: "echo 1 > o"\n')
    project.run(expect=0)
    project.recipe('jobs:\n  a:\n    run: "echo 1 > o"\n# an edit that changes no job\n')
    result = project.run("-v", expect=0)
    assert "reused  a-1" in result.out and "(same code, options and inputs as a-1)" in result.out
    quiet = project.run(expect=0)
    assert "same code" not in quiet.out


BAD_MODULE = "def f(:\n    pass\n"


def test_a_syntax_error_in_an_imported_module_is_exit_2_naming_file_and_line(project):
    """Defect 13: a traceback and exit 1 before."""
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    project.write("m.py", "import helper\n\ndef synthesis(job):\n    return helper.f()\n")
    project.write("helper.py", "X = 1\n" + BAD_MODULE)
    for args in ((), ("-n",), ("status",)):
        result = project.run(*args, expect=2)
        assert "helper.py:2:" in result.err and "Traceback" not in result.err, result
    assert not (project.root / "work" / "m-1").exists()


def test_watch_survives_a_syntax_error_in_an_imported_module(project):
    """Defect 13: `exmake watch` died on it."""
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    project.write("m.py", "import helper\n\ndef synthesis(job):\n    job.json_save(helper.X, 'v.json')\n")
    project.write("helper.py", "X = 1\n")
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        project.write("helper.py", "X = 1\n" + BAD_MODULE)
        watch.wait_for(lambda: "helper.py:2" in watch.log.read_text())
        assert watch.proc.poll() is None
        project.write("helper.py", "X = 2\n")
        watch.wait_for(lambda: "1 built" in watch.summaries()[-1])
        assert json.loads(project.read("work/m-LATEST/v.json")) == 2
    finally:
        watch.stop()


def test_watch_rebuilds_when_a_shadowing_module_appears(project):
    """The watcher watches what the code identity says: a new module where an
    import looks first concerns the job."""
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    project.write("m.py", OPTIONAL_IMPORT)
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        project.write("extra.py", "VALUE = 5\n")
        watch.wait_for(lambda: len(watch.summaries()) >= 2 and "1 built" in watch.summaries()[-1])
        assert json.loads(project.read("work/m-LATEST/v.json")) == 5
    finally:
        watch.stop()


def test_a_record_of_another_format_is_never_reused(project):
    """Records with one owner (exmake.fs.records): a post.json of another format,
    or without the fields a reader needs, reads as missing."""
    project.recipe('jobs:\n  a:\n    run: "echo 1 > o"\n')
    project.run(expect=0)
    post_path = project.root / "work/a-1/post.json"
    post = json.loads(post_path.read_text())
    for bad in ({**post, "format": 2}, {**post, "outputs": "o"}, {**post, "result": "MAYBE"}):
        post_path.write_text(json.dumps(bad))
        assert states(project.run("--json", "-n", expect=0)) == {"a": "stale"}
    post_path.write_text(json.dumps(post))
    assert states(project.run("--json", expect=0)) == {"a": "reused"}


# -- found by reviewing the rebuilder: each a wrong reuse or a crash -----------------

def built_after_edit(project, files, edit, expect_value):
    """Build, apply `edit` ({path: text}), build again: the job must run and see it."""
    for rel, text in files.items():
        project.write(rel, text)
    project.run(expect=0)
    for rel, text in edit.items():
        project.write(rel, text)
    assert states(project.run("--json", expect=0)) == {"m": "built"}
    assert json.loads(project.read("work/m-LATEST/v.json")) == expect_value


def test_a_module_imported_with_importlib_and_a_literal_name_is_followed(project):
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    built_after_edit(project, {
        "m.py": "import importlib\n\ndef synthesis(job):\n"
                "    job.json_save(importlib.import_module('helper').V, 'v.json')\n",
        "helper.py": "V = 1\n"}, {"helper.py": "V = 2\n"}, 2)


def test_star_import_follows_the_submodules_in_all(project):
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    built_after_edit(project, {
        "m.py": "from pkg import *\n\ndef synthesis(job):\n    job.json_save(sub.V, 'v.json')\n",
        "pkg/__init__.py": "__all__ = ['sub']\n", "pkg/sub.py": "V = 1\n"}, {"pkg/sub.py": "V = 2\n"}, 2)


def test_an_entry_point_importing_its_own_package_absolutely(project, tmp_path):
    site = tmp_path / "site"
    for rel, text in {"mypkg/__init__.py": "",
                      "mypkg/count.py": "from mypkg import helpers\n\ndef synthesis(job):\n"
                                        "    job.json_save(helpers.V, 'v.json')\n",
                      "mypkg/helpers.py": "V = 1\n",
                      "mypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n",
                      "mypkg-0.1.dist-info/entry_points.txt": "[exmake.methods]\ncount = mypkg.count\n"}.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    from conftest import REPO
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{site}"}
    project.recipe("jobs:\n  m:\n    method: mypkg:count\n")
    project.run(env=env, expect=0)
    (site / "mypkg/helpers.py").write_text("V = 2\n")  # a development install: same version
    assert states(project.run("--json", env=env, expect=0)) == {"m": "built"}
    assert json.loads(project.read("work/m-LATEST/v.json")) == 2


def test_the_script_runs_the_modules_its_key_was_computed_from(project):
    """The job script's directory comes first on sys.path even when exmake was
    started from it (then it is already on sys.path, behind nothing)."""
    import subprocess
    import sys
    from conftest import exmake_env
    project.recipe("jobs:\n  m:\n    method: methods/m.py\n")
    project.write("methods/m.py", "import helper\n\ndef synthesis(job):\n    job.json_save(helper.W, 'v.json')\n")
    project.write("methods/helper.py", "W = 'methods'\n")
    project.write("helper.py", "W = 'root'\n")
    subprocess.run([sys.executable, "-m", "exmake", "-C", ".."], cwd=project.root / "methods",
                   env=exmake_env(None), check=True, capture_output=True)
    assert json.loads(project.read("work/m-LATEST/v.json")) == "methods"


def test_an_input_edited_while_its_job_runs_is_not_recorded_under_the_old_key(project):
    project.recipe('jobs:\n  j:\n    run: "sleep 1.5; cat {inputs.s} > out.txt"\n    inputs: {s: src.txt}\n')
    project.write("src.txt", "A\n")
    build = project.popen("--json", stdout=subprocess.PIPE)
    wait_for(lambda: (project.root / "work/.exmake/building").exists()
             and any((project.root / "work/.exmake/building").iterdir()))
    time.sleep(0.2)
    project.write("src.txt", "B\n")
    out, _ = build.communicate(timeout=60)
    assert build.returncode == 1 and states_of(out) == {"j": "failed"}
    assert "src.txt changed while the job ran" in json.loads(project.read("work/j-1/post.json"))["reason"]
    project.write("src.txt", "A\n")  # back to what the first key was computed from
    assert states(project.run("--json", expect=0)) == {"j": "built"}
    assert project.read("work/j-LATEST/out.txt") == "A\n"


def test_a_deeply_nested_module_is_read_not_a_traceback(project):
    project.recipe("jobs:\n  m:\n    method: m.py\n")
    project.write("m.py", "import table\n\ndef synthesis(job):\n    job.json_save(table.T, 'v.json')\n")
    project.write("table.py", "T = " + " + ".join(["1"] * 1000) + "\n")
    project.run(expect=0)
    assert json.loads(project.read("work/m-LATEST/v.json")) == 1000


def test_watch_sees_a_glob_input_in_a_project_path_with_wildcard_characters(tmp_path):
    from conftest import Project
    project = Project(tmp_path / "p[1]*")
    project.recipe('jobs:\n  cat:\n    run: "cat {inputs.p} > all"\n    inputs: {p: "parts/*.txt"}\n')
    project.write("parts/a.txt", "a\n")
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        project.write("parts/b.txt", "b\n")
        watch.wait_for(lambda: len(watch.summaries()) >= 2)
        assert project.read("work/cat-LATEST/all") == "a\nb\n"
    finally:
        watch.stop()


def test_watch_sees_a_symlinked_input_pointed_elsewhere(project):
    project.recipe('jobs:\n  j:\n    run: "cat {inputs.s} > out"\n    inputs: {s: src.txt}\n')
    project.write("one.txt", "1\n")
    project.write("two.txt", "2\n")
    os.symlink("one.txt", project.root / "src.txt")
    watch = Watching(project)
    try:
        watch.wait_summaries(1)
        os.symlink("two.txt", project.root / "tmp-link")
        os.rename(project.root / "tmp-link", project.root / "src.txt")  # atomically repointed
        watch.wait_for(lambda: len(watch.summaries()) >= 2)
        assert project.read("work/j-LATEST/out") == "2\n"
    finally:
        watch.stop()
