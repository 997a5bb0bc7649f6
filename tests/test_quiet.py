"""`-q` is quiet as `make -s`: a build that succeeds prints nothing at all;
a failure still prints the failed job, its log's tail and the summary."""

from conftest import age

RECIPE = """\
jobs:
  words:
    run: "echo one two > words.txt"
    publish: {words.txt: words.txt}
  count:
    run: "wc -w < {deps.words}/words.txt > count.txt"
    deps: [words]
    resources: {cores: 64}
"""


def test_a_successful_build_prints_nothing_built_reused_or_unpublished(project):
    project.recipe(RECIPE)
    first = project.run("-q", expect=0)
    # `count` asks for more cores than -j gives: the note is not printed either.
    assert (first.out, first.err) == ("", "")
    assert project.read("work/count-LATEST/count.txt").strip() == "2"
    age(project.root)
    assert project.run("-q", expect=0).out == ""        # the no-op fast path
    assert project.run("-q", "-B", expect=0).out == ""  # everything runs again
    # A job taken out of the recipe loses its results, silently under -q ...
    project.recipe(RECIPE.replace("words", "letters"))
    quiet = project.run("-q", expect=0)
    assert (quiet.out, quiet.err) == ("", "")
    assert not (project.root / "results/words.txt").exists()
    assert (project.root / "results/letters.txt").exists()
    # ... and says so without it.
    project.recipe(RECIPE)
    assert "unpublished results/letters.txt (job letters is no longer in the recipe)" in \
        project.run(expect=0).out


def test_a_failure_still_prints_the_failed_job_its_log_and_the_summary(project):
    project.recipe("""\
        jobs:
          fine: {run: "echo fine > f.txt"}
          broken: {run: "echo the reason it broke >&2; exit 3"}
        """)
    result = project.run("-q", "-k", expect=1)
    lines = result.out.splitlines()
    assert lines[0].startswith("  FAILED  broken-1") and "exit status 3" in lines[0]
    assert any("log: work/broken-1/stderr.txt" in line for line in lines)
    assert any(line.strip() == "| the reason it broke" for line in lines)
    assert lines[-1].startswith("exmake: 2 jobs: 1 built, 1 failed in ")
    assert "fine" not in result.out  # the job that worked is not mentioned
    assert "exmake: a job failed" in result.err
    # Without -q the successful job has its line too.
    assert "built   fine" in project.run("-k", "-B", expect=1).out
