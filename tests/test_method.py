"""Job scripts end to end: forked slices, code identity, options, failures, limits."""

import json
import os
import time

import pytest

SCRIPT = '''\
"""A job script for the tests."""
import os

options = {"scale": 2, "label": "x", "ratio": 0.5}


def prepare(options):
    return {"scale": options["scale"], "parent": os.getpid()}


def analysis(sliceno, prepare_res, job):
    with job.open("part", "w", sliceno=sliceno) as f:
        f.write(str(sliceno))
    return {"pids": [os.getpid()], "total": sliceno * prepare_res["scale"]}


def synthesis(analysis_res, prepare_res, job):
    job.json_save({"pids": [r["pids"][0] for r in analysis_res], "parent": prepare_res["parent"],
                   "total": sum(r["total"] for r in analysis_res)}, "summary.json")
    return sum(r["total"] for r in analysis_res)
'''

RECIPE = """\
slices: 3
jobs:
  work:
    method: work.py
    options: {options}
  use:
    method: use.py
    deps: [work]
"""

USE = '''\
def synthesis(deps, job):
    job.json_save({"loaded": deps.work.load(), "files": deps.work.files()}, "used.json")
'''


def setup(project, options="{}", script=SCRIPT):
    project.recipe(RECIPE.format(options=options))
    project.write("work.py", script, dedent=False)
    project.write("use.py", USE, dedent=False)


def jobs(result):
    return json.loads(result.out)["jobs"]


def test_analysis_runs_in_n_distinct_forked_processes(project):
    setup(project)
    project.run(expect=0)
    summary = json.loads(project.read("work/work-1/summary.json"))
    assert len(summary["pids"]) == 3 and len(set(summary["pids"])) == 3
    assert summary["parent"] not in summary["pids"]
    assert summary["total"] == (0 + 1 + 2) * 2
    assert [project.read(f"work/work-1/part.{n}") for n in range(3)] == ["0", "1", "2"]
    for n in range(3):
        assert (project.root / f"work/work-1/stdout.{n}.txt").exists()


def test_synthesis_result_is_what_dependents_load(project):
    setup(project)
    project.run(expect=0)
    used = json.loads(project.read("work/use-1/used.json"))
    assert used["loaded"] == 6
    assert "summary.json" in used["files"] and "result.pickle" in used["files"]
    assert not any(f.startswith("stdout") for f in used["files"])  # logs are not outputs


def test_post_records_stage_and_slice_timings(project):
    setup(project)
    project.run(expect=0)
    timings = json.loads(project.read("work/work-1/post.json"))["timings"]
    assert set(timings) >= {"prepare", "analysis", "synthesis", "slices"}
    assert len(timings["slices"]) == 3


def test_comment_and_formatting_edits_reuse_the_job(project):
    setup(project)
    project.run(expect=0)
    edited = SCRIPT.replace("def prepare(options):", "# a comment\n\n\ndef prepare( options ) :  # why\n")
    project.write("work.py", edited, dedent=False)
    assert jobs(project.run("--json", expect=0))["work"]["state"] == "reused"


def test_code_edit_rebuilds(project):
    setup(project)
    project.run(expect=0)
    project.write("work.py", SCRIPT.replace("sliceno * prepare_res", "(sliceno + 1) * prepare_res"),
                  dedent=False)
    job = jobs(project.run("--json", expect=0))["work"]
    assert job["state"] == "built" and job["reasons"] == ["job script work.py changed"]


def test_imported_local_module_edit_rebuilds(project):
    setup(project, script="from helpers.maths import double\n" + SCRIPT.replace(
        "return sum(r[\"total\"] for r in analysis_res)", "return double(1)"))
    project.write("helpers/__init__.py", "")
    project.write("helpers/maths.py", "def double(x):\n    return 2 * x\n")
    project.run(expect=0)
    project.write("helpers/maths.py", "def double(x):\n    # comments do not count\n    return 2 * x\n")
    assert jobs(project.run("--json", expect=0))["work"]["state"] == "reused"
    project.write("helpers/maths.py", "def double(x):\n    return x + x + 0\n")
    assert jobs(project.run("--json", expect=0))["work"]["state"] == "built"


