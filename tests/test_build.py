"""The build: reuse, exact rebuilds, early cutoff, parallelism, -k, -n, -B, failures."""

import json
import os
import time

CHAIN = """\
jobs:
  upper:
    run: "tr a-z A-Z < {inputs.text} > upper.txt"
    inputs: {text: a.txt}
    outputs: [upper.txt]
  count:
    run: "wc -c < {deps.upper}/upper.txt > count.txt"
    deps: [upper]
    outputs: [count.txt]
  other:
    run: "cat {inputs.text} > copy.txt"
    inputs: {text: b.txt}
    outputs: [copy.txt]
"""


def states(result):
    return {name: job["state"] for name, job in json.loads(result.out)["jobs"].items()}


def make_chain(project):
    project.recipe(CHAIN)
    project.write("a.txt", "hello\n")
    project.write("b.txt", "other\n")


def test_first_build_runs_everything_second_reuses_everything(project):
    make_chain(project)
    first = project.run("--json", expect=0)
    assert states(first) == {"upper": "built", "count": "built", "other": "built"}
    assert project.read("work/count-1/count.txt").strip() == "6"
    second = project.run("--json", expect=0)
    assert states(second) == {"upper": "reused", "count": "reused", "other": "reused"}
    assert project.job_dirs() == ["count-1", "other-1", "upper-1"]


def test_touch_without_change_rebuilds_nothing(project):
    make_chain(project)
    project.run(expect=0)
    path = project.root / "a.txt"
    later = time.time() + 5
    os.utime(path, (later, later))
    assert set(states(project.run("--json", expect=0)).values()) == {"reused"}


def test_content_change_rebuilds_exactly_the_affected_jobs(project):
    make_chain(project)
    project.run(expect=0)
    project.write("a.txt", "hello world\n")
    result = project.run("--json", expect=0)
    assert states(result) == {"upper": "built", "count": "built", "other": "reused"}
    jobs = json.loads(result.out)["jobs"]
    assert jobs["upper"]["reasons"] == ["input a.txt changed"]
    assert jobs["count"]["reasons"] == ["dependency upper produced new output"]
    assert project.read("work/count-LATEST/count.txt").strip() == "12"


def test_early_cutoff_identical_upstream_output_reuses_dependents(project):
    make_chain(project)
    project.run(expect=0)
    project.write("a.txt", "HELLO\n")  # upper-cases to the same bytes
    assert states(project.run("--json", expect=0)) == {
        "upper": "built", "count": "reused", "other": "reused"}


def test_switching_an_option_back_reuses_the_earlier_job_directory(project):
    recipe = """\
    jobs:
      head:
        run: "seq 1 100 | head -n {options.n} > out.txt"
        options: {n: %d}
    """
    project.recipe(recipe % 3)
    project.run(expect=0)
    project.recipe(recipe % 5)
    changed = project.run("--json", expect=0)
    assert json.loads(changed.out)["jobs"]["head"]["reasons"] == ["option n: 3 -> 5"]
    project.recipe(recipe % 3)
    back = json.loads(project.run("--json", expect=0).out)["jobs"]["head"]
    assert back["state"] == "reused" and back["jobid"] == "head-1"
    assert os.readlink(project.root / "work/head-LATEST") == "head-1"
    assert project.job_dirs() == ["head-1", "head-2"]


def test_command_change_is_a_reason(project):
    project.recipe('jobs:\n  a:\n    run: "echo one > x"\n')
    project.run(expect=0)
    project.recipe('jobs:\n  a:\n    run: "echo two > x"\n')
    job = json.loads(project.run("--json", expect=0).out)["jobs"]["a"]
    assert job["reasons"] == ["command changed"]


