"""Defects found in review, each kept from coming back by a test."""

import json
import os
import time

from conftest import age
from test_noop_fast_path import FAST, settled


def states(result):
    return {n: j["state"] for n, j in json.loads(result.out)["jobs"].items()}


def test_a_bracket_in_the_project_path_is_no_wildcard(tmp_path):
    from conftest import Project
    project = Project(tmp_path / "t2 [v2]")
    project.recipe('jobs:\n  a:\n    run: "cat {inputs.t} > o"\n    inputs: {t: data/a.txt}\n')
    project.write("data/a.txt", "x\n")
    project.run(expect=0)
    assert project.read("work/a-1/o") == "x\n"


def test_recursive_glob_sees_a_new_nested_file_on_the_fast_path(project):
    settled(project, 'jobs:\n  a:\n    run: "cat {inputs.t} > o"\n    inputs: {t: "data/**"}\n',
            {"data/sub/a.txt": "a\n"})
    project.write("data/sub/b.txt", "b\n")
    age(project.root, 5)
    result = project.run("-v", expect=0)
    assert FAST not in result.out and "input data/sub/b.txt added" in result.out


def test_files_under_a_symlinked_subdirectory_are_inputs(project):
    project.recipe('jobs:\n  a:\n    run: "cat {inputs.t}/linked/v.txt > o"\n    inputs: {t: data}\n')
    project.write("elsewhere/v.txt", "1\n")
    (project.root / "data").mkdir()
    os.symlink("../elsewhere", project.root / "data/linked")
    project.run(expect=0)
    project.write("elsewhere/v.txt", "2\n")
    assert states(project.run("--json", expect=0)) == {"a": "built"}


def test_odd_outputs_a_dangling_link_and_a_fifo(project):
    project.recipe('jobs:\n  link: {run: "ln -s nowhere lock"}\n  fifo: {run: "mkfifo p"}\n'
                   '  other: {run: "echo ok > x"}\n')
    result = project.run("-k", "--json", expect=1, timeout=60)
    assert states(result) == {"link": "built", "fifo": "failed", "other": "built"}
    post = json.loads(project.read("work/link-1/post.json"))
    assert ["lock", "link:nowhere"] in post["outputs"]
    assert "not a regular file" in json.loads(project.read("work/fifo-1/post.json"))["reason"]


def test_gc_never_deletes_a_users_directory_that_looks_like_a_job(project):
    project.recipe('workdir: .\nresults: out\njobs:\n  photos: {run: "echo x > y"}\n')
    project.write("photos-2019/holiday.jpg", "precious")
    project.run(expect=0)
    project.run("gc", "--keep", "0", expect=0)
    assert project.read("photos-2019/holiday.jpg") == "precious"


def test_an_input_holding_the_workdir_does_not_read_it(project):
    project.recipe('jobs:\n  all:\n    run: "ls -R {inputs.here} | wc -l > n"\n    inputs: {here: .}\n')
    project.run(expect=0)
    time.sleep(0.05)
    assert states(project.run("--json", expect=0)) == {"all": "reused"}


def test_a_newline_in_a_resource_is_refused(project):
    project.recipe('jobs:\n  a:\n    run: "true"\n    resources: {partition: "debug\\necho INJECTED"}\n')
    result = project.run("--backend", "slurm", expect=2)
    assert ":4: jobs.a.resources.partition:" in result.err and "control character" in result.err


def test_input_lines_of_a_directory_input(project):
    project.recipe("slices: 2\njobs:\n  n:\n    method: n.py\n    inputs: {d: d}\n")
    project.write("d/a.txt", "1\n2\n")
    project.write("d/b.txt", "3\n")
    project.write("n.py", "def analysis(sliceno, job):\n    return len(list(job.input_lines('d')))\n\n"
                  "def synthesis(analysis_res):\n    return sum(analysis_res)\n")
    project.run(expect=0)
    import pickle
    assert pickle.loads((project.root / "work/n-1/result.pickle").read_bytes()) == 3


def test_import_refuses_entries_the_log_could_not_show(project, tmp_path):
    project.recipe('jobs:\n  a: {run: "true"}\n')
    project.run(expect=0)
    entry = json.loads(project.run("urd", "export").out)
    for bad in ({**entry, "targets": [1]}, {**entry, "jobs": {"a": {"state": "built"}}}):
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps({**bad, "timestamp": "2000-01-01T00:00:00.000000Z"}) + "\n")
        assert "bad.jsonl:1:" in project.run("urd", "import", path, expect=2).err
    assert len(project.run("urd", "default").out.splitlines()) == 1


def test_publishing_a_file_and_a_directory_at_one_path_is_refused(project):
    project.recipe('jobs:\n  a:\n    run: "true"\n    publish: {x: f}\n  b:\n    run: "true"\n'
                   '    publish: {x/y: f}\n')
    assert "clashes with 'x'" in project.run(expect=2).err
    assert not (project.root / "work").exists()


def test_a_noop_build_logs_the_targets_asked_for(project):
    settled(project, 'jobs:\n  a: {run: "echo a > o"}\n  b:\n    run: "cat {deps.a}/o"\n    deps: [a]\n', {})
    project.run("b", expect=0)
    project.run("b", expect=0)
    entry = json.loads(project.run("urd", "default/latest", "--json").out)
    assert entry["targets"] == ["b"]
