"""Shell completion (`exmake completion bash|zsh|fish`) run in the real shells,
the fast name scan behind it, and `exmake list` with `doc:`."""

import os
import pty
import select
import shutil
import subprocess
import sys
import time

import pytest

from conftest import REPO, exmake_env
from exmake.commands.completion import scan_jobs

RECIPE = """\
workdir: work
jobs:
  words:
    doc: split the book into words
    run: "tr -s ' ' '\\\\n' < {inputs.text} > words.txt"
    inputs: {text: book.txt}
  stats:
    doc: one line per book
    foreach: {book: "books/*.txt"}
    run: "wc -l < {inputs.book} > n.txt"
    inputs: {book: "books/{each.book}.txt"}
  report:
    run: "cat {deps.words}/words.txt > report.txt"
    deps: [words]
default: [report]
"""


@pytest.fixture
def shell_project(project, tmp_path):
    """A built project, and an `exmake` on PATH that runs this checkout."""
    project.recipe(RECIPE)
    project.write("book.txt", "in the beginning\n")
    project.write("books/ruth.txt", "a\n")
    project.write("books/jonah.txt", "b\n")
    project.run("stats", "words", expect=0)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "exmake"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m exmake \"$@\"\n")
    wrapper.chmod(0o755)
    env = exmake_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    return project, env


def script(project, shell):
    return project.run("completion", shell, expect=0).out


