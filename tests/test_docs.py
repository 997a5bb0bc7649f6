"""docs/ stays true to the code: every recipe key the checker accepts, every
resource key, every command with each of its options, the job-script API
and the on-disk records' fields are documented, and the README links it all."""

import inspect
import re

import pytest

from conftest import REPO
from exmake import cli, jobapi, method, recipe, resources
from exmake.fs import records, store

DOCS = REPO / "docs"
PAGES = ("recipe.md", "job-scripts.md", "commands.md", "on-disk.md")
COMMON_OPTIONS = {"-h", "--help", "-f", "--file", "-C", "--directory"}


def page(name):
    return (DOCS / name).read_text()


def table_keys(text):
    """The first-column `keys` of every table row."""
    return set(re.findall(r"^\| `([^`]+)`", text, re.M))


def test_every_recipe_key_is_in_a_table_of_the_recipe_reference():
    keys = table_keys(page("recipe.md"))
    for group in (recipe.TOP_KEYS, recipe.JOB_KEYS, tuple(resources.RESOURCE_KEYS)):
        missing = [key for key in group if key not in keys]
        assert not missing, missing


def test_every_placeholder_and_foreach_form_is_in_the_recipe_reference():
    text = page("recipe.md")
    for placeholder in ("{inputs.NAME}", "{deps.NAME}", "{options.NAME}", "{resources.cores}",
                        "{slices}", "{sliceno}", "{each.VAR}", "FAMILY@*", ":LIST/ENTRY:NAME", "{lines:"):
        assert placeholder in text, placeholder


def sections(text):
    """{title: body} of the `## title` sections."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2])}


@pytest.mark.parametrize("command", [*cli.COMMANDS, *cli.HIDDEN])
def test_every_command_has_a_section_naming_each_of_its_options(command):
    found = sections(page("commands.md"))
    assert f"`{command}`" in found, f"docs/commands.md has no section ## `{command}`"
    body = found[f"`{command}`"]
    parser, _ = cli.make_parser(command)
    options = {o for action in parser._actions for o in action.option_strings} - COMMON_OPTIONS
    missing = sorted(o for o in options if not re.search(rf"`{re.escape(o)}[ `=]", body))
    assert not missing, f"## `{command}` does not name {missing}"


def test_the_job_script_api_is_documented():
    text = page("job-scripts.md")
    for cls, prefix in ((jobapi.Job, "job."), (jobapi.JobDir, "deps.NAME.")):
        members = [n for n, _ in inspect.getmembers(cls) if not n.startswith("_")]
        members += [n for n in vars(cls("/p", "j-1", {}, 1) if cls is jobapi.Job else cls("/p", "j-1"))
                    if not n.startswith("_")]
        missing = sorted({m for m in members if f"`{prefix}{m}" not in text} - {"inputs"})
        assert not missing, (prefix, missing)
    for name in (*method.INJECTABLE, *method.FUNCTIONS, "depend_extra"):
        assert f"`{name}" in text, name
    assert "`exmake.slicer.merge.merge(" in text


def test_every_record_field_and_database_is_in_the_on_disk_reference():
    text = page("on-disk.md")
    setup = records.make_setup("a", "k", {}, {}, {}, "/r", command="c")
    post = records.make_post("a-1", False, 1, None, "r", None, "t", 0.0, {}, [], False, [], usage={})
    fields = {*setup, *post, "jobid", "created"}
    missing = sorted(f for f in fields if f'"{f}"' not in text and f"`{f}`" not in text)
    assert not missing, missing
    for name in store.DB_NAMES:
        assert f"| `{name.decode()}` |" in text, name


def test_the_readme_links_every_page():
    readme = (REPO / "README.md").read_text()
    index = page("README.md")
    for name in PAGES:
        assert f"](docs/{name})" in readme, name
        assert f"]({name})" in index, name
    assert "](docs/README.md)" in readme
