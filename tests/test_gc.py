"""`exmake gc` through the real command line: what it keeps (current jobs,
result and -LATEST link targets, the jobs of the newest build-log entries,
recent failures), what it removes, that the next build still reuses
everything, and that it never touches anything outside the workdir or
anything a running build may need.
"""

import json
import os
import re
import signal
import subprocess

from conftest import age, running_dirs, wait_for

RECIPE = """\
jobs:
  a:
    run: "echo {options.v} > out.txt; head -c 2000 /dev/zero > pad.bin"
    options: {v: V}
    publish: {a.txt: out.txt}
  b:
    run: "cat {deps.a}/out.txt > b.txt"
    deps: [a]
  c:
    run: "echo c > c.txt"
"""


def recipe(v):
    return RECIPE.replace("V", str(v))


def history(project):
    """a-1/b-1 (v=1, list nightly), a-2/b-2 (v=5), a-3/b-3 (v=2), a-4/b-4 (v=3), c-1;
    the recipe is then set back to v=2 without building, so a-3/b-3 are current
    while a-LATEST, b-LATEST and results/a.txt still point at a-4/b-4."""
    for v, args in [(1, ["--urd", "nightly"]), (5, []), (2, []), (3, [])]:
        project.recipe(recipe(v))
        project.run("-q", *args, expect=0)
    project.recipe(recipe(2))
    assert project.job_dirs() == ["a-1", "a-2", "a-3", "a-4", "b-1", "b-2", "b-3", "b-4", "c-1"]


def removed_lines(out, verb):
    return dict(re.findall(rf"^  {verb} (\S+)\s+(\d+(?:\.\d)? (?:B|KiB))$", out, re.M))



def running_pid(project, name):
    """The pid a running job `name` wrote into its directory."""
    for pid_file in [d / "pid" for d in running_dirs(project.root, f"{name}-*") if (d / "pid").exists()]:
        if pid_file.read_text().strip():
            return int(pid_file.read_text())
    return None


def test_dry_run_lists_what_would_go_with_sizes_and_deletes_nothing(project):
    history(project)
    before = project.job_dirs()
    result = project.run("gc", "--keep", "1", "--dry-run", expect=0)
    assert set(removed_lines(result.out, "would remove")) == {"a-2", "b-2"}
    assert removed_lines(result.out, "would remove")["a-2"].endswith("KiB")  # pad.bin is 2000 bytes
    assert "exmake gc: 2 of 9 job directories, would free" in result.out
    assert project.job_dirs() == before
    assert not (project.root / "work/.exmake/trash").exists()


def test_keep_1_keeps_current_linked_and_newest_logged_jobs(project):
    history(project)
    result = project.run("gc", "--keep", "1", "-v", expect=0)
    assert set(removed_lines(result.out, "remove")) == {"a-2", "b-2"}
    assert project.job_dirs() == ["a-1", "a-3", "a-4", "b-1", "b-3", "b-4", "c-1"]
    kept = dict(re.findall(r"^  keep    (\S+)\s+(.*)$", result.out, re.M))
    assert kept["a-3"] == "current job of a" and kept["c-1"] == "current job of c"
    assert kept["a-4"].startswith("linked from ") and kept["a-4"].endswith("a-LATEST")
    assert kept["a-1"].startswith("in nightly/") and kept["b-1"].startswith("in nightly/")
    assert "exmake gc: 2 of 9 job directories, freed" in result.out


def test_trash_is_empty_after_gc(project):
    history(project)
    project.run("gc", "--keep", "0", expect=0)
    assert list((project.root / "work/.exmake/trash").iterdir()) == []


def test_next_build_after_gc_reuses_everything(project):
    history(project)
    project.run("gc", "--keep", "1", expect=0)
    for v, current in [(2, "a-3"), (3, "a-4")]:
        project.recipe(recipe(v))
        jobs = json.loads(project.run("--json", expect=0).out)["jobs"]
        assert {n: j["state"] for n, j in jobs.items()} == {"a": "reused", "b": "reused", "c": "reused"}
        assert jobs["a"]["jobid"] == current
        assert project.read("results/a.txt") == f"{v}\n"  # the result link resolves


