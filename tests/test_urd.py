"""The build log (urd), through the real command line: every build appends one
entry (also failed, interrupted, killed-around and no-op builds), entries are
named as LIST/latest, LIST/first, LIST/~N or LIST/TIMESTAMP, concurrent builds
all land, and export -> import -> export is byte-for-byte identical.
"""

import json
import os
import signal
import subprocess

import pytest

from conftest import Project, age, running_dirs, wait_for

RECIPE = """\
jobs:
  a:
    run: "echo {options.v} > out.txt"
    options: {v: 1}
  b:
    run: "cat {deps.a}/out.txt > b.txt"
    deps: [a]
"""

SLOW = """\
jobs:
  slow:
    run: "echo $$ > pid; sleep 30; echo done > out.txt"
  quick:
    run: "echo quick > out.txt"
"""


def entries(project, name="default"):
    return json.loads(project.run("urd", name, "--json", expect=0).out)


def entry(project, spec):
    return json.loads(project.run("urd", spec, "--json", expect=0).out)


def export(project, *args):
    return project.run("urd", "export", *args, expect=0).out


def built_project(project, builds=3):
    """`builds` builds of RECIPE, captioned "build 1", "build 2", ..."""
    project.recipe(RECIPE)
    for n in range(1, builds + 1):
        project.run("-m", f"build {n}", expect=0)
    return entries(project)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A project with three builds in list default (read, never changed, by its tests)."""
    project = Project(tmp_path_factory.mktemp("urd") / "proj")
    return project, built_project(project, 3)



def building_pid(project, name="slow"):
    """The pid the job `name` wrote once it runs (in its directory, while its marker is there)."""
    for pid_file in [d / "pid" for d in running_dirs(project.root, f"{name}-*") if (d / "pid").exists()]:
        text = pid_file.read_text().strip()
        if text:
            return int(text)
    return None


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass



# -- appending -----------------------------------------------------------------


def test_each_build_appends_one_entry_in_order(project):
    log = built_project(project, 3)
    assert [e["caption"] for e in log] == ["build 1", "build 2", "build 3"]
    stamps = [e["timestamp"] for e in log]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3  # strictly increasing
    assert all(e["list"] == "default" and e["status"] == "SUCCESS" for e in log)
    assert log[0]["targets"] == ["a", "b"]
    assert log[0]["jobs"]["a"]["state"] == "built" and log[0]["jobs"]["a"]["jobid"] == "a-1"
    assert {n: j["state"] for n, j in log[2]["jobs"].items()} == {"a": "reused", "b": "reused"}
    assert log[0]["recipe"] == str(project.root / "Exmakefile")


def test_urd_list_and_caption_are_recorded(project):
    project.recipe(RECIPE)
    project.run("--urd", "nightly", "-m", "first try", expect=0)
    [only] = entries(project, "nightly")
    assert only["list"] == "nightly" and only["caption"] == "first try"
    assert "first try" in project.run("urd", "nightly", expect=0).out
    result = project.run("urd", "default", expect=2)
    assert "no urd list named 'default'" in result.err


def test_failing_build_records_failure_with_the_failed_job(project):
    project.recipe("""\
        jobs:
          bad:
            run: "exit 3"
          after:
            run: "true"
            deps: [bad]
        """)
    project.run(expect=1)
    [failed] = entries(project)
    assert failed["status"] == "FAILURE"
    assert failed["jobs"]["bad"] == {**failed["jobs"]["bad"], "state": "failed", "jobid": "bad-1"}
    assert failed["jobs"]["after"]["state"] == "skipped"


def interrupt_slow_build(project):
    project.recipe(SLOW)
    proc = project.popen("-j", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pid = wait_for(lambda: building_pid(project))
        wait_for(lambda: (project.root / "work/quick-LATEST").exists())  # quick has finished
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    return pid


def test_sigint_records_interrupted(project):
    interrupt_slow_build(project)
    [stopped] = entries(project)
    assert stopped["status"] == "INTERRUPTED"
    assert stopped["targets"] == ["slow", "quick"]
    assert stopped["jobs"]["quick"]["state"] == "built"


def test_sigint_entry_lists_the_stopped_job_as_skipped(project):
    interrupt_slow_build(project)
    [stopped] = entries(project)
    assert set(stopped["jobs"]) == {"slow", "quick"}
    assert stopped["jobs"]["slow"]["state"] == "skipped"


def test_noop_fast_path_still_appends_an_entry(project):
    project.recipe(RECIPE)
    age(project.root)
    project.run(expect=0)
    result = project.run("-v", "-m", "no-op", expect=0)
    assert "nothing changed since the last build" in result.out  # the fast path was taken
    first, second = entries(project)
    assert second["caption"] == "no-op" and second["status"] == "SUCCESS"
    assert second["timestamp"] > first["timestamp"]
    assert {n: (j["state"], j["jobid"]) for n, j in second["jobs"].items()} == \
        {"a": ("reused", "a-1"), "b": ("reused", "b-1")}
    assert second["recipe"] == first["recipe"] and second["recipe_digest"] == first["recipe_digest"]


def test_dry_run_appends_nothing(project):
    project.recipe(RECIPE)
    project.run("-n", expect=0)
    assert "no builds logged yet" in project.run("urd", expect=0).out
    project.run(expect=0)
    project.recipe(RECIPE.replace("v: 1", "v: 2"))
    project.run("-n", expect=0)
    assert len(entries(project)) == 1


# -- reading -------------------------------------------------------------------


def test_urd_lists_the_lists_with_counts(project):
    project.recipe(RECIPE)
    project.run(expect=0)
    project.run(expect=0)
    project.run("--urd", "nightly", expect=0)
    lines = project.run("urd", expect=0).out.splitlines()
    assert [line.split()[:3] for line in lines] == [["default", "2", "entries"], ["nightly", "1", "entry"]]
    lists = json.loads(project.run("urd", "--json", expect=0).out)
    assert {name: v["entries"] for name, v in lists.items()} == {"default": 2, "nightly": 1}
    assert lists["nightly"]["latest"] == entries(project, "nightly")[0]["timestamp"]


def unique_prefix(stamp, others):
    for length in range(1, len(stamp) + 1):
        if not any(o.startswith(stamp[:length]) for o in others if o != stamp):
            return stamp[:length]
    raise AssertionError(stamp)


def test_entry_names_pick_the_right_entry(logged):
    project, log = logged
    stamps = [e["timestamp"] for e in log]
    expected = {"default/latest": 2, "default/first": 0, "default/~0": 2, "default/~1": 1,
                "default/~2": 0, f"default/{stamps[1]}": 1,
                f"default/{unique_prefix(stamps[0], stamps)}": 0,
                f"default/{unique_prefix(stamps[1], stamps)}": 1}
    for spec, index in expected.items():
        assert entry(project, spec) == log[index], spec
    text = project.run("urd", "default/~1", expect=0).out
    assert text.startswith(f"default/{stamps[1]}  SUCCESS") and "caption build 2" in text


def test_bad_entry_names_are_usage_errors(logged):
    project, log = logged
    common = os.path.commonprefix([e["timestamp"] for e in log])
    for spec, message in [("default/~3", "has only 3 entries"),
                          ("nolist/latest", "has no entries"),
                          (f"default/{common}", "matches 3 entries"),
                          ("default/1999", "no entry"),
                          ("default/~x", "~N needs a whole number")]:
        result = project.run("urd", spec, expect=2)
        assert message in result.err, (spec, result)
        assert "Traceback" not in result.err


def test_since_keeps_entries_from_that_timestamp_on(logged):
    project, log = logged
    later = json.loads(project.run("urd", "default", "--since", log[1]["timestamp"], "--json", expect=0).out)
    assert later == log[1:]
    lines = project.run("urd", "default", "--since", log[2]["timestamp"], expect=0).out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(log[2]["timestamp"])
    assert project.run("urd", "default", "--since", "2999", expect=0).out == ""


# -- robustness ----------------------------------------------------------------


def test_concurrent_builds_all_land(project):
    project.recipe("""\
        jobs:
          w: {run: "sleep 0.3; echo w > out.txt"}
          x: {run: "sleep 0.3; echo x > out.txt"}
          y: {run: "sleep 0.3; echo y > out.txt"}
          z: {run: "sleep 0.3; echo z > out.txt"}
        """)
    procs = [project.popen(target, "--urd", lst, "-m", target, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for target, lst in [("w", "default"), ("x", "default"), ("y", "default"), ("z", "other")]]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (out, err)
    default = entries(project)
    assert sorted(e["caption"] for e in default) == ["w", "x", "y"]
    assert [e["caption"] for e in entries(project, "other")] == ["z"]
    assert len({e["timestamp"] for e in default}) == 3
    lines = export(project).splitlines()
    assert len(lines) == 4 and all(json.loads(line)["status"] == "SUCCESS" for line in lines)


def test_kill_9_during_a_build_leaves_the_log_readable(project):
    project.recipe(SLOW)
    project.run("quick", "-m", "before", expect=0)
    proc = project.popen("slow", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = None
    try:
        pid = wait_for(lambda: building_pid(project))
        proc.kill()  # SIGKILL: no chance to log anything
        proc.wait(timeout=20)
    finally:
        proc.kill()
        if pid:
            kill_group(pid)  # the orphaned job
    assert [e["caption"] for e in entries(project)] == ["before"]
    assert "default      1 entry" in project.run("urd", expect=0).out
    project.recipe(SLOW.replace("sleep 30", "sleep 0.1"))
    project.run("-m", "after", expect=0)
    log = entries(project)
    assert [e["caption"] for e in log] == ["before", "after"]
    assert log[1]["status"] == "SUCCESS" and log[1]["jobs"]["slow"]["state"] == "built"


# -- export and import ---------------------------------------------------------


def two_lists(project):
    project.recipe(RECIPE)
    project.run("-m", "one", expect=0)
    project.run("--urd", "nightly", expect=0)
    project.run("-m", "two", expect=0)
    return export(project)


def test_export_import_export_is_byte_identical(project, tmp_path):
    exported = two_lists(project)
    assert len(exported.splitlines()) == 3
    (tmp_path / "log.jsonl").write_text(exported)
    other = Project(tmp_path / "other")
    other.recipe(RECIPE)  # the same workdir layout, nothing built
    assert "imported 3 entries" in other.run("urd", "import", tmp_path / "log.jsonl", expect=0).out
    assert export(other) == exported
    assert export(other, "nightly") == export(project, "nightly")
    assert entries(other) == entries(project)


def test_import_from_stdin(project, tmp_path):
    exported = two_lists(project)
    other = Project(tmp_path / "other")
    other.recipe(RECIPE)
    proc = other.popen("urd", "import", "-", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = proc.communicate(exported, timeout=30)
    assert proc.returncode == 0 and "imported 3 entries" in out
    assert export(other) == exported


def test_importing_twice_is_idempotent(project, tmp_path):
    exported = two_lists(project)
    (tmp_path / "log.jsonl").write_text(exported)
    result = project.run("urd", "import", tmp_path / "log.jsonl", expect=0)
    assert "imported 0 entries, 3 already present" in result.out
    result = project.run("urd", "import", tmp_path / "log.jsonl", expect=0)
    assert "3 already present" in result.out
    assert export(project) == exported


def test_importing_a_changed_entry_is_a_conflict(project, tmp_path):
    exported = two_lists(project)
    changed = json.loads(exported.splitlines()[0])
    changed["caption"] = "rewritten history"
    (tmp_path / "changed.jsonl").write_text(json.dumps(changed, sort_keys=True, separators=(",", ":")) + "\n")
    result = project.run("urd", "import", tmp_path / "changed.jsonl", expect=2)
    assert f"entry {changed['list']}/{changed['timestamp']} is already in the log with other content" \
        in result.err
    assert export(project) == exported


def test_importing_a_malformed_line_names_file_and_line(project, tmp_path):
    exported = two_lists(project)
    good = exported.splitlines()[0]
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(good.replace("default", "copy") + "\n\n{not json\n")
    result = project.run("urd", "import", bad_json, expect=2)
    assert f"{bad_json}:3: not JSON" in result.err
    no_status = dict(json.loads(good), list="copy")
    del no_status["status"]
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps(no_status) + "\n")
    assert f"{missing}:1: missing status" in project.run("urd", "import", missing, expect=2).err
    bad_stamp = tmp_path / "stamp.jsonl"
    bad_stamp.write_text(json.dumps(dict(json.loads(good), list="copy", timestamp="yesterday")) + "\n")
    assert f"{bad_stamp}:1: bad timestamp" in project.run("urd", "import", bad_stamp, expect=2).err
    assert export(project) == exported  # nothing of any file was imported
    assert "copy" not in project.run("urd", expect=0).out


def test_an_incomplete_entry_is_refused_or_readable(project, tmp_path):
    exported = two_lists(project)
    full = json.loads(exported.splitlines()[0])
    bare = {key: full[key] for key in ("format", "status", "jobs", "timestamp")}
    bare["list"] = "bare"
    path = tmp_path / "bare.jsonl"
    path.write_text(json.dumps(bare) + "\n")
    result = project.run("urd", "import", path)
    if result.code == 0:
        for spec in ("bare", "bare/latest"):
            shown = project.run("urd", spec)
            assert shown.code == 0 and "Traceback" not in shown.err, shown
    else:
        assert result.code == 2 and f"{path}:1:" in result.err, result


# -- index recovery (issue 10, defect 12) --------------------------------------

COUNTER = """\
jobs:
  a:
    run: "cat {inputs.d} > x.txt"
    inputs: {d: data.txt}
