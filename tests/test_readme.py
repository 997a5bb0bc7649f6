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


def test_the_readme_recipe_builds(project):
    readme = (REPO / "README.md").read_text()
    block = readme.split("## A first recipe", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    project.recipe(block)
    project.write("data/book.txt", "the cat and the hat\nthe end\n")
    result = project.run(expect=0)
    assert "2 built" in result.out
    assert project.read("results/top.txt").split()[:2] == ["3", "the"]


def test_the_readme_job_script_runs(project):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Job scripts and slices", 1)[1]
    recipe = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    scripts = [b.split("```", 1)[0] for b in section.split("```python\n")[1:3]]
    project.recipe(recipe)
    for script in scripts:
        project.write(script.splitlines()[0].lstrip("# "), script, dedent=False)
    project.write("data/a.txt", "The cat\nthe hat\n")
    project.write("data/b.txt", "THE end\n")
    project.run(expect=0)
    assert project.read("work/count-1/counts.txt") == "3 the\n"
