"""Hostile input: recipes and command lines built to break exmake.

Every case here is one that tests/test_recipe_errors.py does not already
hold. Each must end with exit status 2, exactly one line on stderr that
starts with `exmake: <file>:<line>: ` (or `exmake: <file>: ` when there is
no line) and names the key, nothing on stdout, and not one path written
under the project. A few hostile inputs are not errors (a file read through
a symlink, a directory holding a symlink loop): those are checked to load
quickly and to write nothing outside the project. Known bugs are marked
`xfail(strict=True)` with the reason.
"""

import os
import subprocess
import time

import pytest

BIG = 16 * 1024 * 1024  # exmake.yamlsource.MAX_RECIPE_BYTES


class Link:
    """A symlink to create before the run (target as written)."""

    def __init__(self, target):
        self.target = target


def tree(root):
    """Every path under `root` (symlinks listed, never followed), sorted."""
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            paths.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(paths)


def make(project, recipe, files=None):
    """Write the recipe (text or bytes) and the extra files; return the recipe path."""
    project.root.mkdir(parents=True, exist_ok=True)
    path = project.root / "Exmakefile"
    path.write_bytes(recipe if isinstance(recipe, bytes) else recipe.encode())
    for rel, content in (files or {}).items():
        target = project.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            os.symlink(content.target, target)
        elif content is None:
            target.mkdir()
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return path


def refused(project, *args, timeout=60):
    """Run exmake expecting a refusal; return its one stderr line after the common checks."""
    before = tree(project.root)
    result = project.run(*args, timeout=timeout)
    assert result.code == 2, result
    assert result.out == "", result
    lines = result.err.splitlines()
    assert len(lines) == 1, result
    assert "Traceback" not in result.err
    assert tree(project.root) == before  # nothing written
    return lines[0]


