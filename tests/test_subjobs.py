"""Subjobs: `job.build(...)` in a job script runs or reuses a child job.

A parent builds a number of children it learns only while running (from an
input file). Rebuilt with one more child, it runs exactly one. Children
with the same key are reused, are recorded in the parent's post.json, the
build log, `show` and `urd`, are kept by gc while the parent is, run without
deadlock when every core slot is taken, and a kill at any instant loses none
that had finished.
"""

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import exmake_env, pid_alive, wait_for

RECIPE = """\
    jobs:
      words:
        run: "tr -s ' ' '\\n' < {inputs.text} > words.txt"
        inputs: {text: book.txt}
        outputs: [words.txt]
      parent:
        method: parent.py
        inputs: {n: n.txt, text: book.txt}
        deps: [words]
        publish: {total.txt: total.txt}
"""

PARENT = """\
    def synthesis(job, inputs, deps):
        n = int(open(inputs.n).read())
        kids = [job.build("child.py", options={"i": i}, inputs={"text": inputs.text}, deps={"words": deps.words})
                for i in range(n)]
        total = sum(kid.load() for kid in kids)
        with job.open("total.txt", "w") as f:
            f.write(f"{total}\\n")
        return total
"""

CHILD = """\
    import os

    options = {"i": 0}

    def synthesis(job, options, inputs, deps):
        with open(os.environ["RUNLOG"], "a") as log:  # outside the key: counts the runs
            log.write(f"{options['i']}\\n")
        with open(deps.words.path + "/words.txt") as f:
            words = len(f.read().split())
        with open(inputs.text) as f:
            assert f.read().split() and words
        return options["i"] * 100 + words
"""


def make(project, n=3):
    project.recipe(RECIPE)
    project.write("parent.py", PARENT)
    project.write("child.py", CHILD)
    project.write("book.txt", "a bb ccc\n")
    project.write("n.txt", f"{n}\n")
    return project


def run(project, *args, expect=0):
    return project.run(*args, expect=expect, env={"RUNLOG": str(project.root / "runs.log")}, timeout=300)


def runs(project):
    path = project.root / "runs.log"
    return path.read_text().split() if path.exists() else []


def post(project, jobid):
    return json.loads((project.root / "work" / jobid / "post.json").read_text())


def test_a_run_time_number_of_children_then_one_more_runs_exactly_one(project):
    make(project, n=3)
    run(project)
    assert project.read("results/total.txt") == "309\n"  # (0 + 100 + 200) + 3 * 3 words
    assert project.job_dirs("child") == ["child-1", "child-2", "child-3"]
    assert [(s["jobid"], s["state"], s["name"]) for s in post(project, "parent-1")["subjobs"]] == \
        [("child-1", "built", "child"), ("child-2", "built", "child"), ("child-3", "built", "child")]
    assert runs(project) == ["0", "1", "2"]
    project.write("n.txt", "4\n")
    run(project)
    assert runs(project) == ["0", "1", "2", "3"]  # exactly one more child ran
    assert project.job_dirs("child") == ["child-1", "child-2", "child-3", "child-4"]
    assert [s["state"] for s in post(project, "parent-2")["subjobs"]] == ["reused"] * 3 + ["built"]
    assert project.read("results/total.txt") == "612\n"


def test_children_are_keyed_like_any_job(project):
    """Same key: reused; other input content: run again; the child's setup
    records its script, options, inputs and deps."""
    make(project, n=1)
    run(project)
    setup = json.loads((project.root / "work/child-1/setup.json").read_text())
    assert setup["step"]["options"] == {"i": 0} and setup["step"]["method"] == "child.py"
    assert [path for path, _ in setup["inputs"]["text"]] == ["book.txt"]
    assert setup["deps"]["words"]["jobid"] == "words-1"
    run(project, "-B", "parent")  # the parent runs again; its child is the same job
    assert runs(project) == ["0"]
    assert post(project, "parent-2")["subjobs"][0]["state"] == "reused"
    project.write("book.txt", "a bb ccc dddd\n")
    run(project)
    assert runs(project) == ["0", "0"]
    assert project.read("results/total.txt") == "4\n"


