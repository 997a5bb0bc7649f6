"""status, why, show, path, init and --help, through the real command line."""

import json
import os
import shutil
import signal
import subprocess

from conftest import wait_for
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


PROVENANCE = """\
jobs:
  words:
    run: "tr ' ' '\\\\n' < {inputs.text} > words.txt"
    inputs: {text: data/book.txt}
  count:
    run: "sort {deps.words}/words.txt | uniq -c > counts.txt"
    deps: {words: words}
    env: {LC_ALL: C}
    publish: {counts.txt: counts.txt}
  parts:
    run: "wc -c {inputs.text} > part.{sliceno}"
    inputs: {text: data/book.txt}
    slices: 2
  script:
    method: methods/total.py
    deps: {count: count}
    options: {scale: 2}
"""


def provenance_project(project):
    project.recipe(PROVENANCE)
    project.write("data/book.txt", "the cat the hat\n")
    project.write("methods/total.py", """\
        options = {"scale": 1}
        def synthesis(deps, options):
            return options["scale"] * len(deps.count.open("counts.txt").readlines())
        """)
    return project


def test_dry_run_prints_the_exact_command_of_each_stale_job(project):
    provenance_project(project)
    lines = project.run("-n", expect=0).out.splitlines()
    at = {line.split()[1]: n for n, line in enumerate(lines) if line.startswith("  stale")}
    assert lines[at["words"] + 1].strip() == "tr ' ' '\\n' < inputs/text/book.txt > words.txt"
    assert lines[at["count"] + 1].strip() == "sort deps/words/words.txt | uniq -c > counts.txt"
    assert [line.strip() for line in lines[at["parts"] + 1:at["parts"] + 3]] == \
        ["slice 0: wc -c inputs/text/book.txt > part.0", "slice 1: wc -c inputs/text/book.txt > part.1"]
    assert lines[at["script"] + 1].strip() == "job script methods/total.py"
    assert project.run("-n", "-q", expect=0).out.split() == ["words", "count", "parts", "script"]
    jobs = json.loads(project.run("-n", "--json", expect=0).out)["jobs"]
    assert jobs["count"]["command"] == "sort deps/words/words.txt | uniq -c > counts.txt"
    assert len(jobs["parts"]["command"]) == 2 and "command" not in jobs["script"]
    project.run("words", expect=0)
    dry = project.run("-n", expect=0).out
    assert "fresh   words-1" in dry and "< inputs/text/book.txt" not in dry  # fresh: no command
    assert project.run("-n", "-q", expect=0).out.split() == ["count", "parts", "script"]
    setup = json.loads(project.read("work/words-1/setup.json"))
    assert setup["command"] == "tr ' ' '\\n' < inputs/text/book.txt > words.txt"
    assert setup["step"]["run"] == "tr ' ' '\\n' < {inputs.text} > words.txt"


def test_show_a_result_file_goes_back_to_everything_that_made_it(project):
    provenance_project(project)
    project.run("-m", "first", expect=0)
    out = project.run("show", "results/counts.txt", expect=0).out
    digest = json.loads(project.read("work/count-1/post.json"))["outputs"][0][1]
    assert f"hash     {digest}  as recorded" in out
    for line in ("job      count-1", "command  sort deps/words/words.txt | uniq -c > counts.txt",
                 "template sort {deps.words}/words.txt | uniq -c > counts.txt", "env      LC_ALL=C",
                 "dep      words: words-1"):
        assert line in out, out
    assert "made by  build default/" in out and "Exmakefile  'first'" in out
    tree = project.run("show", "--tree", "work/script-1/deps/count/counts.txt", expect=0).out
    assert "job      count-1" in tree and "dep      words: words-1" in tree
    script = project.run("show", "--tree", "script", expect=0).out
    assert "script   methods/total.py" in script and "code     job script methods/total.py  b3:" in script
    assert "dep      count: count-1\ndep        words: words-1" in script  # recursively, indented
    assert "option   scale = 2" in script
    doc = json.loads(project.run("show", "--json", "--tree", "results/counts.txt", expect=0).out)
    assert doc["jobid"] == "count-1" and doc["file"]["digest"] == doc["file"]["recorded"] == digest
    assert doc["tree"] == {"words": {"jobid": "words-1", "deps": {}}}
    assert doc["log"]["caption"] == "first" and doc["setup"]["inputs"] == {}
    (project.root / "work/count-1/counts.txt").write_text("tampered\n")
    assert "CHANGED since the job made it" in project.run("show", "results/counts.txt", expect=0).out
    outside = project.run("show", "data/book.txt", expect=2)
    assert "not in a job directory" in outside.err