"""


def three_builds_then_lose_the_newest(project):
    """a-1, a-2, a-3 logged; then a-3's directory goes (gc, or by hand)."""
    project.recipe(COUNTER)
    for text in ("1\n", "2\n", "3\n"):
        project.write("data.txt", text)
        project.run(expect=0)
    assert project.job_dirs("a") == ["a-1", "a-2", "a-3"]
    subprocess.run(["rm", "-rf", str(project.root / "work" / "a-3")], check=True)
    return project.run("urd", "export", expect=0).out


def recover_the_index(project, exported):
    """The README's procedure: export, move the LMDB aside, import."""
    (project.root / "log.jsonl").write_text(exported)
    lmdb = project.root / "work" / ".exmake" / "lmdb"
    os.rename(lmdb, str(lmdb) + ".broken")
    project.run("urd", "import", "log.jsonl", expect=0)


def test_recovered_index_never_hands_out_a_logged_job_number_again(project):
    recover_the_index(project, three_builds_then_lose_the_newest(project))
    project.write("data.txt", "4\n")
    project.run(expect=0)
    assert project.job_dirs("a") == ["a-1", "a-2", "a-4"]  # not a-3 again
    result = project.run("path", ":default/~1:a", expect=2)  # the entry that recorded a-3
    assert "a-3 was recorded there but its directory is gone" in result.err, result


def test_log_reference_to_a_number_reused_before_the_import_is_refused(project):
    """Built after moving the LMDB aside but before importing the log: a-3 is
    handed out again (nothing knew it); the log's a-3 must not resolve to it."""
    exported = three_builds_then_lose_the_newest(project)
    lmdb = project.root / "work" / ".exmake" / "lmdb"
    os.rename(lmdb, str(lmdb) + ".broken")
    project.write("data.txt", "4\n")
    project.run(expect=0)
    (project.root / "log.jsonl").write_text(exported)
    project.run("urd", "import", "log.jsonl", expect=0)
    result = project.run("path", ":default/~1:a", expect=2)  # the third build's a-3, not this one
    assert "a-3 was recorded there, but that directory now holds another job" in result.err, result
    project.write("data.txt", "5\n")
    project.run(expect=0)
    assert "a-4" in project.job_dirs("a")