def test_the_same_subjob_twice_in_one_parent_is_one_job(project):
    make(project)
    project.write("parent.py", PARENT.replace("for i in range(n)]", "for i in [0, 0, 1]]"))
    run(project)
    assert runs(project) == ["0", "1"]
    assert [s["jobid"] for s in post(project, "parent-1")["subjobs"]] == ["child-1", "child-2"]


def test_name_gives_the_subjob_its_name(project):
    make(project)
    project.write("parent.py", PARENT.replace('job.build("child.py",', 'job.build("child.py", name="kid",'))
    run(project)
    assert project.job_dirs("kid") == ["kid-1", "kid-2", "kid-3"] and project.job_dirs("child") == []


def test_a_failing_child_fails_the_parent_with_its_exception(project):
    make(project)
    project.write("child.py", CHILD.replace('return options["i"]', 'assert options["i"] < 2, "too big"\n        return options["i"]'))
    result = run(project, expect=1)
    assert "parent" in result.out
    record = post(project, "parent-1")
    assert record["result"] == "FAILURE"
    assert record["exception"].startswith("SubjobFailed: subjob child (child-3) failed: AssertionError: too big")
    assert [s["jobid"] for s in record["subjobs"]] == ["child-1", "child-2"]  # the ones that finished
    assert post(project, "child-3")["result"] == "FAILURE"


def test_a_bad_request_fails_the_parent_with_one_clear_message(project):
    make(project)
    project.write("parent.py", PARENT.replace('options={"i": i}', 'options={"nope": i}'))
    run(project, expect=1)
    assert "child.py takes no option 'nope'" in post(project, "parent-1")["exception"]
    project.write("parent.py", PARENT.replace('job.build("child.py",', 'job.build("child.py", name="words",'))
    run(project, expect=1)
    assert "is a job of the recipe" in post(project, "parent-2")["exception"]
    assert project.job_dirs("child") == []


def test_no_deadlock_when_every_slot_is_taken(project):
    """-j 1: the parent holds the only core slot while its children run in it."""
    make(project, n=2)
    project.recipe(RECIPE + """\
      parent2:
        method: parent.py
        inputs: {n: n.txt, text: book.txt}
        deps: [words]
    """)
    run(project, "-j", "1")
    assert project.read("results/total.txt") == "106\n"
    assert sorted(runs(project)) == ["0", "1"]  # parent2's children are parent's: reused


def test_children_show_in_show_and_the_build_log(project):
    make(project, n=2)
    run(project)
    shown = run(project, "show", "parent").out
    assert "subjob   child-1  built  child" in shown and "subjob   child-2  built  child" in shown
    entry = json.loads(run(project, "urd", "export").out.splitlines()[-1])
    assert [(s["jobid"], s["state"]) for s in entry["jobs"]["parent"]["subjobs"]] == \
        [("child-1", "built"), ("child-2", "built")]
    assert "subjob child-2  built" in run(project, "urd", "default/latest").out


def test_gc_keeps_children_while_the_parent_is_kept(project):
    make(project, n=2)
    run(project)
    project.write("parent.py", PARENT.replace('options={"i": i}', 'options={"i": i + 5}'))
    run(project)
    assert project.job_dirs("child") == ["child-1", "child-2", "child-3", "child-4"]
    run(project, "gc", "--keep", "0")
    # parent-2 is current and keeps its children; parent-1 and its children go
    # (child-4 is also child-LATEST)
    assert project.job_dirs("parent") == ["parent-2"]
    assert project.job_dirs("child") == ["child-3", "child-4"]
    assert project.read("results/total.txt") == "1106\n"