def test_depend_extra_file_edit_rebuilds(project):
    setup(project, script='depend_extra = ["table.txt"]\n' + SCRIPT)
    project.write("table.txt", "1\n")
    project.run(expect=0)
    project.write("table.txt", "2\n")
    assert jobs(project.run("--json", expect=0))["work"]["state"] == "built"


def test_explicit_default_gives_the_same_key(project):
    setup(project)
    project.run(expect=0)
    setup(project, options="{scale: 2, ratio: 0.5}")
    assert jobs(project.run("--json", expect=0))["work"]["state"] == "reused"
    setup(project, options="{scale: 3}")
    job = jobs(project.run("--json", expect=0))["work"]
    assert job["state"] == "built" and job["reasons"] == ["option scale: 2 -> 3"]


def test_int_option_is_coerced_to_a_float_default(project):
    setup(project, options="{ratio: 1}")
    project.run(expect=0)
    setup_json = json.loads(project.read("work/work-1/setup.json"))
    assert setup_json["step"]["options"]["ratio"] == 1.0


@pytest.mark.parametrize("options,message", [
    ("{scale: many}", "jobs.work.options.scale: expected int (the default is 2), not str 'many'"),
    ("{scale: true}", "expected int"),
    ("{label: 3}", "expected str"),
    ("{scael: 3}", "work.py takes no option 'scael'"),
])
def test_option_errors_are_exit_2_naming_line_and_key(project, options, message):
    setup(project, options=options)
    result = project.run(expect=2)
    assert "Exmakefile:5: " in result.err and message in result.err, result.err
    assert not (project.root / "work").exists()


@pytest.mark.parametrize("script,message", [
    ("def analysis(job):\n    pass\n", "analysis() must take a `sliceno` parameter"),
    ("def prepare(jobb):\n    pass\n", "prepare() asks for 'jobb'"),
    ("x = 1\n", "defines none of prepare, analysis, synthesis"),
    ("def prepare(:\n", "syntax error"),
    ("options = dict(a=1)\ndef prepare():\n    pass\n", "must be a literal"),
])
def test_bad_job_scripts_are_exit_2_naming_the_script(project, script, message):
    setup(project, script=script)
    result = project.run(expect=2)
    assert "work.py:" in result.err and message in result.err, result.err


def test_missing_job_script_is_exit_2(project):
    setup(project)
    os.unlink(project.root / "work.py")
    result = project.run(expect=2)
    assert "Exmakefile:4: jobs.work.method: job script" in result.err


FAILING = '''\
import os, signal, time

options = {"how": "raise"}


def analysis(sliceno, options):
    if sliceno == 1:
        if options["how"] == "raise":
            raise ValueError("bad slice")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
'''


@pytest.mark.parametrize("how,reason", [("raise", "slice 1 raised ValueError: bad slice"),
                                        ("kill", "slice 1: killed by SIGKILL")])
def test_a_failing_slice_fails_the_job_at_once(project, how, reason):
    project.recipe(f"slices: 3\njobs:\n  work:\n    method: work.py\n    options: {{how: {how}}}\n")
    project.write("work.py", FAILING, dedent=False)
    started = time.monotonic()
    result = project.run(expect=1)
    assert time.monotonic() - started < 15  # not the 60 s the other slices sleep
    assert reason in result.out, result
    post = json.loads(project.read("work/work-1/post.json"))
    assert post["result"] == "FAILURE" and reason.split(": ", 1)[-1] in post["exception"]
    if how == "raise":
        assert "in analysis" in post["traceback"] and "stderr.1.txt" in result.out
    # No process of the job is left: nothing runs in its directory any more.
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and _cwd_in(pid, project.root / "work")]


def _cwd_in(pid, root):
    try:
        return os.readlink(f"/proc/{pid}/cwd").startswith(str(root))
    except OSError:
        return False


def test_prepare_exception_is_recorded_with_traceback(project):
    project.recipe("jobs:\n  work:\n    method: work.py\n")
    project.write("work.py", "def prepare():\n    return 1 / 0\n", dedent=False)
    result = project.run(expect=1)
    assert "prepare raised ZeroDivisionError" in result.out
    shown = project.run("show", "work-1", expect=0).out
    assert "Traceback" in shown and "ZeroDivisionError" in shown