def test_parallel_jobs_really_overlap(project):
    # Each job records when it started and ended; with -j 2 the intervals overlap.
    project.recipe("""\
    jobs:
      a: {run: "date +%s.%N > start; sleep 1; date +%s.%N > end"}
      b: {run: "date +%s.%N > start; sleep 1; date +%s.%N > end"}
    """)
    started = time.monotonic()
    project.run("-j", "2", expect=0)
    elapsed = time.monotonic() - started
    a = [float(project.read(f"work/a-1/{f}")) for f in ("start", "end")]
    b = [float(project.read(f"work/b-1/{f}")) for f in ("start", "end")]
    assert a[0] < b[1] and b[0] < a[1], (a, b)
    assert elapsed < 1.9 + 1.0  # not two seconds of sleeping in a row plus start-up


def test_j1_runs_one_at_a_time(project):
    project.recipe("""\
    jobs:
      a: {run: "date +%s.%N > start; sleep 0.3; date +%s.%N > end"}
      b: {run: "date +%s.%N > start; sleep 0.3; date +%s.%N > end"}
    """)
    project.run("-j", "1", expect=0)
    a = [float(project.read(f"work/a-1/{f}")) for f in ("start", "end")]
    b = [float(project.read(f"work/b-1/{f}")) for f in ("start", "end")]
    assert a[1] <= b[0] or b[1] <= a[0]


FAILING = """\
jobs:
  bad:
    run: "echo about to fail >&2; exit 3"
  after_bad:
    run: "echo never > x"
    deps: [bad]
  independent:
    run: "sleep 0.2; echo fine > x"
"""


def test_failure_stops_new_jobs_and_exits_1(project):
    project.recipe(FAILING)
    result = project.run("-j", "1", expect=1)
    assert "FAILED  bad-1" in result.out and "exit status 3" in result.out
    assert "log: work/bad-1/stderr.txt" in result.out
    assert "| about to fail" in result.out
    assert not (project.root / "work/after_bad-1").exists()


def test_keep_going_runs_independent_jobs_and_skips_dependents(project):
    project.recipe(FAILING)
    result = project.run("-k", "--json", expect=1)
    assert states(result) == {"bad": "failed", "after_bad": "skipped", "independent": "built"}
    assert json.loads(result.out)["status"] == "FAILURE"


def test_failed_job_directory_is_kept_and_never_reused(project):
    project.recipe(FAILING)
    project.run("bad", expect=1)
    post = json.loads(project.read("work/bad-1/post.json"))
    assert post["result"] == "FAILURE" and post["exit_code"] == 3
    assert post["stderr_tail"] == ["about to fail"]
    assert project.run("bad", expect=1)  # runs again, into a new directory
    assert project.job_dirs("bad") == ["bad-1", "bad-2"]
    assert not (project.root / "work/bad-LATEST").exists()


def test_missing_declared_output_fails_naming_it(project):
    project.recipe('jobs:\n  a:\n    run: "echo > present"\n    outputs: [present, absent.txt]\n')
    result = project.run(expect=1)
    assert "declared output missing: absent.txt" in result.out


def test_dry_run_writes_nothing_and_gives_reasons(project):
    make_chain(project)
    result = project.run("-n", expect=0)
    assert "stale   upper" in result.out and "(no earlier job)" in result.out
    assert not (project.root / "work").exists()
    assert not (project.root / "results").exists()
    project.run(expect=0)
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    project.write("a.txt", "changed\n")
    dry = project.run("-n", "--json", expect=0)
    assert states(dry) == {"upper": "stale", "count": "stale", "other": "fresh"}
    assert json.loads(dry.out)["jobs"]["count"]["reasons"] == ["dependency upper will run"]
    after = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    assert before == after


def test_always_make_forces_every_job(project):
    make_chain(project)
    project.run(expect=0)
    result = project.run("-B", "--json", expect=0)
    assert set(states(result).values()) == {"built"}
    assert json.loads(result.out)["jobs"]["upper"]["reasons"] == ["forced (-B)"]


def test_targets_build_only_what_they_need(project):
    make_chain(project)
    result = project.run("count", "--json", expect=0)
    assert set(states(result)) == {"upper", "count"}