def bash_complete(project, env, words):
    """What `_exmake` offers for `words` (the last one being completed), run in bash."""
    path = project.root.parent / "completion.bash"
    if not path.exists():
        path.write_text(script(project, "bash"))
    line = " ".join(f"'{w}'" for w in words)
    program = (f"source {path}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _exmake; "
               "printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run(["bash", "--norc", "-c", program], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_job_names_commands_flags_and_values(shell_project):
    project, env = shell_project
    # Job names and family names (and the built instances), and commands, at the start.
    first = bash_complete(project, env, ["exmake", ""])
    assert first[:3] == ["words", "stats", "report"]
    assert {"stats@ruth", "stats@jonah", "status", "show", "list", "clean", "completion"} <= set(first)
    assert "exec-job" not in first  # hidden
    assert bash_complete(project, env, ["exmake", "wo"]) == ["words"]
    assert bash_complete(project, env, ["exmake", "stat"]) == ["stats", "stats@jonah", "stats@ruth", "status"]
    # After a command: its job names only, and its own flags.
    assert bash_complete(project, env, ["exmake", "status", "re"]) == ["report"]
    assert bash_complete(project, env, ["exmake", "path", ""]) == ["words", "stats", "report", "stats@jonah",
                                                                    "stats@ruth"]
    assert "--resources" in bash_complete(project, env, ["exmake", "status", "--"])
    assert "--resources" not in bash_complete(project, env, ["exmake", "--"])
    assert {"--keep-going", "--always-make", "--dry-run", "--json"} <= set(bash_complete(project, env, ["exmake", "--"]))
    assert bash_complete(project, env, ["exmake", "clean", "--w"]) == ["--workdir"]
    # Flag values: fixed words, files, and names from the recipe that -C and -f name.
    assert bash_complete(project, env, ["exmake", "--backend", ""]) == ["local", "slurm", "torque", "auto"]
    assert bash_complete(project, env, ["exmake", "emit", "--backend", ""]) == ["slurm", "torque"]
    assert bash_complete(project, env, ["exmake", "completion", ""]) == ["bash", "zsh", "fish"]
    assert bash_complete(project, env, ["exmake", "-j", "2", "-f", "Exm"]) == ["Exmakefile"]
    assert bash_complete(project, env, ["exmake", "-f", "Exmakefile", "why", "w"]) == ["words"]
    elsewhere = project.root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Other.yaml").write_text("jobs:\n  fit: {run: 'true'}\n")
    offered = bash_complete(project, env, ["exmake", "-C", str(elsewhere), "-f", "Other.yaml", "show", ""])
    assert offered[0] == "fit" and "words" not in offered
    assert set(offered[1:]) == set(os.listdir(project.root))  # show takes a PATH too
    # No recipe: no names, and no error.
    assert bash_complete(project, env, ["exmake", "-f", "nothing.yaml", "path", ""]) == []


def test_names_come_without_loading_the_recipe(project):
    # Inputs that do not exist and a job script that is missing: a full load
    # fails, the name scan does not care.
    project.recipe("""\
        jobs:
          first: {run: "cat {inputs.x}", inputs: {x: missing.txt}}
          second:
            method: missing_script.py
          fam: {foreach: {v: [a, b]}, run: "true"}
        """)
    assert project.run("list", expect=2).code == 2
    probe = ("import atexit, sys\n"
             "heavy = ('yaml', 'lmdb', 'exmake.recipe', 'exmake.workspace', 'exmake.method', 'exmake.families')\n"
             "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr))\n"
             "from exmake.cli import main\n"
             "main(['completion', '--names'])\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=project.root, capture_output=True, text=True,
                          env=exmake_env(None), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["first", "second", "fam"]
    assert proc.stderr.strip() == "[]"


def test_the_scan_reads_block_style_jobs_and_finds_families():
    text = """\
# a comment
workdir: w   # jobs: not here
jobs:
    # a comment inside
    "quoted": {run: "true"}
    plain:
        run: |
            echo nested:
            foreach: not a key of the job
        options:
            foreach: 3
    fam:
        foreach: {x: [1, 2]}
        run: "true"
    inline: {run: "true", foreach: {v: [a]}}
    'single':
        run: "true"
default: [plain]
"""
    names, families = scan_jobs(text)
    assert names == ["quoted", "plain", "fam", "inline", "single"]
    assert families == {"fam", "inline"}
    assert scan_jobs("jobs: {a: {run: 'true'}}\n") == ([], set())  # flow style: nothing, never a guess
    assert scan_jobs("workdir: w\n") == ([], set())


def test_every_command_is_in_every_script(project):
    from exmake.cli import COMMANDS
    project.root.mkdir()
    for shell in ("bash", "zsh", "fish"):
        text = script(project, shell)
        missing = [c for c in COMMANDS if c not in text]
        assert not missing, (shell, missing)
    assert "choose from" in project.run("completion", "tcsh", expect=2).err
    assert "name a shell" in project.run("completion", expect=2).err


def _needs(shell):
    if shutil.which(shell):
        return
    message = f"{shell} is not installed (scripts/install-test-deps installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def zsh_tab(project, env, typed, expect):
    """Type `typed` and TAB in an interactive zsh (a real pty, compinit loaded, the
    script sourced); returns what the terminal shows once `expect` appears."""
    path = project.root / "_exmake.zsh"
    path.write_text(script(project, "zsh"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh without any user's rc files
        os.chdir(project.root)
        os.execvpe("zsh", ["zsh", "-f", "-i"], {**env, "TERM": "dumb"})
    try:
        os.write(fd, f"PS1='READY> '; autoload -Uz compinit; compinit -u; source {path}; echo SOURCED\n".encode())
        _read_until(fd, b"SOURCED")
        _read_until(fd, b"READY> ")
        os.write(fd, typed.encode() + b"\t")
        return _read_until(fd, expect.encode()).decode(errors="replace")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def _read_until(fd, marker, timeout=60):
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert marker in seen, seen
    return seen


def test_zsh_completes_in_a_real_interactive_shell(shell_project):
    _needs("zsh")
    project, env = shell_project
    zsh_tab(project, env, "exmake wo", "exmake words ")
    zsh_tab(project, env, "exmake status --res", "exmake status --resources ")
    zsh_tab(project, env, "exmake --backend sl", "exmake --backend slurm ")
    shown = zsh_tab(project, env, "exmake stat", "status")  # ambiguous: the choices are listed
    assert "stats@ruth" in shown and "stats@jonah" in shown


def test_fish_completes(shell_project):
    _needs("fish")
    project, env = shell_project
    path = project.root / "exmake.fish"
    path.write_text(script(project, "fish"))

    def complete(line):
        proc = subprocess.run(["fish", "--no-config", "-c", f"source {path}; complete -C '{line}'"],
                              cwd=project.root, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == "", proc
        return [row.split("\t")[0] for row in proc.stdout.splitlines()]

    assert complete("exmake wo") == ["words"]
    assert set(complete("exmake stat")) == {"stats", "stats@jonah", "stats@ruth", "status"}
    assert complete("exmake status --res") == ["--resources"]
    assert complete("exmake --backend t") == ["torque"]
    assert complete("exmake path r") == ["report"]


def test_list_prints_jobs_and_families_with_their_doc(shell_project):
    project, _ = shell_project
    assert project.run("list", expect=0).out.splitlines() == [
        "words               split the book into words",
        "stats@{jonah,ruth}  one line per book (2 jobs)",
        "report",
    ]


def test_doc_is_one_line_of_text_and_not_part_of_the_key(shell_project):
    project, _ = shell_project
    project.recipe(RECIPE.replace("doc: split the book into words", "doc: the words, one a line"))
    assert project.run("words", "-n", "-q", expect=0).out == ""  # a new doc runs nothing
    project.recipe(RECIPE.replace("doc: split the book into words", "doc: [not, text]"))
    err = project.run("list", expect=2).err
    assert "Exmakefile:4: jobs.words.doc: must be a non-empty string" in err
    project.recipe(RECIPE.replace("doc: split the book into words", "doc: |\n      two\n      lines"))
    assert "Exmakefile:4: jobs.words.doc: must be one line" in project.run("list", expect=2).err


def test_the_packaged_module_has_no_stray_script_reference():
    # The scripts call `<the command typed> completion --names`: no path of this checkout.
    text = (REPO / "exmake/commands/completion.py").read_text()
    assert str(REPO) not in text