def test_verify_reruns_in_scratch_and_names_each_differing_file(project):
    project.recipe("""\
        jobs:
          steady:
            run: "echo same > a.txt; echo $SOURCE_DATE_EPOCH > epoch.txt"
            publish: {a.txt: a.txt}
          noisy:
            run: "echo same > a.txt; cat /proc/sys/kernel/random/uuid > b.txt"
        """)
    project.run(expect=0)
    good = project.run("verify", "results/a.txt", expect=0).out
    assert "same     steady-1  (3 outputs identical, ran again as steady-2" in good
    assert project.job_dirs() == ["noisy-1", "steady-1"]  # nothing a build sees
    assert not list((project.root / "work/.exmake/verify").iterdir())
    bad = project.run("verify", expect=1)
    assert "DIFFERS  noisy-1" in bad.out and "  differs  b.txt  (b3:" in bad.out
    assert "differs  a.txt" not in bad.out and "same     steady-1" in bad.out
    assert "not reproducible: noisy-1" in bad.err
    doc = json.loads(project.run("verify", "--json", "noisy", expect=1).out)
    [difference] = doc["jobs"]["noisy-1"]["differences"]
    assert difference["path"] == "b.txt" and difference["recorded"] != difference["now"]
    assert (project.root / doc["jobs"]["noisy-1"]["scratch"] / "noisy-2/b.txt").exists()
    assert "2 reused" in project.run(expect=0).out


def test_verify_refuses_a_job_the_recipe_no_longer_makes(project):
    project.recipe('jobs:\n  a:\n    run: "echo 1 > a.txt"\n')
    project.run(expect=0)
    project.recipe('jobs:\n  a:\n    run: "echo 2 > a.txt"\n')
    result = project.run("verify", "a-1", expect=2)
    assert "a-1 is not what the recipe makes now (command changed)" in result.err


def test_verify_reports_an_input_edited_while_it_reran_not_a_difference(project):
    """The check a build makes before it records a job (did what it read
    change while it ran?) holds in verify too: the re-run proves nothing."""
    root = project.root
    project.recipe(f"""\
        jobs:
          a:
            run: "if [ -e '{root}/edit' ]; then echo two more > '{root}/data/in.txt'; fi; cat {{inputs.x}} > a.txt"
            inputs: {{x: data/in.txt}}
        """)
    project.write("data/in.txt", "one\n")
    project.run(expect=0)
    project.write("edit", "")
    result = project.run("verify", "a-1", expect=1)
    assert "changed  a-1: cannot compare, data/in.txt changed while the job ran; run verify again" in result.out
    assert "DIFFERS" not in result.out and "differs" not in result.out
    assert "changed while verified (verify again): a-1" in result.err and "not reproducible" not in result.err
    assert not list((root / "work/.exmake/verify").iterdir())
    # The input now is the edited one: a-1 is no longer what the recipe makes.
    assert "not what the recipe makes now (input data/in.txt changed)" in project.run("verify", "a-1", expect=2).err
    project.write("data/in.txt", "one\n")
    doc = json.loads(project.run("verify", "--json", "a-1", expect=1).out)
    assert doc["jobs"]["a-1"]["state"] == "changed" and not doc["jobs"]["a-1"]["differences"]


def test_verify_skips_a_job_made_before_the_stable_view(project):
    """A job made with absolute paths (setup.json without `command`, no deps/
    or inputs/ links) would differ from any re-run: verify says why instead of
    reporting false differences; jobs made since are verified as ever."""
    project.recipe("""\
        jobs:
          a:
            run: "echo {inputs.x} > a.txt"
            inputs: {x: data/in.txt}
          fan:
            foreach: {v: [p, q]}
            run: "echo {each.v} > v.txt"
          b:
            method: b.py
            deps: {a: a, fans: "fan@*"}
        """)
    project.write("data/in.txt", "one\n")
    project.write("b.py", """\
        def synthesis(job, deps):
            return [deps.a.path] + [d.path for d in deps.fans]
        """)
    project.run(expect=0)
    assert "exmake: 4 of 4 jobs reproducible" in project.run("verify", expect=0).out
    work = project.root / "work"
    setup = json.loads((work / "a-1/setup.json").read_text())
    del setup["command"]  # as before the stable view; the key is the same
    (work / "a-1/setup.json").write_text(json.dumps(setup))
    shutil.rmtree(work / "b-1/deps")
    result = project.run("verify", expect=2)
    assert "skipped  a-1 was made before the stable view" in result.out
    assert "skipped  b-1 was made before the stable view" in result.out
    assert "remake it with `exmake -B a`, then verify" in result.out and "DIFFERS" not in result.out
    assert "exmake: 2 of 2 jobs reproducible; 2 skipped" in result.out
    assert "made before the stable view, not compared: a-1, b-1" in result.err
    doc = json.loads(project.run("verify", "--json", "a-1", expect=2).out)
    assert doc["jobs"]["a-1"]["state"] == "skipped" and doc["status"] == "FAILURE"