def test_default_targets(project):
    project.recipe(CHAIN + "default: [other]\n")
    project.write("a.txt", "x")
    project.write("b.txt", "y")
    assert set(states(project.run("--json", expect=0))) == {"other"}


def test_publish_makes_relative_symlinks_that_follow_the_current_job(project):
    project.recipe("""\
    jobs:
      a:
        run: "cat {inputs.t} > out.txt"
        inputs: {t: t.txt}
        publish: {deep/out.txt: out.txt}
    """)
    project.write("t.txt", "one\n")
    project.run(expect=0)
    link = project.root / "results/deep/out.txt"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.read_text() == "one\n"
    project.write("t.txt", "two\n")
    project.run(expect=0)
    assert link.read_text() == "two\n"
    project.write("t.txt", "one\n")
    project.run(expect=0)  # switching back re-points the link at a-1
    assert os.readlink(link).endswith("work/a-1/out.txt")


def test_job_directory_records(project):
    make_chain(project)
    project.run(expect=0)
    setup = json.loads(project.read("work/count-1/setup.json"))
    post = json.loads(project.read("work/count-1/post.json"))
    assert setup["jobid"] == "count-1" and setup["deps"]["upper"]["jobid"] == "upper-1"
    assert setup["step"]["run"] == "wc -c < {deps.upper}/upper.txt > count.txt"
    assert post["result"] == "SUCCESS" and post["exit_code"] == 0
    assert [p for p, _ in post["outputs"]] == ["count.txt"]
    assert post["duration"] >= 0 and post["start"] <= post["end"]
    assert not list((project.root / "work/.exmake/building").iterdir())


def test_undeclared_outputs_are_every_file_the_job_wrote(project):
    project.recipe('jobs:\n  a:\n    run: "echo 1 > one; mkdir sub; echo 2 > sub/two; echo out"\n')
    project.run(expect=0)
    post = json.loads(project.read("work/a-1/post.json"))
    assert [p for p, _ in post["outputs"]] == ["one", "stdout.txt", "sub/two"]


def test_glob_and_directory_inputs(project):
    project.recipe("""\
    jobs:
      cat:
        run: "cat {inputs.parts} > all.txt; ls {inputs.tree} > listing.txt"
        inputs: {parts: "parts/*.txt", tree: tree}
    """)
    for name in ("b", "a", "c"):
        project.write(f"parts/{name}.txt", name + "\n")
    project.write("tree/x", "x")
    project.run(expect=0)
    assert project.read("work/cat-1/all.txt") == "a\nb\nc\n"  # globs expand sorted
    project.write("tree/sub/y", "y")  # a new file in an input directory is a change
    result = project.run("--json", expect=0)
    assert json.loads(result.out)["jobs"]["cat"]["reasons"] == ["input tree/sub/y added"]


def test_env_and_placeholders(project):
    project.recipe("""\
    jobs:
      a:
        run: "echo $GREETING {options.who} > out.txt; echo $EXMAKE_JOBID >> out.txt"
        env: {GREETING: hello}
        options: {who: "the world; rm -rf x"}
    """)
    project.run(expect=0)
    # Placeholders are inserted shell-quoted: one word each, never code.
    assert project.read("work/a-1/out.txt") == "hello the world; rm -rf x\na-1\n"


def test_paths_with_spaces_survive_placeholders(project):
    project.recipe("""\
    jobs:
      a:
        run: "cat {inputs.text} > out.txt"
        inputs: {text: "my data/a b.txt"}
      b:
        run: "cat {deps.a}/out.txt"
        deps: [a]
    """)
    project.write("my data/a b.txt", "spaced\n")
    project.run(expect=0)
    assert project.read("work/b-1/stdout.txt") == "spaced\n"


def test_pipefail_fails_a_pipeline_whose_first_command_fails(project):
    project.recipe('jobs:\n  a:\n    run: "false | cat > x"\n')
    project.run(expect=1)


def test_command_not_found_fails_cleanly(project):
    project.recipe('jobs:\n  a:\n    run: "no-such-program-xyz arg"\n')
    result = project.run(expect=1)
    assert "no-such-program-xyz" in result.out