def descendants(pid):
    """`pid` and every process below it (job processes have their own sessions,
    but their parents are still exmake's)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def power_cut(pid):
    """SIGKILL a process tree at once: stopped first, so none is reparented meanwhile."""
    tree = descendants(pid)
    for p in tree:
        try:
            os.kill(p, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    tree = sorted(set(tree + [q for p in tree for q in descendants(p)]))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: not any(pid_alive(p) for p in tree), timeout=60)


def heard_of(project):
    """The i of every child a running (or killed) parent has been told of: the
    lines of its `.subjobs.jsonl` (it runs in place, in work/parent-N)."""
    found = set()
    for record in (project.root / "work").glob("parent-*/.subjobs.jsonl"):
        for line in record.read_text().splitlines():
            try:
                jobid = json.loads(line)["jobid"]
            except ValueError:
                continue  # cut short by the kill
            found.add(json.loads((project.root / "work" / jobid / "setup.json").read_text())["step"]["options"]["i"])
    return found


def test_a_kill_at_any_instant_loses_no_child_its_parent_had(project):
    """A child is indexed (group commit, exmake.ledger) before `job.build`
    returns it: however the build is killed, no child the parent had been
    given runs again, and the next build's results are the uninterrupted ones."""
    make(project, n=4)
    env = exmake_env({"RUNLOG": str(project.root / "runs.log")})
    for given in (0, 1, 3):
        project.write("n.txt", f"{4 + given}\n")  # a new parent run each round
        before = heard_of(project) if (project.root / "work").exists() else set()
        proc = subprocess.Popen([sys.executable, "-m", "exmake", "-q"], cwd=project.root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(heard_of(project) - before) >= given or proc.poll() is not None, timeout=120)
        if given == 0:
            time.sleep(0.3)  # somewhere inside the first child or the parent's start
        power_cut(proc.pid)
        proc.wait()
        had = heard_of(project)
        (project.root / "runs.log").unlink(missing_ok=True)
        run(project)
        ran_again = {int(i) for i in runs(project)}
        assert not had & ran_again, (given, had, ran_again)
        n = 4 + given
        assert project.read("results/total.txt") == f"{sum(range(n)) * 100 + 3 * n}\n"


def test_parents_that_differ_only_in_env_do_not_share_a_child(project):
    """Review of issue 17 (wrong reuse): a child runs in its parent's
    environment, so the parent's `env:` is in the child's key."""
    project.recipe("""\
        jobs:
          pa: {method: p.py, env: {MODE: a}}
          pb: {method: p.py, env: {MODE: b}}
    """)
    project.write("p.py", """\
        def synthesis(job):
            return job.build("kid.py").load()
    """)
    project.write("kid.py", """\
        import os

        def synthesis():
            return os.environ["MODE"]
    """)
    run(project, "pa")
    run(project, "pb")
    import pickle
    results = {p: pickle.load(open(project.root / "work" / f"{p}-1" / "result.pickle", "rb")) for p in ("pa", "pb")}
    assert results == {"pa": "a", "pb": "b"}
    assert post(project, "pb-1")["subjobs"][0]["state"] == "built"


def test_a_child_that_would_build_itself_fails_at_once(project):
    """Review of issue 17: it waited for ever on the key lock its own parent held."""
    project.recipe("jobs:\n  top: {method: top.py}\n")
    project.write("top.py", """\
        options = {"i": 1}

        def synthesis(job, options):
            return job.build("top.py", options={"i": options["i"]}, name="top2").load()
    """)
    project.write("top2.py", "")
    result = run(project, expect=1)
    assert "would build itself" in result.out + result.err


def test_the_workdir_or_a_directory_holding_it_is_no_child_input(project):
    """Review of issue 17: the child hashed the index and the running parent's own directory."""
    project.recipe("jobs:\n  p: {method: p.py}\n")
    project.write("p.py", """\
        import os

        def synthesis(job):
            return job.build("kid.py", inputs={"d": os.path.dirname(job.path)}).load()
    """)
    project.write("kid.py", "def synthesis():\n    return 1\n")
    result = run(project, expect=1)
    assert "give a job as deps= instead" in result.out + result.err