def test_show_says_as_recorded_only_for_a_recorded_output_with_its_hash(project):
    project.recipe('jobs:\n  a:\n    run: "echo x > a.txt"\n')
    project.run(expect=0)
    job = project.root / "work/a-1"
    os.mkfifo(job / "fifo")
    (job / "sub").mkdir()
    (job / "extra.txt").write_text("extra\n")

    def hash_line(path):
        out = project.run("show", path, expect=0, timeout=20).out  # a FIFO is never opened
        return next(line for line in out.splitlines() if line.startswith("hash"))
    assert hash_line("work/a-1/a.txt").endswith("  as recorded")
    assert hash_line("work/a-1/fifo") == "hash     none: a FIFO, not one of the job's recorded outputs"
    assert hash_line("work/a-1/sub") == "hash     none: a directory, not one of the job's recorded outputs"
    assert hash_line("work/a-1/extra.txt").endswith("  a file, not one of the job's recorded outputs")
    assert hash_line("work/a-1/post.json").endswith("exmake's own record of the job, not one of its outputs")
    doc = json.loads(project.run("show", "--json", "work/a-1/fifo", expect=0).out)["file"]
    assert (doc["kind"], doc["state"], doc["digest"], doc["recorded"]) == ("FIFO", "not an output", None, None)
    (job / "a.txt").unlink()
    (job / "a.txt").mkdir()
    line = hash_line("work/a-1/a.txt")
    assert "a directory now; the job recorded a file there" in line and "as recorded" not in line


def test_show_a_path_in_a_users_directory_named_like_a_job_with_workdir_dot(project):
    """With `workdir: .`, `backup-2024/` looks like job backup's directory 2024:
    only a directory holding a setup.json of that very job id is one."""
    project.recipe('workdir: .\njobs:\n  a:\n    run: "cat {inputs.x} > a.txt"\n    inputs: {x: in.txt}\n')
    project.write("in.txt", "hello\n")
    project.write("backup-2024/notes.txt", "hi\n")
    project.write("experiment-3/setup.json", json.dumps({"format": 1, "jobid": "a-1", "name": "a", "key": "k",
                                                         "step": {}, "inputs": {}, "deps": {}}))
    project.run(expect=0)
    for path in ("backup-2024/notes.txt", "backup-2024", "experiment-3/setup.json"):
        result = project.run("show", path, expect=2)
        assert "not in a job directory" in result.err, result
        assert result.out == ""
    assert project.run("verify", "backup-2024/notes.txt", expect=2).err.count("not in a job directory") == 1
    assert "hash     b3:" in project.run("show", "a-1/a.txt", expect=0).out


def test_an_interrupted_verify_leaves_no_scratch_and_gc_removes_kept_scratch(project):
    root = project.root
    project.recipe(f"""\
        jobs:
          slow:
            run: "if [ -e '{root}/hold' ]; then touch '{root}/started'; sleep 30; fi; echo same > a.txt"
          noisy:
            run: "cat /proc/sys/kernel/random/uuid > b.txt"
        """)
    project.run(expect=0)
    scratch = project.root / "work/.exmake/verify"
    project.write("hold", "")  # not an input: the key is the same; the re-run sleeps
    verify = project.popen("verify", "slow-1", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for((root / "started").exists)
    (root / "started").unlink()
    verify.send_signal(signal.SIGINT)
    assert verify.wait(timeout=30) == 130
    assert list(scratch.iterdir()) == []
    kept = json.loads(project.run("verify", "--json", "noisy", expect=1).out)["jobs"]["noisy-1"]["scratch"]
    assert os.path.isdir(kept)
    running = project.popen("verify", "slow-1", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for((root / "started").exists)
        dry = project.run("gc", "-n", expect=0).out
        assert f"would remove verify scratch {os.path.basename(kept)}" in dry and os.path.isdir(kept)
        out = project.run("gc", expect=0).out
        assert f"remove verify scratch {os.path.basename(kept)}" in out
        assert f"keep    verify scratch slow-1-{running.pid} (a verify is running in it)" in out
        assert "and 1 verify scratch directory" in out
        assert not os.path.exists(kept)
        assert [p.name for p in scratch.iterdir()] == [f"slow-1-{running.pid}"]
    finally:
        running.send_signal(signal.SIGINT)
        running.wait(timeout=30)
    assert list(scratch.iterdir()) == []
