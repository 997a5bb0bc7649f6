"""Job references through `exmake path` and `exmake show`: NAME, NAME-N,
NAME-LATEST, NAME~K and :LIST/ENTRY:NAME each resolve to the right job
directory; invalid ones are exit 2 with one clear message; a recipe dep
written as :LIST/ENTRY:NAME uses the job recorded in that build-log list.
"""

import json

import pytest

from conftest import Project

RECIPE = """\
jobs:
  a:
    run: "echo {options.v} > out.txt; test {options.v} != bad"
    options: {v: V}
  other:
    run: "echo other > out.txt"
"""


def recipe(v):
    return RECIPE.replace("V", str(v))


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """a-1 (v=1, list train), a-2 failed (v=bad), a-3 (v=2), a-4 (v=3, also train ~0)."""
    project = Project(tmp_path_factory.mktemp("jobref") / "proj")
    for v, args, code in [(1, ["--urd", "train"], 0), ("bad", [], 1), (2, [], 0), (3, [], 0),
                          (3, ["--urd", "train"], 0)]:
        project.recipe(recipe(v))
        project.run(*args, expect=code)
    assert project.job_dirs("a") == ["a-1", "a-2", "a-3", "a-4"]
    return project


@pytest.mark.parametrize("ref, jobid", [
    ("a", "a-4"),                 # the current fresh job
    ("a-1", "a-1"),
    ("a-2", "a-2"),               # a failed job directory is still a job directory
    ("a-LATEST", "a-4"),
    ("a~0", "a-4"),
    ("a~1", "a-3"),
    ("a~2", "a-1"),               # a-2 failed: skipped
    (":default/latest:a", "a-4"),
    (":default/~1:a", "a-3"),
    (":train/first:a", "a-1"),
    (":train/latest:a", "a-4"),   # the second train build reused a-4
    (":train/~1:other", "other-1"),
])
def test_reference_resolves_to_the_right_directory(history, ref, jobid):
    path = history.run("path", ref, expect=0).out
    assert path == f"{history.root / 'work' / jobid}\n"
    shown = json.loads(history.run("show", "--json", ref, expect=0).out)
    assert shown["jobid"] == jobid and shown["path"] == str(history.root / "work" / jobid)
    assert shown["setup"]["name"] == jobid.rsplit("-", 1)[0]


def test_show_names_the_job_in_text(history):
    out = history.run("show", "a~1", expect=0).out
    assert out.startswith("job      a-3\n") and "option   v = 2" in out and "result   SUCCESS" in out


def test_timestamp_entry_reference(history):
    stamp = json.loads(history.run("urd", "default/~1", "--json", expect=0).out)["timestamp"]
    assert history.run("path", f":default/{stamp}:a", expect=0).out.strip().endswith("/work/a-3")


@pytest.mark.parametrize("ref, message", [
    ("nosuch", "'nosuch' is not a job"),
    ("a~99", "a~99: there are only 3 successful 'a' jobs"),
    ("a-99", "a-99: no such job directory"),
    ("nosuch-LATEST", "no build has used job 'nosuch' yet"),
    (":nolist/latest:a", "urd list 'nolist' has no entries"),
    (":default/latest:nosuchjob", "has no job 'nosuchjob'"),
    (":default/~9:a", "has only 3 entries"),
    ("../x", "'../x' is not a job"),
    ("a/b", "'a/b' is not a job"),
    ("", "is not a job"),
])
def test_invalid_reference_is_a_usage_error(history, ref, message):
    for command in ("path", "show"):
        result = history.run(command, ref, expect=2)
        assert result.err.startswith("exmake: ") and message in result.err, result
        assert "Traceback" not in result.err and result.out == ""


def test_stale_name_is_exit_1(project):
    project.recipe(recipe(1))
    project.run(expect=0)
    project.recipe(recipe(2))
    result = project.run("path", "a", expect=1)
    assert "a is stale" in result.err and "exmake build a" in result.err
    assert project.run("path", "a-LATEST", expect=0).out.strip().endswith("/work/a-1")


def test_log_reference_never_leaves_the_workdir(project, tmp_path):
    project.recipe(recipe(1))
    project.run(expect=0)
    entry = json.loads(project.run("urd", "export", expect=0).out)
    entry.update(list="evil", jobs={"a": {"jobid": "../..", "key": "k", "state": "built"}})
    (tmp_path / "evil.jsonl").write_text(json.dumps(entry) + "\n")
    imported = project.run("urd", "import", tmp_path / "evil.jsonl")
    if imported.code == 0:
        result = project.run("path", ":evil/latest:a")
        assert result.code == 2, result
    else:
        assert imported.code == 2


