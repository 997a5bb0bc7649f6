"""`exmake batch`: sioworkers' batch interface. The printed JSON is the whole
contract, so every field is checked: result, jobid, path, outputs with hashes,
exception and traceback, the environ handed back, --markers, exit statuses,
and that a bad environ writes nothing."""

import json
import os
import subprocess
import sys

from tests.conftest import exmake_env

RECIPE = """\
    jobs:
      words:
        run: "tr -s ' ' '\\n' < {inputs.text} > words.txt"
        inputs: {text: book.txt}
        outputs: [words.txt]
      count:
        method: count.py
        deps: [words]
        options: {min: 1}
        publish: {n.txt: n.txt}
      bad:
        run: "echo something broke >&2; exit 3"
        deps: [words]
      after_bad:
        run: "true"
        deps: [bad]
"""

SCRIPT = """\
    options = {"min": 0}

    def synthesis(deps, job, options):
        if options["min"] > 9:
            raise ValueError(f"min is {options['min']}")
        with open(deps.words.path + "/words.txt") as f:
            n = sum(1 for line in f if len(line.strip()) >= options["min"])
        with job.open("n.txt", "w") as out:
            out.write(f"{n}\\n")
        return n
"""


def make(project):
    project.recipe(RECIPE)
    project.write("count.py", SCRIPT)
    project.write("book.txt", "a bb ccc\n")
    return project


def batch(project, environ, *args, via_env=False, expect=0):
    """Run `exmake batch` with `environ` (text) on stdin, or in $environ."""
    env = exmake_env({"environ": environ} if via_env else None)
    if not via_env:
        env.pop("environ", None)
    proc = subprocess.run([sys.executable, "-m", "exmake", "batch", *args], cwd=project.root, env=env,
                          input="" if via_env else environ, capture_output=True, text=True, timeout=120)
    assert proc.returncode == expect, (proc.stdout, proc.stderr)
    return proc


def document(proc):
    return json.loads(proc.stdout)


def digest_of(path):
    from exmake.fs.hashing import hash_file
    return hash_file(str(path))


def test_success_document_field_by_field(project):
    make(project)
    environ = {"job": "count", "options": {}, "id": "submission-7", "nested": {"keep": [1, 2]}}
    doc = document(batch(project, json.dumps(environ)))
    path = project.root / "work/count-1"
    assert doc == {**environ, "result": "SUCCESS", "jobid": "count-1", "path": str(path),
                   "outputs": {"n.txt": digest_of(path / "n.txt"),
                               "result.pickle": digest_of(path / "result.pickle")}}
    assert (path / "n.txt").read_text() == "3\n"
    post = json.loads((path / "post.json").read_text())
    assert doc["outputs"] == dict(post["outputs"])


def test_a_second_run_reuses_the_job(project):
    make(project)
    first = document(batch(project, '{"job": "count"}'))
    second = document(batch(project, '{"job": "count"}'))
    assert second == first
    assert project.job_dirs("count") == ["count-1"]


def test_environ_options_override_the_recipe_and_key_another_job(project):
    make(project)
    plain = document(batch(project, '{"job": "count"}'))
    other = document(batch(project, '{"job": "count", "options": {"min": 2}}'))
    assert other["result"] == "SUCCESS" and other["jobid"] == "count-2"
    assert (project.root / "work/count-2/n.txt").read_text() == "2\n"
    assert other["outputs"]["n.txt"] != plain["outputs"]["n.txt"]
    setup = json.loads((project.root / "work/count-2/setup.json").read_text())
    assert setup["step"]["options"] == {"min": 2}
    # the variant does not take over the recipe's published result
    assert os.path.realpath(project.root / "results/n.txt") == str(project.root / "work/count-1/n.txt")
    again = document(batch(project, '{"job": "count", "options": {"min": 1}}'))
    assert again["jobid"] == "count-1"  # the recipe's own options: the recipe's own job


def test_environ_from_the_environment_variable(project):
    make(project)
    doc = document(batch(project, '{"job": "words"}', via_env=True))
    assert (doc["result"], doc["jobid"]) == ("SUCCESS", "words-1")
    assert doc["outputs"] == {"words.txt": digest_of(project.root / "work/words-1/words.txt")}


def test_markers(project):
    make(project)
    proc = batch(project, '{"job": "words"}', "--markers")
    lines = proc.stdout.splitlines()
    assert lines[0] == "--- BEGIN ENVIRON ---" and lines[-1] == "--- END ENVIRON ---"
    # As sio-batch prints it: the document on the one line between the markers (review of issue 17).
    assert len(lines) == 3 and json.loads(lines[1])["result"] == "SUCCESS"


