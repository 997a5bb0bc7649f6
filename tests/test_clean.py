"""`exmake clean` (results and -LATEST links go, job directories stay),
`exmake clean --workdir --yes`, and stale results going at the next build."""

import json
import os

from conftest import wait_for

RECIPE = """\
jobs:
  words:
    run: "echo one two three > words.txt"
    publish: {words.txt: words.txt}
  per:
    foreach: {v: [a, b]}
    run: "echo {each.v} > v.txt"
    publish: {"per/{each.v}.txt": v.txt}
  count:
    run: "wc -w < {deps.words}/words.txt > count.txt"
    deps: [words]
    publish: {count.txt: count.txt}
"""


def states(result):
    return {name: job["state"] for name, job in json.loads(result.out)["jobs"].items()}


def entries(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_clean_removes_results_and_latest_links_and_the_next_build_runs_nothing(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    jobs = project.job_dirs()
    assert jobs == ["count-1", "per@a-1", "per@b-1", "words-1"]
    out = project.run("clean", expect=0).out
    assert out.splitlines() == [
        "  removed results/count.txt",
        "  removed results/per/a.txt",
        "  removed results/per/b.txt",
        "  removed results/words.txt",
        "  removed work/count-LATEST",
        "  removed work/per@a-LATEST",
        "  removed work/per@b-LATEST",
        "  removed work/words-LATEST",
        "exmake clean: 4 results, 4 -LATEST links removed; job directories kept "
        "(the next build re-links them without running)",
    ]
    assert not (project.root / "results").exists()
    assert not any(e.endswith("-LATEST") for e in entries(project.root / "work"))
    assert project.job_dirs() == jobs
    again = project.run("--json", expect=0)
    assert set(states(again).values()) == {"reused"}
    assert project.job_dirs() == jobs
    assert project.read("results/count.txt").strip() == "3"
    assert os.readlink(project.root / "work/per@b-LATEST") == "per@b-1"
    # Nothing left to clean is no error.
    project.run("clean", expect=0)
    assert "0 results, 0 -LATEST links removed" in project.run("clean", expect=0).out


def test_clean_leaves_what_another_recipe_published_in_a_shared_results_directory(project):
    project.recipe(RECIPE)
    project.write("other.yaml", "jobs:\n  theirs:\n    run: \"echo x > x.txt\"\n"
                                "    publish: {theirs.txt: x.txt}\n")
    project.run(expect=0)
    project.run("-f", "other.yaml", expect=0)
    project.run("clean", expect=0)
    assert entries(project.root / "results") == ["theirs.txt"]
    assert "theirs-LATEST" in entries(project.root / "work")


def test_clean_workdir_needs_yes_and_then_deletes_the_workdir(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    refused = project.run("clean", "--workdir", expect=2)
    assert "add --yes" in refused.err
    assert (project.root / "results/words.txt").exists() and project.job_dirs()  # nothing done
    # A clean killed while deleting left its renamed workdir beside: it goes too.
    (project.root / ".work.exmake-deleting-12345/words-9").mkdir(parents=True)
    out = project.run("clean", "--workdir", "--yes", expect=0).out
    assert out.splitlines()[-1] == "exmake clean: 4 results, 0 -LATEST links removed; deleted work"
    assert entries(project.root) == ["Exmakefile"]
    assert set(states(project.run("--json", expect=0)).values()) == {"built"}


def test_clean_workdir_refuses_a_workdir_that_holds_the_recipe_or_is_not_exmakes(project):
    project.recipe("workdir: .\nresults: out\njobs:\n  a:\n    run: \"echo a > a.txt\"\n    publish: {a.txt: a.txt}\n")
    project.write("mine.txt", "the user's own file\n")
    project.run(expect=0)
    err = project.run("clean", "--workdir", "--yes", expect=2).err
    assert "holds the recipe" in err
    assert (project.root / "mine.txt").exists() and (project.root / "out/a.txt").exists()
    project.run("clean", expect=0)  # results and links only: fine here
    assert (project.root / "a-1/a.txt").exists() and not (project.root / "out").exists()
    # A directory named as the workdir that exmake never made is left alone.
    project.recipe("workdir: stuff\njobs:\n  a: {run: \"true\"}\n")
    project.write("stuff/precious.txt", "keep me\n")
    assert "not a workdir exmake made" in project.run("clean", "--workdir", "--yes", expect=2).err
    assert project.read("stuff/precious.txt") == "keep me\n"
    # No workdir at all: nothing to delete, no error.
    project.recipe("workdir: never\njobs:\n  a: {run: \"true\"}\n")
    assert "no workdir never" in project.run("clean", "--workdir", "--yes", expect=0).out


def test_clean_refuses_while_a_build_runs(project):
    go = project.root.parent / "go"
    project.recipe(f'jobs:\n  slow:\n    run: "touch started; while [ ! -e {go} ]; do sleep 0.05; done"\n')
    build = project.popen("-q")
    try:
        wait_for(lambda: (project.root / "work/slow-1/started").exists(), timeout=60)
        result = project.run("clean", expect=2)
        assert "a build is running" in result.err
    finally:
        go.touch()
        assert build.wait(timeout=60) == 0


def test_a_job_taken_out_or_a_publish_entry_dropped_unpublishes_at_the_next_build(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    project.recipe(RECIPE.replace("publish: {count.txt: count.txt}", "publish: {total.txt: count.txt}")
                   .replace('    foreach: {v: [a, b]}', '    foreach: {v: [a]}'))
    out = project.run(expect=0).out
    assert "  unpublished results/count.txt (job count no longer publishes it)" in out
    assert "  unpublished results/per/b.txt (job per@b is no longer in the recipe)" in out
    assert entries(project.root / "results") == ["per", "total.txt", "words.txt"]
    assert entries(project.root / "results/per") == ["a.txt"]
    no_words = RECIPE.split("  per:")[0].split("  words:")[0] + "  per:" + RECIPE.split("  per:")[1]
    no_words = no_words.replace('    deps: [words]\n', '').replace('{deps.words}/words.txt', '/dev/null')
    out = project.run("-f", project.write("Exmakefile", no_words), expect=0).out
    assert "  unpublished results/words.txt (job words is no longer in the recipe)" in out
    assert not (project.root / "results/words.txt").exists()
