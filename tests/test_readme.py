"""The README's quick start is exactly two commands, and CI runs the second."""

import re

from conftest import REPO


def quick_start_commands():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_one_line_commands():
    commands = quick_start_commands()
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    assert "Exmakefile.example" in commands[0] and "pip install" in commands[0]


def test_ci_runs_the_second_command():
    ci = (REPO / ".ci/run").read_text().strip().splitlines()
    assert ci[-1].strip() == quick_start_commands()[1]


def test_test_command_starts_the_slurm_cluster():
    script = (REPO / quick_start_commands()[1].split()[0]).read_text()
    assert "scripts/local-slurm-start" in script