def huge_recipe():
    """More than 16 MiB, in many ordinary comment lines after a good recipe."""
    comment = "# " + "x" * 1000 + "\n"
    return "jobs:\n  a: {run: x}\n" + comment * (BIG // len(comment) + 10)


def huge_line():
    """One 8 MiB line (under the size limit) holding a misspelt key."""
    return "{jobs: {a: {run: 'echo " + "n" * (8 * 1024 * 1024) + "', bogus: 1}}}"


def billion_laughs(where):
    """The classic alias bomb: 9**10 leaves from ten short lines, nested under `where`."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    body = "".join(f"        {line}\n" for line in lines)
    return f"jobs:\n  a:\n    run: x\n    {where}:\n      A:\n{body}"


def spread_bomb(over_jobs=False):
    """500 options (or jobs) of 2,550 values each through aliases: each far
    under the per-option limit, 1.3 million in all."""
    anchors = ('anchors:\n  l0: &l0 [' + ",".join(["x"] * 50) + "]\n"
               "  l1: &l1 [" + ",".join(["*l0"] * 50) + "]\n")
    if over_jobs:
        return anchors + "jobs:\n" + "".join(f"  j{i}: {{run: x, options: {{o: *l1}}}}\n" for i in range(500))
    return anchors + "jobs:\n  a:\n    run: x\n    options:\n" + "".join(f"      o{i}: *l1\n" for i in range(500))


BINARY = bytes(range(256)) * 4
PY_WITH_NUL = b"def synthesis():\n    pass\n# \x00\n"

# id -> (recipe, extra files, line (None: no line), text the message must hold)
CASES = {
    "huge recipe": (huge_recipe(), {}, None, "larger than 16 MiB; not a recipe"),
    "huge single line": (huge_line(), {}, 1, "jobs.a.bogus: unknown key"),
    "yaml stream of two documents": ("jobs:\n  a: {run: x}\n---\njobs:\n  b: {run: y}\n", {}, 3,
                                     "expected a single document in the stream"),
    "scalar as recipe": ("hello\n", {}, 1, "the recipe must be a mapping"),
    "number as recipe": ("42\n", {}, 1, "the recipe must be a mapping"),
    "null as recipe": ("null\n", {}, 1, "the recipe is empty"),
    "job is a list": ("jobs:\n  a: [run, x]\n", {}, 2, "jobs.a: must be a mapping"),
    "deps a number": ("jobs:\n  a:\n    run: x\n    deps: 3\n", {}, 4, "jobs.a.deps: must be a mapping"),
    "input is a symlink loop": ("jobs:\n  a:\n    run: x\n    inputs: {d: loopa}\n",
                                {"loopa": Link("loopb"), "loopb": Link("loopa")}, 4,
                                "jobs.a.inputs.d: 'loopa': no such file or directory"),
    "output dotdot in the middle": ("jobs:\n  a:\n    run: x\n    outputs: [a/../../b]\n", {}, 4,
                                    "jobs.a.outputs: 'a/../../b' must stay inside"),
    "output dot": ("jobs:\n  a:\n    run: x\n    outputs: [.]\n", {}, 4,
                   "jobs.a.outputs: '.' names the directory itself"),
    "output empty": ("jobs:\n  a:\n    run: x\n    outputs: ['']\n", {}, 4,
                     "jobs.a.outputs: must be a relative path"),
    "output nul byte": ('jobs:\n  a:\n    run: x\n    outputs: ["a\\0b"]\n', {}, 4, "jobs.a.outputs: 'a\\x00b'"),
    "publish to dot": ("jobs:\n  a:\n    run: x\n    publish: {.: y}\n", {}, 4,
                       "jobs.a.publish..: '.' names the directory itself"),
    "publish to results/../..": ("jobs:\n  a:\n    run: x\n    publish: {results/../..: y}\n", {}, 4,
                                 "jobs.a.publish.results/../..: 'results/../..' must stay inside"),
    "workdir a list": ("workdir: [w]\njobs:\n  a: {run: x}\n", {}, 1, "workdir: must be a non-empty string"),
    "results a mapping": ("results: {}\njobs:\n  a: {run: x}\n", {}, 1, "results: must be a non-empty string"),
    "slices 0": ("slices: 0\njobs:\n  a: {run: x}\n", {}, 1, "slices: must be a whole number from 1 to 1024, not 0"),
    "slices a million": ("slices: 1000000\njobs:\n  a: {run: x}\n", {}, 1, "slices: must be a whole number"),
    "slices true": ("slices: true\njobs:\n  a: {run: x}\n", {}, 1, "slices: must be a whole number"),
    "job slices 0": ("jobs:\n  a:\n    run: x\n    slices: 0\n", {}, 4, "jobs.a.slices: must be a whole number"),
    "job name an int": ("jobs:\n  1: {run: x}\n", {}, 2, "jobs.1: a job name must be a simple identifier"),
    "job name null": ("jobs:\n  null: {run: x}\n", {}, 2, "jobs.None: a job name must be a simple identifier"),
    "job name true": ("jobs:\n  true: {run: x}\n", {}, 2, "jobs.True: a job name must be a simple identifier"),
    "default empty list": ("default: []\njobs:\n  a: {run: x}\n", {}, 1, "default: must be a job name or a list"),
    "profile names a profile": ("profiles:\n  small: {cores: 1}\n  big: {profile: small}\njobs:\n  a: {run: x}\n",
                                {}, 3, "profiles.big.profile: a profile cannot name another profile"),
    "env value a mapping": ("jobs:\n  a:\n    run: x\n    env: {A: {b: c}}\n", {}, 4,
                            "jobs.a.env.A: must be a string or number"),
    "option a set": ("jobs:\n  a:\n    run: x\n    options: {s: !!set {a, b}}\n", {}, 4,
                     "jobs.a.options.s: set"),
    "option key not an identifier": ("jobs:\n  a:\n    run: x\n    options: {my-opt: 1}\n", {}, 4,
                                     "jobs.a.options.my-opt: an option name must be a simple identifier"),
    "run empty": ("jobs:\n  a:\n    run: ''\n", {}, 3, "jobs.a.run: must be a non-empty string"),
    "run only spaces": ("jobs:\n  a:\n    run: '   '\n", {}, 3, "jobs.a.run: must be a non-empty string"),
    "method a directory": ("jobs:\n  a:\n    method: methods\n", {"methods": None}, 3,
                           "jobs.a.method: job script"),
    "dep reference colon only": ('jobs:\n  a:\n    run: x\n    deps: {x: ":"}\n', {}, 4,
                                 "jobs.a.deps.x: ':' is not a job reference"),
    "dep reference no list": ('jobs:\n  a:\n    run: x\n    deps: {x: ":nolist"}\n', {}, 4,
                              "jobs.a.deps.x: ':nolist' is not a job reference"),
    "dep reference no name": ('jobs:\n  a:\n    run: x\n    deps: {x: ":a/b"}\n', {}, 4,
                              "jobs.a.deps.x: ':a/b' is not a job reference"),
    "yaml bomb in env": (billion_laughs("env"), {}, 12,
                         "jobs.a.env.A.l6: YAML aliases expand this to more than 1,000,000 values"),
    # issue 10, defect 26: each option under the per-value limit, millions in all
    "alias bomb spread over options": (spread_bomb(), {}, 7,
                                       "jobs.a.options: YAML aliases expand this to more than 1,000,000"),
    "alias bomb spread over jobs": (spread_bomb(over_jobs=True), {}, 4,
                                    "jobs: YAML aliases expand this to more than 1,000,000"),
    "number of 5000 digits": ("jobs:\n  a:\n    run: x\n    options: {n: " + "9" * 5000 + "}\n", {}, 4,
                              "a number with 5,000 digits; at most 100"),
    "job name too long for a directory": ("jobs:\n  " + "j" * 250 + ": {run: x}\n", {}, 2,
                                          "a job name of 250 characters; at most 200"),
    "mem beyond 64 bits": (f"jobs:\n  a:\n    run: x\n    resources: {{mem: {2 ** 70}}}\n", {}, 4,
                           "jobs.a.resources.mem: 1180591620717411303424 is more than 1024T"),
    "time beyond 64 bits": (f"jobs:\n  a:\n    run: x\n    resources: {{time: {2 ** 70}}}\n", {}, 4,
                            "jobs.a.resources.time: 1180591620717411303424 is more than 366 days"),
    "mem of 5000 digits": ("jobs:\n  a:\n    run: x\n    resources: {mem: '" + "9" * 5000 + "G'}\n", {}, 4,
                           "jobs.a.resources.mem: '99999"),
    "time of 5000 digits": ("jobs:\n  a:\n    run: x\n    resources: {time: '" + "9" * 5000 + "d'}\n", {}, 4,
                            "jobs.a.resources.time: '99999"),
    "cores beyond 64 bits": (f"jobs:\n  a:\n    run: x\n    resources: {{cores: {2 ** 70}}}\n", {}, 4,
                             "jobs.a.resources.cores: 1180591620717411303424 is more than 1,000,000"),
    "dep reference with a 50-digit ~N": ('jobs:\n  a:\n    run: x\n    deps: {x: ":default/~' + "9" * 50
                                         + ':b"}\n', {}, 4, "jobs.a.deps.x: 'default/~999"),
    "dep reference with a long list name": ('jobs:\n  a:\n    run: x\n    deps: {x: ":' + "l" * 600
                                            + '/latest:b"}\n', {}, 4, "a urd list name of 600 characters"),
    # issue 10, defect 30: one line, with the line number
    "control character in a plain scalar": ("jobs:\n  a:\n    run: echo \x01 hi\n", {}, 3,
                                            "character U+0001 is not allowed in YAML"),
    "control character in a key": ("jobs:\n  a: {run: x}\n  \x07b: {run: y}\n", {}, 3,
                                   "character U+0007 is not allowed in YAML"),
    # issue 10, defect 28: malformed placeholders are the loader's to refuse
    "placeholder with no name": ("jobs:\n  a:\n    run: cat {inputs.} > x\n    inputs: {t: Exmakefile}\n", {}, 3,
                                 "jobs.a.run: malformed placeholder '{inputs.}'"),
    "placeholder with two dots": ("jobs:\n  a:\n    run: ls {deps.x.y}\n  x: {run: y}\n", {}, 3,
                                  "jobs.a.run: malformed placeholder '{deps.x.y}'"),
    "placeholder not closed": ("jobs:\n  a:\n    run: cat {inputs.t\n    inputs: {t: Exmakefile}\n", {}, 3,
                               "jobs.a.run: malformed placeholder '{inputs.t'"),
    "placeholder holding a space": ("jobs:\n  a:\n    run: echo {options.n } > x\n    options: {n: 1}\n", {}, 3,
                                    "jobs.a.run: malformed placeholder '{options.n'"),
    # issue 10, defect 18: what a build writes is no input
    "input inside the results directory": ("jobs:\n  a:\n    run: cat {inputs.t}\n    inputs: {t: results/r.txt}\n",
                                           {"results/r.txt": "r\n"}, 4,
                                           "jobs.a.inputs.t: 'results/r.txt' is inside the results directory"),
    "input glob inside the results directory": ("jobs:\n  a:\n    run: cat {inputs.t}\n    inputs: {t: 'out/*'}\n"
                                                "results: out\n", {"out/r.txt": "r\n"}, 4,
                                                "jobs.a.inputs.t: 'out/*' is inside the results directory"),
    "input through a link into the results": ("jobs:\n  a:\n    run: cat {inputs.t}\n    inputs: {t: r/x}\n",
                                              {"results/x": "r\n", "r": Link("results")}, 4,
                                              "jobs.a.inputs.t: 'r/x' is inside the results directory"),
    "input inside the workdir": ("jobs:\n  a:\n    run: cat {inputs.t}\n    inputs: {t: work/a-1/x}\n",
                                 {"work/a-1/x": "w\n"}, 4, "jobs.a.inputs.t: 'work/a-1/x' is inside the workdir"),
}


@pytest.mark.parametrize("recipe,files,line,message", list(CASES.values()), ids=list(CASES))
def test_bad_recipe_is_refused(project, recipe, files, line, message):
    path = make(project, recipe, files)
    started = time.monotonic()
    error = refused(project, timeout=30)
    assert time.monotonic() - started < 15
    assert error.startswith(f"exmake: {path}:{line}: " if line else f"exmake: {path}: "), error
    assert message in error, error


# A problem inside a job script names the script (no line when the file is not text).
SCRIPT_CASES = {
    "method a binary file": ("tool.py", BINARY),
    "method with a nul byte": ("tool.py", PY_WITH_NUL),
}


@pytest.mark.parametrize("name,content", list(SCRIPT_CASES.values()), ids=list(SCRIPT_CASES))
def test_unreadable_job_script_is_refused(project, name, content):
    make(project, f"jobs:\n  a:\n    method: {name}\n", {name: content})
    error = refused(project)
    assert error.startswith(f"exmake: {project.root / name}: "), error
    assert "null bytes" in error or "not UTF-8" in error, error


# -- command lines ---------------------------------------------------------

RECIPE = "jobs:\n  a: {run: 'true'}\n"
COMMAND_CASES = {
    "-j negative": (["-j", "-3"], "exmake: -j -3: the number of cores must be at least 1"),
    "show empty job": (["show", ""], "exmake: '' is not a job"),
    "path with a space": (["path", "a b"], "exmake: 'a b' is not a job"),
    "urd list name bad": (["--urd", "bad name"], "exmake: 'bad name' is not a urd list name"),
    "backend nonsense": (["--backend", "nonsense"], "exmake: --backend nonsense: choose one of local"),
    # issue 10, defect 26: a list name longer than an LMDB key is refused before any job runs
    "urd list name too long": (["--urd", "l" * 600], "exmake: a urd list name of 600 characters"),
    "job reference of 5000 digits back": (["path", "a~" + "9" * 5000], "exmake: a job reference of 5,002"),
    "job reference with a 50-digit K": (["path", "a~" + "9" * 50], "exmake: 'a~999"),
    "job reference with a 50-digit N": (["show", "a-" + "9" * 50], "exmake: a-999"),
}


def test_log_reference_of_thousands_of_digits_is_refused(project):
    """issue 10, defect 26: int() of 5,000 digits was a traceback once the log existed."""
    make(project, RECIPE)
    project.run(expect=0)
    error = refused(project, "path", ":default/~" + "9" * 5000 + ":a")
    assert error.startswith("exmake: a job reference of 5,012 characters"), error


@pytest.mark.parametrize("args,message", list(COMMAND_CASES.values()), ids=list(COMMAND_CASES))
def test_bad_command_line_is_refused(project, args, message):
    make(project, RECIPE)
    error = refused(project, *args)
    assert error.startswith(message), error


def test_fifo_as_recipe_is_refused_not_waited_on(project):
    """issue 10, defect 26: `-f fifo` waited for a writer forever."""
    project.root.mkdir(parents=True)
    os.mkfifo(project.root / "pipe")
    try:
        error = refused(project, "-f", "pipe", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("exmake waited on the FIFO")
    assert error == f"exmake: {project.root / 'pipe'}: is not a regular file (a FIFO, socket or device?); " \
                    "a recipe must be a file", error


def test_deeply_nested_json_in_urd_import_is_refused(project):
    """issue 10, defect 26: RecursionError traceback before."""
    make(project, RECIPE, {"deep.jsonl": "[" * 100_000 + "]" * 100_000 + "\n"})
    error = refused(project, "urd", "import", "deep.jsonl")
    assert error == "exmake: deep.jsonl:1: JSON nested too deep to be an entry", error


def test_urd_import_with_a_huge_job_number_is_refused(project):
    make(project, RECIPE)
    project.run(expect=0)
    exported = project.run("urd", "export", expect=0).out
    (project.root / "big.jsonl").write_text(exported.replace('"a-1"', '"a-' + "9" * 5000 + '"'))
    error = refused(project, "urd", "import", "big.jsonl")
    assert error.startswith("exmake: big.jsonl:1: job 'a' has a bad jobid"), error


def test_input_path_longer_than_an_lmdb_key_builds(project):
    """An input's absolute path is a key of the hash cache; LMDB keys hold at
    most 511 bytes, and a deep data tree went past that: the build failed
    after running, every time."""
    deep = "/".join(["d" * 200] * 3)
    make(project, f"jobs:\n  a:\n    run: cat {{inputs.t}} > x\n    inputs: {{t: {deep}/f.txt}}\n",
         {f"{deep}/f.txt": "x\n"})
    project.run(expect=0)
    assert "reused" in project.run("-v", expect=0).out


def test_urd_list_with_dotdot_is_refused_after_a_build(project):
    make(project, RECIPE)
    project.run(expect=0)
    error = refused(project, "urd", "../x")
    assert error.startswith("exmake: '..' is not a urd list name"), error


def test_jobs_not_a_number_gives_usage_and_one_error_line(project):
    """argparse's own form: the usage block, then one `exmake: error:` line."""
    make(project, RECIPE)
    before = tree(project.root)
    result = project.run("-j", "abc", expect=2)
    assert result.out == ""
    errors = [line for line in result.err.splitlines() if line.startswith("exmake")]
    assert errors == ["exmake: error: argument -j/--jobs: invalid int value: 'abc'"], result
    assert result.err.startswith("usage: exmake ")
    assert tree(project.root) == before


def test_backend_nonsense_is_refused_on_a_settled_project(project):
    make(project, RECIPE)
    past = time.time() - 60
    os.utime(project.root / "Exmakefile", (past, past))
    project.run(expect=0)
    assert "nothing changed" in project.run("-v", expect=0).out  # the fast path is on
    error = refused(project, "--backend", "nonsense")
    assert error.startswith("exmake: --backend nonsense: choose one of local"), error


# -- not errors, but must stay quick and inside the project -------------------

def test_directory_holding_a_symlink_loop_loads_quickly(project):
    make(project, "jobs:\n  a:\n    run: 'true'\n    inputs: {d: data, g: 'data/**'}\n",
         {"data/f.txt": "f\n", "data/up": Link("..")})
    started = time.monotonic()
    project.run("-n", expect=0, timeout=30)
    assert time.monotonic() - started < 15
    assert tree(project.root) == ["Exmakefile", "data", "data/f.txt", "data/up"]


def test_input_symlink_pointing_outside_is_read_not_written(project, tmp_path):
    """Inputs may live anywhere (as absolute input paths may): reading is allowed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside\n")
    make(project, "jobs:\n  a:\n    run: cat {inputs.t} > copy.txt\n    inputs: {t: link.txt}\n",
         {"link.txt": Link(str(outside / "secret.txt"))})
    project.run(expect=0)
    assert (project.root / "work" / "a-1" / "copy.txt").read_text() == "outside\n"
    assert tree(outside) == ["secret.txt"]


def test_publish_through_a_symlink_leading_outside_is_refused(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    make(project, "jobs:\n  a:\n    run: echo hi > x.txt\n    publish: {evil/x.txt: x.txt}\n",
         {"results/evil": Link(str(outside))})
    error = refused(project)  # found before the job runs (issue 10, defect 20)
    assert "jobs.a.publish.evil/x.txt: cannot publish there" in error and "leads outside" in error, error
    assert tree(outside) == []


def test_publish_below_a_symlink_leading_outside_creates_nothing_outside(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    make(project, "jobs:\n  a:\n    run: echo hi > x.txt\n    publish: {evil/sub/x.txt: x.txt}\n",
         {"results/evil": Link(str(outside))})
    error = refused(project)
    assert "leads outside" in error, error
    assert tree(outside) == []


PUBLISH_TAKEN = {
    "a regular file": ({"results/report.txt": "mine\n"}, "report.txt", "exists and is not a symlink"),
    "a directory": ({"results/report.txt/keep": "mine\n"}, "report.txt", "exists and is not a symlink"),
    "a file where a directory must be": ({"results/sub": "mine\n"}, "sub/report.txt", "is a file, not a directory"),
}


@pytest.mark.parametrize("files,dest,problem", list(PUBLISH_TAKEN.values()), ids=list(PUBLISH_TAKEN))
def test_publish_target_taken_is_refused_before_any_job_runs(project, files, dest, problem):
    """issue 10, defect 20: noticed only after the jobs had run (and written work/)."""
    path = make(project, "jobs:\n  first: {run: 'echo 1 > one'}\n  a:\n    run: echo hi > x.txt\n"
                f"    deps: [first]\n    publish:\n      {dest}: x.txt\n", files)
    error = refused(project)
    assert error.startswith(f"exmake: {path}:7: jobs.a.publish.{dest}: cannot publish there: "), error
    assert problem in error, error


# -- known bugs: bad input that is not refused cleanly ------------------------

def test_yaml_bomb_in_options_is_refused_quickly(project):
    path = make(project, billion_laughs("options"))
    try:
        error = refused(project, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("exmake was still loading the recipe after 5 s")
    assert error.startswith(f"exmake: {path}:"), error


NUL_CASES = {
    "nul in run": ('jobs:\n  a:\n    run: "echo a\\0b"\n', 3, "jobs.a.run"),
    "nul in env value": ('jobs:\n  a:\n    run: echo\n    env: {A: "a\\0b"}\n', 4, "jobs.a.env.A"),
    "nul in workdir": ('workdir: "w\\0x"\njobs:\n  a: {run: echo}\n', 1, "workdir"),
    "nul in results": ('results: "r\\0x"\njobs:\n  a: {run: echo > x, publish: {x: x}}\n', 1, "results"),
}


@pytest.mark.parametrize("recipe,line,key", list(NUL_CASES.values()), ids=list(NUL_CASES))
def test_nul_byte_is_refused_by_the_recipe_check(project, recipe, line, key):
    path = make(project, recipe)
    error = refused(project)
    assert error.startswith(f"exmake: {path}:{line}: {key}"), error


def test_workdir_that_is_a_file_is_refused(project):
    path = make(project, "workdir: data.txt\njobs:\n  a: {run: 'true'}\n", {"data.txt": "x\n"})
    error = refused(project)
    assert error.startswith(f"exmake: {path}") and "data.txt" in error, error


def test_job_named_like_a_command_is_warned_about_and_builds_with_build(project):
    """issue 10, defect 24: `exmake status` silently ran the command, not the job."""
    path = make(project, "jobs:\n  a: {run: 'true'}\n  status:\n    run: echo hi > x\n")
    warning = (f"exmake: warning: {path}:3: jobs.status: `exmake status` runs the status command; "
               "build this job with `exmake build status`")
    result = project.run("status", expect=0)
    assert result.err.splitlines() == [warning], result
    result = project.run("build", "status", expect=0)
    assert warning in result.err.splitlines(), result
    assert (project.root / "work" / "status-1" / "x").read_text() == "hi\n"
    assert "exmake build NAME" in project.run("--help", expect=0).out


def test_a_month_long_time_limit_builds(project):
    """Long limits are normal on clusters; the local killer must take them too."""
    make(project, "jobs:\n  a:\n    run: echo hi > x\n    resources: {time: 30d}\n")
    result = project.run(timeout=60)
    assert result.code == 0, result