def test_lost_index_is_rebuilt_from_job_directories(project):
    make_chain(project)
    project.run(expect=0)
    import shutil
    shutil.rmtree(project.root / "work/.exmake")
    assert set(states(project.run("--json", expect=0)).values()) == {"reused"}


def test_a_lost_index_never_brings_back_a_job_whose_outputs_did_not_reach_the_disk(project):
    """Review of issue 13: only the index vouches that a job's bytes reached the
    disk (one syncfs per batch, then the index); rebuilt without it, a job
    directory is trusted only once its outputs hash as recorded (what a power
    cut may leave: the names and post.json, other bytes)."""
    make_chain(project)
    project.run(expect=0)
    job = next(p for p in (project.root / "work").iterdir() if p.name.startswith("upper-") and p.is_dir()
               and not p.is_symlink())
    output = next(p for p in job.iterdir() if p.name not in ("setup.json", "post.json", "stdout.txt", "stderr.txt"))
    output.write_bytes(b"\0" * len(output.read_bytes()))
    import shutil
    shutil.rmtree(project.root / "work/.exmake")
    result = states(project.run("--json", expect=0))
    assert result["upper"] == "built", result


def test_the_build_log_never_names_one_job_number_twice(project):
    """Review of issue 13: a job whose post.json could not be written (a full
    disk) is removed and logged as failed under its number; with nothing to
    index, the number was never stored, and the next build took it again."""
    from exmake.ledger import Ledger
    from exmake.workspace import Workspace
    project.recipe('jobs:\n  a: {run: "true"}\n')
    ws = Workspace.load(str(project.root / "Exmakefile"))
    try:
        ws.enter_build()
        jobid, path = ws.jobdirs.reserve("a")
        ws.jobdirs.abandon(jobid, path)  # as when its post.json could not be written
        Ledger(ws).commit(final=True)    # the build's end: nothing queued
        assert ws.store.counters()["a"] == 2
    finally:
        ws.close()


def test_time_limit_kills_the_job(project):
    project.recipe('jobs:\n  slow:\n    run: "sleep 30"\n    resources: {time: 1s}\n')
    started = time.monotonic()
    result = project.run(expect=1)
    assert time.monotonic() - started < 10
    assert "time limit" in result.out


def test_shell_builtins_without_shell_syntax_still_run_in_bash(project):
    project.recipe('jobs:\n  a: {run: "exit 4"}\n  b: {run: "true"}\n  c: {run: "cd /"}\n')
    result = project.run("-k", "--json", expect=1)
    assert states(result) == {"a": "failed", "b": "built", "c": "built"}
    assert json.loads(project.read("work/a-1/post.json"))["exit_code"] == 4


def test_corrupt_index_is_a_clear_error_with_a_recovery_that_works(project):
    make_chain(project)
    project.run(expect=0)
    data = project.root / "work/.exmake/lmdb/data.mdb"
    data.write_bytes(b"\x00garbage" * 100)
    result = project.run(expect=2)
    assert "the index cannot be opened" in result.err and "mv " in result.err
    import shutil
    shutil.move(str(project.root / "work/.exmake/lmdb"), str(project.root / "work/.exmake/lmdb.broken"))
    assert set(states(project.run("--json", expect=0)).values()) == {"reused"}


def test_a_damaged_build_log_entry_does_not_stop_a_build(project):
    """Merge of issues 15 and 17: the rebuilder reads the newest build-log entries
    (a job used from another workdir, gone since?); one that is not JSON crashed
    every build and the board's survey."""
    from exmake.fs.store import Store
    make_chain(project)
    project.run(expect=0)
    store = Store(str(project.root / "work/.exmake/lmdb"))
    try:
        store.put_many([("urd", b"default\0zz-broken", b"{not json")])
    finally:
        store.close()
    project.write("a.txt", "changed\n")
    assert states(project.run("--json", expect=0))["upper"] == "built"
