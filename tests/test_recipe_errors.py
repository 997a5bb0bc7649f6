"""Bad recipes: exit 2, one message naming file, line and key, nothing written."""

import pytest

# (name, recipe text, extra files, expected line, text the message must hold)
CASES = [
    ("unknown top key", "jobs:\n  a: {run: x}\nslicez: 3\n", {}, 3, "slicez: unknown key (did you mean 'slices'?)"),
    ("unknown job key", "jobs:\n  a:\n    run: x\n    ouputs: [y]\n", {}, 4, "jobs.a.ouputs: unknown key (did you mean 'outputs'?)"),
    ("duplicate job", "jobs:\n  a: {run: x}\n  a: {run: y}\n", {}, 3, "a: duplicate key (first given on line 2)"),
    ("duplicate nested key", "jobs:\n  a:\n    run: x\n    run: y\n", {}, 4, "run: duplicate key (first given on line 3)"),
    ("run not a string", "jobs:\n  a:\n    run: [1, 2]\n", {}, 3, "jobs.a.run: must be a non-empty string"),
    ("missing run", "jobs:\n  a:\n    outputs: [x]\n", {}, 2, "jobs.a.run: a job needs exactly one of `run:`"),
    ("slices wrong type", "slices: many\njobs:\n  a: {run: x}\n", {}, 1, "slices: must be a whole number"),
    ("unknown dep", "jobs:\n  words: {run: x}\n  count:\n    run: y\n    deps: [word]\n", {}, 5, "no job named 'word' (did you mean 'words'?)"),
    ("self dep", "jobs:\n  a:\n    run: x\n    deps: [a]\n", {}, 4, "jobs.a.deps.a: a job cannot depend on itself"),
    ("cycle", "jobs:\n  a:\n    run: x\n    deps: [b]\n  b:\n    run: y\n    deps: [c]\n  c:\n    run: z\n    deps: [a]\n",
     {}, None, "dependency cycle: a -> b -> c -> a"),
    ("missing input", "jobs:\n  a:\n    run: x\n    inputs: {t: nothere.txt}\n", {}, 4, "jobs.a.inputs.t: 'nothere.txt': no such file"),
    ("empty glob", "jobs:\n  a:\n    run: x\n    inputs: {t: 'none/*.txt'}\n", {}, 4, "matches no file"),
    ("placeholder names nothing", "jobs:\n  a:\n    run: cat {inputs.txt}\n", {}, 3, "placeholder {inputs.txt} names nothing"),
    ("placeholder typo", "jobs:\n  a:\n    run: cat {input.t}\n    inputs: {t: f}\n", {"f": "x"}, 3, "(did you mean 'inputs'?)"),
    ("sliceno outside sliced job", "jobs:\n  a:\n    run: echo {sliceno}\n", {}, 3, "only known in a sliced job"),
    ("job name not identifier", "jobs:\n  my-job: {run: x}\n", {}, 2, "jobs.my-job: a job name must be a simple identifier"),
    ("job name digit", "jobs:\n  1job: {run: x}\n", {}, 2, "a job name must be a simple identifier"),
    ("malformed yaml", "jobs:\n  a: {run: x\n  b: y\n", {}, None, "not valid YAML"),
    ("tab indentation", "jobs:\n\ta: {run: x}\n", {}, 2, "not valid YAML"),
    ("empty recipe", "", {}, 1, "the recipe is empty"),
    ("not a mapping", "- a\n- b\n", {}, 1, "must be a mapping"),
    ("no jobs", "workdir: w\n", {}, 1, "jobs: missing"),
    ("jobs empty", "jobs: {}\n", {}, 1, "no jobs are defined"),
    ("jobs a list", "jobs:\n  - a\n", {}, 1, "jobs: must be a mapping"),
    ("output escapes", "jobs:\n  a:\n    run: x\n    outputs: [../x]\n", {}, 4, "must stay inside its directory"),
    ("output absolute", "jobs:\n  a:\n    run: x\n    outputs: [/etc/passwd]\n", {}, 4, "must stay inside its directory"),
    ("output reserved", "jobs:\n  a:\n    run: x\n    outputs: [post.json]\n", {}, 4, "written by exmake itself"),
    ("publish escapes", "jobs:\n  a:\n    run: x\n    publish: {../../x: y}\n", {}, 4, "must stay inside its directory"),
    ("publish twice", "jobs:\n  a:\n    run: x\n    publish: {r: y}\n  b:\n    run: x\n    publish: {r: y}\n", {}, 7, "already published by job 'a'"),
    ("option date", "jobs:\n  a:\n    run: x\n    options: {when: 2024-01-01}\n", {}, 4, "quote it"),
    ("env bad name", "jobs:\n  a:\n    run: x\n    env: {1X: y}\n", {}, 4, "not a valid environment variable name"),
    ("bad mem", "jobs:\n  a:\n    run: x\n    resources: {mem: lots}\n", {}, 4, "jobs.a.resources.mem: 'lots' is not a size"),
    ("bad time", "jobs:\n  a:\n    run: x\n    resources: {time: 1h70}\n", {}, 4, "jobs.a.resources.time: '1h70' is not a duration"),
    ("unknown resource", "jobs:\n  a:\n    run: x\n    resources: {memory: 1G}\n", {}, 4, "unknown key (did you mean 'mem'?)"),
    ("unknown profile", "profiles:\n  small: {cores: 1}\njobs:\n  a:\n    run: x\n    resources: {profile: smal}\n", {}, 6, "no profile named 'smal' (did you mean 'small'?)"),
    ("default unknown", "default: [b]\njobs:\n  a: {run: x}\n", {}, 1, "default: no job named 'b'"),
    ("non utf8", b"jobs:\n  a: {run: \xff\xfe}\n", {}, 2, "not UTF-8"),
    ("binary garbage", b"\x00\x01\x02jobs", {}, 1, "NUL byte"),
]


@pytest.mark.parametrize("name,text,files,line,message", CASES, ids=[c[0] for c in CASES])
def test_bad_recipe(project, name, text, files, line, message):
    path = project.root / "Exmakefile"
    project.root.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for rel, content in files.items():
        project.write(rel, content)
    before = sorted(project.root.rglob("*"))
    result = project.run(expect=2)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"exmake: {path}:"), result.err
    if line is not None:
        assert lines[0].startswith(f"exmake: {path}:{line}: "), result.err
    assert message in lines[0], result.err
    assert sorted(project.root.rglob("*")) == before  # nothing written


def test_cycle_names_the_line_of_the_closing_dependency(project):
    project.recipe("jobs:\n  a:\n    run: x\n    deps: [b]\n  b:\n    run: y\n    deps: [a]\n")
    result = project.run(expect=2)
    assert ":7: jobs.b.deps.a: dependency cycle: a -> b -> a" in result.err


def test_missing_recipe_file(project):
    project.root.mkdir(parents=True)
    result = project.run(expect=2)
    assert "Exmakefile: no such recipe file" in result.err


def test_unknown_target_is_a_usage_error(project):
    project.recipe("jobs:\n  words: {run: x}\n")
    result = project.run("wrds", expect=2)
    assert "no job named 'wrds'" in result.err and "did you mean 'words'" in result.err
    assert not (project.root / "work").exists()


def test_bad_option_value_is_a_usage_error(project):
    project.recipe("jobs:\n  a: {run: x}\n")
    assert project.run("-j", "0", expect=2)
    assert "at least 1" in project.run("-j", "0").err