def test_sliced_shell_job_runs_once_per_slice(project):
    project.recipe("""\
    jobs:
      split:
        run: "echo {sliceno} of {slices} $EXMAKE_SLICENO $$ > part.{sliceno}"
        slices: 4
    """)
    project.run(expect=0)
    parts = [project.read(f"work/split-1/part.{n}").split() for n in range(4)]
    assert [p[:4] for p in parts] == [[str(n), "of", "4", str(n)] for n in range(4)]
    assert len({p[4] for p in parts}) == 4  # four processes


def test_failing_slice_of_a_shell_job_stops_the_others(project):
    project.recipe("""\
    jobs:
      split:
        run: "if [ {sliceno} = 2 ]; then echo broken >&2; exit 5; fi; sleep 60"
        slices: 3
    """)
    started = time.monotonic()
    result = project.run(expect=1)
    assert time.monotonic() - started < 15
    assert "exit status 5" in result.out and "stderr.2.txt" in result.out and "| broken" in result.out


def test_memory_limit_fails_the_job(project):
    project.recipe("jobs:\n  big:\n    method: big.py\n    slices: 1\n    resources: {mem: 200M}\n")
    project.write("big.py", "def analysis(sliceno):\n    return len(bytearray(600 * 2**20))\n", dedent=False)
    result = project.run(expect=1)
    assert "memory limit 200M exceeded (peak " in result.out


def test_time_limit_fails_a_method_job(project):
    project.recipe("jobs:\n  slow:\n    method: slow.py\n    slices: 2\n    resources: {time: 1s}\n")
    project.write("slow.py", "import time\ndef analysis(sliceno):\n    time.sleep(60)\n", dedent=False)
    started = time.monotonic()
    result = project.run(expect=1)
    assert time.monotonic() - started < 15 and "time limit" in result.out


def test_input_lines_cover_the_input_once(project):
    project.recipe("slices: 4\njobs:\n  lines:\n    method: lines.py\n    inputs: {text: text.txt}\n")
    project.write("text.txt", "".join(f"line {i}\n" for i in range(101)))
    project.write("lines.py", '''\
def analysis(sliceno, job):
    return [line for line in job.input_lines("text")]


def synthesis(analysis_res, job):
    job.json_save([len(part) for part in analysis_res], "sizes.json")
    return [line for part in analysis_res for line in part]
''', dedent=False)
    project.run(expect=0)
    sizes = json.loads(project.read("work/lines-1/sizes.json"))
    assert sum(sizes) == 101 and all(20 <= s <= 30 for s in sizes)


def test_installed_entry_point_method(project, tmp_path):
    site = tmp_path / "site"
    (site / "mymethods").mkdir(parents=True)
    (site / "mymethods/__init__.py").write_text("")
    (site / "mymethods/shared.py").write_text("GREETING = 'hello from a package'\n")
    (site / "mymethods/greet.py").write_text(
        "from .shared import GREETING\n\noptions = {'n': 1}\n\n"
        "def synthesis(job, options):\n    job.json_save([GREETING] * options['n'], 'greeting.json')\n")
    dist = site / "mymethods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mymethods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[exmake.methods]\ngreet = mymethods.greet\n")
    project.recipe('jobs:\n  hi:\n    method: "mymethods:greet"\n    options: {n: 2}\n')
    env = {"PYTHONPATH": f"{site}:{os.environ.get('PYTHONPATH', '')}"}
    from conftest import REPO
    env["PYTHONPATH"] = f"{REPO}:{env['PYTHONPATH']}"
    project.run(expect=0, env=env)
    assert json.loads(project.read("work/hi-1/greeting.json")) == ["hello from a package"] * 2
    setup_json = json.loads(project.read("work/hi-1/setup.json"))
    assert setup_json["step"]["method"] == "mymethods:greet==1.0"
    assert "module mymethods/shared.py" in setup_json["step"]["code"]
    assert "no installed entry point 'nope'" in project.run(
        "-f", project.write("Other", 'jobs:\n  x:\n    method: "mymethods:nope"\n'), env=env, expect=2).err