# -- :LIST/ENTRY:NAME as a recipe dep ----------------------------------------------

TRAIN = """\
jobs:
  fit:
    run: "echo model {options.rate} > out.txt"
    options: {rate: RATE}
"""
USE = """\
jobs:
  use:
    run: "cat {deps.model}/out.txt > got.txt"
    deps:
      model: "REF"
"""


def trained(project, rate=1):
    project.recipe(TRAIN.replace("RATE", str(rate)))
    project.run("--urd", "train", expect=0)


def use_recipe(project, ref=":train/latest:fit"):
    return project.write("use.exmk", USE.replace("REF", ref))


def test_recipe_dep_uses_the_job_recorded_in_the_list(project):
    trained(project, 1)
    use_recipe(project)
    jobs = json.loads(project.run("-f", "use.exmk", "--json", expect=0).out)["jobs"]
    assert project.read(f"work/{jobs['use']['jobid']}/got.txt") == "model 1\n"
    setup = json.loads(project.read(f"work/{jobs['use']['jobid']}/setup.json"))
    assert setup["deps"]["model"]["jobid"] == "fit-1"
    assert "reused  use-1" in project.run("-f", "use.exmk", expect=0).out


def test_recipe_dep_follows_a_new_entry_of_the_list(project):
    trained(project, 1)
    use_recipe(project)
    project.run("-f", "use.exmk", expect=0)
    trained(project, 2)
    jobs = json.loads(project.run("-f", "use.exmk", "--json", expect=0).out)["jobs"]
    assert jobs["use"]["state"] == "built"
    assert project.read(f"work/{jobs['use']['jobid']}/got.txt") == "model 2\n"


def test_recipe_dep_can_name_an_older_entry(project):
    trained(project, 1)
    trained(project, 2)
    use_recipe(project, ":train/first:fit")
    jobs = json.loads(project.run("-f", "use.exmk", "--json", expect=0).out)["jobs"]
    assert project.read(f"work/{jobs['use']['jobid']}/got.txt") == "model 1\n"


def snapshot(project):
    work = project.root / "work"
    files = sorted(str(p.relative_to(work)) for p in work.rglob("*") if "lmdb" not in p.parts)
    return files, project.run("urd", "export", expect=0).out


@pytest.mark.parametrize("ref, problem", [
    (":train/latest:nosuchjob", "has no job 'nosuchjob'"),
    (":nolist/latest:fit", "urd list 'nolist' has no entries"),
    (":train/~5:fit", "has only 1 entries"),
])
def test_invalid_recipe_dep_reference_names_file_line_and_key(project, ref, problem):
    trained(project)
    path = use_recipe(project, ref)
    before = snapshot(project)
    result = project.run("-f", "use.exmk", expect=2)
    assert f"{path}:5: jobs.use.deps.model: " in result.err and problem in result.err, result
    assert snapshot(project) == before  # no job directory, no log entry, nothing


def test_recipe_dep_on_a_failed_job_is_refused(project):
    project.recipe(TRAIN.replace("echo model {options.rate} > out.txt", "exit 1").replace("RATE", "1"))
    project.run("--urd", "train", expect=1)
    path = use_recipe(project)
    result = project.run("-f", "use.exmk", expect=2)
    assert f"{path}:5: jobs.use.deps.model: :train/latest:fit is fit-1, which did not succeed" in result.err


def test_malformed_recipe_dep_reference_is_a_recipe_error(project):
    trained(project)
    path = use_recipe(project, ":oops")
    before = snapshot(project)
    result = project.run("-f", "use.exmk", expect=2)
    assert f"{path}:5: jobs.use.deps.model: ':oops' is not a job reference" in result.err
    assert snapshot(project) == before


def test_invalid_recipe_dep_reference_writes_nothing_in_a_fresh_project(project):
    path = use_recipe(project, ":train/latest:fit")
    result = project.run("-f", "use.exmk", expect=2)
    assert f"{path}:5: jobs.use.deps.model" in result.err
    assert sorted(p.name for p in project.root.iterdir()) == ["use.exmk"]
