"""Regressions from the review of issue 18: the stale-result pass and
`exmake clean` touch only links `publish:` made, and `clean --workdir`
deletes nothing exmake did not make."""

import os

# b's output is a symlink into its deps/ (a job's own symlink output); c publishes.
CHAIN = """\
results: {results}
jobs:
  a: {{run: "echo hi > a.txt", outputs: [a.txt]}}
  b: {{run: "ln -s {{deps.a}} alink", deps: [a], outputs: [alink]}}
  c: {{run: "cat {{deps.b}}/alink/a.txt > c.txt{extra}", deps: [b], outputs: [c.txt], publish: {{c.txt: c.txt}}}}
"""


def links_in(root):
    """{path relative to root: target} of every symlink under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                found[os.path.relpath(path, root)] = os.readlink(path)
    return found


def test_results_containing_the_workdir_leaves_job_directories_and_latest_links_alone(project):
    for results in (".", "work"):
        project.recipe(CHAIN.format(results=results, extra=""))
        project.run(expect=0)
        inside = {k: v for k, v in links_in(project.root / "work").items() if not k.startswith("c.txt")}
        assert "b-1/alink" in inside and "a-LATEST" in inside
        project.recipe(CHAIN.format(results=results, extra="; echo v2"))  # c runs again: the stale pass runs
        project.run(expect=0)
        after = links_in(project.root / "work")
        assert {k: after.get(k) for k in inside if k != "c-LATEST"} == {k: v for k, v in inside.items() if k != "c-LATEST"}
        assert after["c-LATEST"] == "c-2"
        assert project.read("work/b-1/alink/a.txt") == "hi\n"
        kept = {k for k in after if not k.endswith("-LATEST") and k != "c.txt"}
        assert {"b-1/alink", "b-1/deps/a", "c-2/deps/b"} <= kept
        published = project.root / ("c.txt" if results == "." else "work/c.txt")
        assert published.read_text() == "hi\n"
        out = project.run("clean", expect=0).out
        assert "b-1" not in out and "deps" not in out, out
        assert not published.exists()
        assert project.read("work/b-1/alink/a.txt") == "hi\n"
        assert {k for k in links_in(project.root / "work") if not k.endswith("-LATEST")} == kept
        # The workdir holds only exmake's: it may go; the project root (the results) stays.
        assert "deleted work" in project.run("clean", "--workdir", "--yes", expect=0).out
        assert sorted(os.listdir(project.root)) == ["Exmakefile"]


def test_clean_workdir_refuses_a_directory_holding_a_users_files(project):
    project.write("mydata/thesis.tex", "precious\n")
    project.recipe('workdir: mydata\njobs:\n  a: {run: "echo hi > a.txt", outputs: [a.txt]}\n')
    project.run(expect=0)
    (project.root / "mydata/.batch/20261202-150000-1").mkdir(parents=True)  # a cluster build's: exmake's
    err = project.run("clean", "--workdir", "--yes", expect=2).err
    assert "(thesis.tex)" in err and "did not make" in err
    assert project.read("mydata/thesis.tex") == "precious\n"
    assert (project.root / "mydata/a-1/a.txt").exists()
    (project.root / "mydata/thesis.tex").unlink()  # only exmake's left: it may go
    assert "deleted" in project.run("clean", "--workdir", "--yes", expect=0).out
    assert not (project.root / "mydata").exists()


def test_clean_workdir_refuses_another_project_used_as_workdir(project):
    other = project.root / "B"
    project.write("B/Exmakefile", 'workdir: .\njobs:\n  b: {run: "echo b > b.txt", outputs: [b.txt]}\n')
    project.write("B/analysis.py", "source\n")
    project.run("-f", str(other / "Exmakefile"), expect=0)
    project.write("A/Exmakefile", 'workdir: ../B\njobs:\n  a: {run: "echo a > a.txt", outputs: [a.txt]}\n')
    err = project.run("-f", str(project.root / "A/Exmakefile"), "clean", "--workdir", "--yes", expect=2).err
    assert "Exmakefile" in err and "analysis.py" in err
    assert project.read("B/analysis.py") == "source\n" and (other / "b-1/b.txt").exists()


def test_clean_workdir_refuses_a_workdir_shared_with_another_recipe(project):
    project.recipe('jobs:\n  x: {run: "echo x > x.txt", outputs: [x.txt], publish: {x.txt: x.txt}}\n')
    project.write("Other.yaml", 'jobs:\n  y: {run: "echo y > y.txt", outputs: [y.txt], publish: {y.txt: y.txt}}\n')
    project.run(expect=0)
    project.run("-f", "Other.yaml", expect=0)
    err = project.run("-f", "Other.yaml", "clean", "--workdir", "--yes", expect=2).err
    assert str(project.root / "Exmakefile") in err and "another recipe" in err
    assert project.read("results/x.txt") == "x\n" and project.read("results/y.txt") == "y\n"
    assert (project.root / "work/x-1/x.txt").exists()


def test_prune_and_clean_through_a_symlinked_path_know_their_own_jobs(project):
    real = project.root / "real"
    real.mkdir(parents=True)
    os.symlink("real", project.root / "alias")
    both = ('jobs:\n  a: {run: "echo a > a.txt", outputs: [a.txt], publish: {a.txt: a.txt}}\n'
            '  b: {run: "echo b > b.txt", outputs: [b.txt], publish: {b.txt: b.txt}}\n')
    project.write("real/Exmakefile", both)
    project.run("-f", str(real / "Exmakefile"), expect=0)
    project.write("real/Exmakefile", both.split("  b:")[0].replace("a:", "b:").replace("a.txt", "b.txt")
                  .replace("echo a", "echo b"))
    through = str(project.root / "alias/Exmakefile")
    out = project.run("-f", through, expect=0).out
    assert "unpublished" in out and "results/a.txt" in out, out
    assert not os.path.lexists(real / "results/a.txt")
    out = project.run("-f", through, "clean", expect=0).out
    assert "1 result," in out, out
    assert not os.path.lexists(real / "results/b.txt")