def test_removed_job_is_never_reused_and_its_number_never_reused(project):
    history(project)
    project.run("gc", "--keep", "1", expect=0)
    project.recipe(recipe(5))  # a-2 had v=5; it is gone
    jobs = json.loads(project.run("--json", expect=0).out)["jobs"]
    assert jobs["a"]["state"] == "built" and jobs["a"]["jobid"] == "a-5"
    assert project.read("results/a.txt") == "5\n"


def test_result_link_alone_keeps_its_job(project):
    history(project)
    os.unlink(project.root / "work/a-LATEST")
    result = project.run("gc", "--keep", "0", "-v", expect=0)
    assert project.job_dirs() == ["a-3", "a-4", "b-3", "b-4", "c-1"]
    assert re.search(r"keep    a-4\s+linked from .*results/a\.txt$", result.out, re.M)
    assert project.read("results/a.txt") == "3\n"


def test_latest_link_alone_keeps_its_job(project):
    history(project)
    os.unlink(project.root / "results/a.txt")
    project.run("gc", "--keep", "0", expect=0)
    assert project.job_dirs() == ["a-3", "a-4", "b-3", "b-4", "c-1"]


def test_gc_never_touches_anything_outside_the_workdir(project):
    history(project)
    outside = [project.write("a-9/out.txt", "mine\n"), project.write("stray.txt", "mine\n"),
               project.write("results/a-9/out.txt", "mine\n"), project.write("results/note.txt", "mine\n"),
               project.write("elsewhere/b-7/keep.txt", "mine\n")]
    os.symlink(project.root / "elsewhere/b-7", project.root / "work/b-7")  # a job-like link in the workdir
    project.run("gc", "--keep", "0", expect=0)
    assert all(path.read_text() == "mine\n" for path in outside)
    assert os.path.islink(project.root / "work/b-7")
    assert "a-2" not in project.job_dirs()  # it did collect


def failing_recipe(code):
    return f"""\
        jobs:
          bad:
            run: "exit {{options.code}}"
            options: {{code: {code}}}
          late:
            run: "exit 3"
          slow:
            run: "echo $$ > pid; sleep 30"
        """


def test_failed_job_is_removed_if_older_than_the_newest_build_kept_if_newer(project):
    project.recipe(failing_recipe(1))
    project.run("bad", expect=1)          # bad-1 failed
    project.recipe(failing_recipe(0))
    project.run("bad", expect=0)          # bad-2, the newest logged build
    # A build killed (-9) after `late` failed: late-1 is newer than any log entry.
    proc = project.popen("-k", "-j", "2", "late", "slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = None
    try:
        pid = wait_for(lambda: running_pid(project, "slow"))
        wait_for(lambda: (project.root / "work/late-1/post.json").exists())
        proc.kill()
        proc.wait(timeout=20)
    finally:
        proc.kill()
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL)  # the orphaned `slow` job
            except ProcessLookupError:
                pass
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    result = project.run("gc", "--keep", "1", "-v", expect=0)
    assert "bad-1" in removed_lines(result.out, "remove")
    assert "late-1" not in removed_lines(result.out, "remove")
    assert re.search(r"keep    late-1\s+failed or unfinished, made since the newest build", result.out)
    assert [d for d in project.job_dirs() if not d.startswith("slow")] == ["bad-2", "late-1"]