def test_a_deeply_nested_environ_is_one_clean_error(project):
    make(project)
    proc = batch(project, '{"job": "count", "x": ' + "[" * 100000 + "]" * 100000 + "}", expect=2)
    assert "nested too deeply" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.root / "work").exists()


def test_an_option_a_shell_job_does_not_have_is_refused(project):
    """Review of issue 17: a misspelt option ran the recipe's value under a new key, and said SUCCESS."""
    make(project)
    proc = batch(project, '{"job": "words", "options": {"unknown": 1}}', expect=2)
    assert "options.unknown" in proc.stderr and "no such option" in proc.stderr
    assert not (project.root / "work").exists()


def test_a_failing_command_is_data_and_exit_0(project):
    make(project)
    doc = document(batch(project, '{"job": "bad"}'))
    assert doc == {"job": "bad", "result": "FAILURE", "jobid": "bad-1", "path": str(project.root / "work/bad-1"),
                   "outputs": {}, "exception": "exit status 3", "traceback": "something broke"}


def test_a_failing_job_script_gives_its_exception_and_traceback(project):
    make(project)
    doc = document(batch(project, '{"job": "count", "options": {"min": 10}}'))
    assert doc["result"] == "FAILURE" and doc["jobid"] == "count-1" and doc["outputs"] == {}
    assert doc["exception"] == "ValueError: min is 10"
    assert doc["traceback"].startswith("Traceback (most recent call last):")
    assert 'count.py", line 5, in synthesis' in doc["traceback"]
    assert doc["traceback"].rstrip().endswith("ValueError: min is 10")


def test_a_failed_dependency_is_data_too(project):
    make(project)
    doc = document(batch(project, '{"job": "after_bad"}'))
    assert doc == {"job": "after_bad", "result": "FAILURE", "jobid": None, "path": None, "outputs": {},
                   "exception": "dependency bad failed", "traceback": ""}


def test_targets_build_more_jobs(project):
    make(project)
    doc = document(batch(project, '{"job": "words", "targets": ["count"]}'))
    assert doc["result"] == "SUCCESS"
    assert project.job_dirs() == ["count-1", "words-1"]


def test_the_recipe_field_names_the_recipe(project, tmp_path):
    make(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "exmake", "batch"], cwd=elsewhere, env=exmake_env(None),
                          input=json.dumps({"job": "words", "recipe": str(project.root / "Exmakefile")}),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(project.root / "work/words-1")


BAD_ENVIRONS = {
    "not json": ("{job: count", "is not JSON: line 1 column 2"),
    "empty": ("", "is not JSON"),
    "a list": ('["count"]', "must be a JSON object"),
    "no job": ('{"options": {}}', 'names no job'),
    "job not a string": ('{"job": 3}', 'names no job'),
    "unknown job": ('{"job": "cuont"}', "no job named 'cuont'"),
    "options not an object": ('{"job": "count", "options": [1]}', '"options" must be an object'),
    "unknown option": ('{"job": "count", "options": {"max": 1}}', "options.max: count.py takes no option 'max'"),
    "option of the wrong type": ('{"job": "count", "options": {"min": "two"}}', "options.min: expected int"),
    "bad targets": ('{"job": "count", "targets": "words"}', '"targets" must be a list'),
    "unknown target": ('{"job": "count", "targets": ["nope"]}', "no job named 'nope'"),
}


def test_bad_environs_are_one_error_exit_2_and_write_nothing(project):
    make(project)
    for label, (environ, message) in BAD_ENVIRONS.items():
        proc = batch(project, environ, expect=2)
        assert proc.stdout == "", label
        assert message in proc.stderr, (label, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (label, proc.stderr)
        assert not (project.root / "work").exists(), label
        assert not (project.root / "results").exists(), label


def test_bad_environ_in_the_environment_variable(project):
    make(project)
    proc = batch(project, "nope", via_env=True, expect=2)
    assert "environ ($environ) is not JSON" in proc.stderr
    assert not (project.root / "work").exists()


def test_a_batch_build_is_in_the_build_log(project):
    make(project)
    batch(project, '{"job": "words"}')
    entry = json.loads(project.run("urd", "export", expect=0).out.splitlines()[-1])
    assert entry["caption"] == "exmake batch" and entry["jobs"]["words"]["jobid"] == "words-1"
