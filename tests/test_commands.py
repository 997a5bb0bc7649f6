"""status, why, show, path, init and --help, through the real command line."""

import json
import os

from test_build import CHAIN, make_chain


def test_status_shows_fresh_stale_failed_and_never_built(project):
    project.recipe(CHAIN + """\
  broken:
    run: "exit 1"
""")
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    before = project.run("status", expect=0)
    assert "never built" in before.out
    assert not (project.root / "work").exists()  # status writes nothing
    project.run("-k", expect=1)
    project.write("a.txt", "changed\n")
    lines = {line.split()[1] if not line.startswith("never") else line.split()[2]: line
             for line in project.run("status", expect=0).out.splitlines()[:-1]}
    assert lines["other"].startswith("fresh") and "other-1" in lines["other"]
    assert lines["upper"].startswith("stale") and "input a.txt changed" in lines["upper"]
    assert lines["count"].startswith("stale") and "dependency upper will run" in lines["count"]
    assert lines["broken"].startswith("failed") and "broken-1" in lines["broken"]


def test_status_json(project):
    make_chain(project)
    project.run(expect=0)
    data = json.loads(project.run("status", "--json", expect=0).out)
    assert {name: job["state"] for name, job in data.items()} == {
        "upper": "fresh", "count": "fresh", "other": "fresh"}


def test_why_walks_the_dependencies(project):
    make_chain(project)
    project.run(expect=0)
    project.write("a.txt", "new\n")
    out = project.run("why", "count", expect=0).out.splitlines()
    assert out[0] == "count: stale - dependency upper will run"
    assert out[1] == "  upper: stale - input a.txt changed"


def test_path_and_show(project):
    make_chain(project)
    project.run(expect=0)
    path = project.run("path", "count", expect=0).out.strip()
    assert path == str(project.root / "work/count-1")
    assert project.run("path", "count-1", expect=0).out.strip() == path
    assert project.run("path", "count-LATEST", expect=0).out.strip() == path
    shown = project.run("show", "count", expect=0).out
    assert "job      count-1" in shown and "result   SUCCESS" in shown
    assert "dep      upper: upper-1" in shown and "output   count.txt" in shown
    raw = json.loads(project.run("show", "count-1", "--json", expect=0).out)
    assert raw["post"]["result"] == "SUCCESS" and raw["setup"]["key"]


def test_path_of_a_stale_job_is_exit_1_with_the_reason(project):
    make_chain(project)
    project.run(expect=0)
    project.write("a.txt", "new\n")
    result = project.run("path", "upper", expect=1)
    assert "upper is stale (input a.txt changed)" in result.err


def test_bad_job_references_are_exit_2(project):
    make_chain(project)
    project.run(expect=0)
    assert "no such job directory" in project.run("path", "count-9", expect=2).err
    assert "did you mean 'count'" in project.run("show", "cont", expect=2).err
    assert "is not a job" in project.run("path", "../../etc", expect=2).err


def test_show_a_failed_job_prints_reason_and_stderr(project):
    project.recipe('jobs:\n  bad:\n    run: "echo oops >&2; exit 4"\n')
    project.run(expect=1)
    shown = project.run("show", "bad-1", expect=0).out
    assert "result   FAILURE" in shown and "exit status 4" in shown and "| oops" in shown


def test_init_writes_a_recipe_that_builds(project):
    project.root.mkdir(parents=True)
    assert "wrote Exmakefile" in project.run("init", expect=0).out
    assert project.run("init", expect=2).err.strip().endswith("will not overwrite it")
    project.run(expect=0)
    assert "2 word" in project.read("results/top.txt")


def test_help_teaches(project):
    project.root.mkdir(parents=True)
    top = project.run("--help", expect=0).out
    for word in ("status", "why", "show", "path", "init", "-j N", "--keep-going", "Exit status"):
        assert word in top
    assert "NAME-LATEST" in project.run("path", "--help", expect=0).out


def test_directory_option(project):
    make_chain(project)
    result = project.run("-C", str(project.root), "-f", "Exmakefile", "status", expect=0)
    assert "never built" in result.out
    assert "No such file" in project.run("-C", "/nonexistent", expect=2).err


def test_a_job_named_like_a_command_can_be_built_with_build(project):
    project.recipe('jobs:\n  status: {run: "echo hi"}\n')
    result = project.run("build", "status", "--json", expect=0)
    assert json.loads(result.out)["jobs"]["status"]["state"] == "built"


def test_output_lines_and_summary(project):
    make_chain(project)
    first = project.run(expect=0).out.splitlines()
    assert any(l.startswith("  built   upper-1") and "(no earlier job)" in l for l in first)
    assert first[-1].startswith("exmake: 3 jobs: 3 built in ")
    again = project.run(expect=0).out.splitlines()
    assert "  reused  upper-1" in again and again[-1].startswith("exmake: 3 jobs: 3 reused")
    assert os.path.isdir(project.root / "work/.exmake/lmdb")