def test_gc_is_refused_while_a_build_runs(project):
    history(project)
    project.recipe(recipe(2) + '  slow:\n    run: "echo $$ > pid; sleep 30"\n')
    before = project.job_dirs()
    proc = project.popen("slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: running_pid(project, "slow"))
        result = project.run("gc", "--keep", "0")
        assert result.code != 0 and "a build is running" in result.err, result
        assert [d for d in project.job_dirs() if not d.startswith("slow-")] == before
        assert not (project.root / "work/.exmake/trash").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 130
    project.run("gc", "--keep", "0", expect=0)  # once the build is over, gc runs


def test_negative_keep_is_a_usage_error(project):
    history(project)
    result = project.run("gc", "--keep", "-1", expect=2)
    assert "--keep -1: must be 0 or more" in result.err
    assert len(project.job_dirs()) == 9


EARLY_CUTOFF = """\
jobs:
  words:
    run: "tr -s ' ' '\\\\n' < {inputs.text} > words.txt"
    inputs: {text: book.txt}
  count:
    run: "ln -s {deps.words}/words.txt words.txt; wc -l < {deps.words}/words.txt > n.txt"
    deps: [words]
"""


def test_gc_keeps_the_dependencies_a_fresh_job_points_into(project):
    # Issue 10, defect 7: with early cutoff, count-1 stays fresh after words
    # re-ran (words-2) and wrote the same words.txt; count-1 was made from
    # words-1, and gc removed words-1, leaving count-1's output dangling.
    project.recipe(EARLY_CUTOFF)
    project.write("book.txt", "in the beginning\n")
    project.run("-q", expect=0)
    project.write("book.txt", "in  the   beginning\n")  # other bytes, the same words
    jobs = json.loads(project.run("--json", expect=0).out)["jobs"]
    assert (jobs["words"]["state"], jobs["words"]["jobid"]) == ("built", "words-2")
    assert (jobs["count"]["state"], jobs["count"]["jobid"]) == ("reused", "count-1")  # early cutoff
    result = project.run("gc", "--keep", "0", "-v", expect=0)
    assert re.search(r"^  keep    words-1\s+dependency of count-1$", result.out, re.M), result.out
    assert project.job_dirs() == ["count-1", "words-1", "words-2"]
    assert project.read("work/count-1/words.txt") == "in\nthe\nbeginning\n"  # the link resolves
    jobs = json.loads(project.run("--json", expect=0).out)["jobs"]
    assert {n: j["state"] for n, j in jobs.items()} == {"words": "reused", "count": "reused"}


def test_gc_never_removes_a_users_empty_directories_in_workdir_dot(project):
    # Issue 10, defect 17: with `workdir: .`, gc's sweep of empty `<name>-<N>`
    # directories took a user's empty backup-2024/ and mount-1/. Only
    # reservations that exmake recorded may go.
    project.recipe('workdir: .\nresults: out\njobs:\n  mount: {run: "echo x > y"}\n')
    for name in ("backup-2024", "mount-1", "photos-7"):
        (project.root / name).mkdir(parents=True)
    result = json.loads(project.run("--json", expect=0).out)
    assert result["jobs"]["mount"]["jobid"] == "mount-2"  # mount-1 is taken: the user's
    project.run("gc", "--keep", "0", expect=0)
    for name in ("backup-2024", "mount-1", "photos-7"):
        assert (project.root / name).is_dir(), name
    assert (project.root / "mount-2/y").exists()


def test_gc_removes_a_reservation_a_killed_build_recorded(project):
    project.recipe('jobs:\n  a: {run: "echo x > y"}\n')
    project.run(expect=0)
    # What a build killed after reserving a-2 leaves: the empty reservation and
    # its (unlocked) building directory.
    (project.root / "work/a-2").mkdir()
    (project.root / "work/.exmake/building/a-2").mkdir(parents=True)
    project.run("gc", expect=0)
    assert not (project.root / "work/a-2").exists()
    assert not (project.root / "work/.exmake/building/a-2").exists()
    assert project.job_dirs() == ["a-1"]


def test_gc_keeps_a_users_directory_holding_a_setup_json_of_its_own(project):
    """Second review of issue 10: with `workdir: .`, `experiment-3/setup.json` made a
    user's directory look like a job, and gc removed it."""
    project.recipe('workdir: .\nresults: out\njobs:\n  hello: {run: "echo x > y"}\n')
    project.write("experiment-3/setup.json", '{"learning_rate": 0.1}\n')
    project.write("experiment-3/results.csv", "epoch,loss\n1,0.5\n")
    age(project.root, 3600)
    project.run(expect=0)
    listed = project.run("gc", "-n", "--keep", "0", expect=0)
    assert "experiment-3" not in listed.out
    project.run("gc", "--keep", "0", expect=0)
    assert project.read("experiment-3/results.csv") == "epoch,loss\n1,0.5\n"
