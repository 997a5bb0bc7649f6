"""Regressions from the review of issue 18: a TAB never hangs on a FIFO recipe,
never runs what a file name holds, and follows -C/-f paths typed with quotes."""

import os
import shlex
import subprocess
import sys

from conftest import exmake_env
from test_completion import _needs, bash_complete, script, zsh_tab


def test_names_from_a_fifo_recipe_are_none_and_the_tab_does_not_wait(project):
    project.root.mkdir(parents=True, exist_ok=True)
    os.mkfifo(project.root / "Exmakefile")
    # No writer ever comes: before the fix open() waited forever (the timeout killed it).
    proc = subprocess.run([sys.executable, "-m", "exmake", "completion", "--names"], cwd=project.root,
                          env=exmake_env(None), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "", proc


def _shell_env(project, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "exmake"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m exmake \"$@\"\n")
    wrapper.chmod(0o755)
    return exmake_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})


def test_bash_completion_runs_nothing_a_file_name_holds(project, tmp_path):
    project.recipe('jobs:\n  fam:\n    foreach: {x: [a, b]}\n    run: "true"\n')
    project.write("work/fam@a-LATEST", "")
    project.write("work/fam@$(touch PWNED)-LATEST", "")   # shipped in a cloned repository, say
    project.write("work/fam@`touch PWNED2`-LATEST", "")
    env = _shell_env(project, tmp_path)
    names = project.run("completion", "--names", expect=0).out.split()
    assert names == ["fam", "fam@a"]
    assert bash_complete(project, env, ["exmake", "show", "f"]) == ["fam", "fam@a"]
    assert not (project.root / "PWNED").exists() and not (project.root / "PWNED2").exists()
    # A name with a glob character is offered as it is, not expanded against files.
    assert bash_complete(project, env, ["exmake", "show", "fam@"]) == ["fam@a"]


def test_bash_finds_names_after_a_quoted_or_escaped_directory(project, tmp_path):
    project.write("my dir/Exmakefile", 'jobs:\n  alpha: {run: "true"}\n')
    project.write("Exmakefile", 'jobs:\n  other: {run: "true"}\n')
    env = _shell_env(project, tmp_path)
    path = project.root.parent / "completion.bash"
    path.write_text(script(project, "bash"))

    def complete(words):  # as bash_complete, but any word (quotes included) as typed
        program = (f"source {path}; COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); "
                   f"COMP_CWORD={len(words) - 1}; _exmake; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        proc = subprocess.run(["bash", "--norc", "-c", program], cwd=project.root, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", proc
        return proc.stdout.split()

    for typed in ("my\\ dir", '"my dir"', "'my dir'", "my' 'dir", "my\" \"dir"):
        assert complete(["exmake", "-C", typed, "show", "al"]) == ["alpha"], typed
    assert complete(["exmake", "-f", "my\\ dir/Exmakefile", "show", "al"]) == ["alpha"]
    assert complete(["exmake", "show", "ot"]) == ["other"]


def test_zsh_finds_names_after_an_escaped_directory(project, tmp_path):
    _needs("zsh")
    project.write("my dir/Exmakefile", 'jobs:\n  alpha: {run: "true"}\n')
    project.write("Exmakefile", 'jobs:\n  other: {run: "true"}\n')
    env = _shell_env(project, tmp_path)
    assert "exmake" in script(project, "zsh")
    zsh_tab(project, env, "exmake -C my\\ dir show al", "show alpha ")
    zsh_tab(project, env, "exmake -C 'my dir' show al", "show alpha ")


def test_doc_with_a_control_character_is_an_error_naming_file_line_and_key(project):
    for doc, shown in (('"a\\rb"', "'\\r'"), ('"x\\x1b]0;pwned-title\\x07y"', "'\\x1b'"), ('"tab\\there"', "'\\t'"),
                       ('"del\\x7f"', "'\\x7f'"), ('"c1\\x9b2J"', "'\\x9b'")):
        project.recipe(f'jobs:\n  a:\n    run: "true"\n    doc: {doc}\n')
        result = project.run("list", expect=2)
        assert result.out == ""
        assert f"Exmakefile:4: jobs.a.doc: holds the control character {shown}" in result.err, (doc, result.err)
    project.recipe('jobs:\n  a:\n    run: "true"\n    doc: "plain — text, ünïcode"\n')
    assert project.run("list", expect=0).out == "a  plain — text, ünïcode\n"
