"""exmake.yamlsource: YAML that remembers the line of every key and item.

Duplicate keys are errors naming both lines, merge keys (`<<`) work, and any
file at all either loads or raises RecipeError, never another exception.
"""

import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exmake.errors import RecipeError
from exmake.yamlsource import YamlList, YamlMap, load_yaml

RECIPE = """\
workdir: work
jobs:
  words:
    run: tr
    outputs:
      - words.txt

      - counts.txt
"""


def load(tmp_path, text):
    path = tmp_path / "Exmakefile"
    path.write_text(textwrap.dedent(text))
    return load_yaml(str(path))


def problem(tmp_path, text):
    with pytest.raises(RecipeError) as info:
        load(tmp_path, text)
    return info.value


def test_key_and_item_lines(tmp_path):
    doc = load(tmp_path, RECIPE)
    assert isinstance(doc, YamlMap) and doc.line == 1
    assert doc.key_lines == {"workdir": 1, "jobs": 2}
    words = doc["jobs"]["words"]
    assert doc["jobs"].line_of("words") == 3
    assert words.line_of("run") == 4 and words.line_of("outputs") == 5
    outputs = words["outputs"]
    assert isinstance(outputs, YamlList) and outputs == ["words.txt", "counts.txt"]
    assert outputs.item_lines == [6, 8]


def test_line_of_unknown_falls_back_to_own_line(tmp_path):
    words = load(tmp_path, RECIPE)["jobs"]["words"]
    assert words.line_of("nope") == words.line == 4
    assert words["outputs"].line_of(5) == words["outputs"].line


def test_scalars_stay_plain(tmp_path):
    doc = load(tmp_path, "a: 1\nb: 1.5\nc: true\nd: null\ne: text\n")
    assert doc == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "text"}
    assert type(doc["e"]) is str


def test_duplicate_top_level_key(tmp_path):
    error = problem(tmp_path, "a: 1\nb: 2\na: 3\n")
    assert (error.line, error.key) == (3, "a")
    assert "line 1" in error.problem
    assert str(error).endswith("Exmakefile:3: a: duplicate key (first given on line 1)")


def test_duplicate_nested_key(tmp_path):
    error = problem(tmp_path, """\
        jobs:
          words:
            run: a
            inputs: {}
            run: b
        """)
    assert (error.line, error.key) == (5, "run")
    assert "first given on line 3" in error.problem


def test_merge_key(tmp_path):
    doc = load(tmp_path, """\
        base: &base {cores: 1, mem: 1G}
        small:
          <<: *base
          time: 10m
        """)
    assert doc["small"] == {"cores": 1, "mem": "1G", "time": "10m"}
    assert doc["small"].line_of("time") == 4


def test_merge_key_can_be_overridden(tmp_path):
    doc = load(tmp_path, """\
        base: &base {cores: 1, mem: 1G}
        big:
          <<: *base
          mem: 8G
        """)
    assert doc["big"] == {"cores": 1, "mem": "8G"}


def test_syntax_error_names_line(tmp_path):
    error = problem(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    assert error.line >= 2 and "not valid YAML" in error.problem


def test_unhashable_key(tmp_path):
    assert "plain value" in problem(tmp_path, "? [1]\n: 1\n").problem


@pytest.mark.parametrize("data, expected", [
    (b"a: \xff\n", "not UTF-8"), (b"a: 1\n\x00", "NUL byte"),
])
def test_unreadable_text(tmp_path, data, expected):
    path = tmp_path / "Exmakefile"
    path.write_bytes(data)
    with pytest.raises(RecipeError, match=expected):
        load_yaml(str(path))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_yaml(str(tmp_path / "nope"))
    with pytest.raises(RecipeError, match="is a directory"):
        load_yaml(str(tmp_path))


@pytest.mark.parametrize("text", [
    "!!map [a]", "!!seq {a: 1}", "!!bool x", "!!int ''", "!!float ''", "!!timestamp 9999999-01-01",
])
def test_bad_explicit_tags_raise_recipe_error(tmp_path, text):
    problem(tmp_path, text)


def test_deep_nesting_raises_recipe_error(tmp_path):
    path = tmp_path / "Exmakefile"
    path.write_text("[" * 200_000 + "]" * 200_000)
    code = ("from exmake.yamlsource import load_yaml\nfrom exmake.errors import RecipeError\n"
            f"try:\n    load_yaml({str(path)!r})\nexcept RecipeError:\n    print('RecipeError')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "RecipeError", proc


def check_loads_or_recipe_error(path, data):
    path.write_bytes(data)
    try:
        load_yaml(str(path))
    except RecipeError:
        pass


@settings(max_examples=300, deadline=None, database=None)
@given(st.text())
def test_any_text_loads_or_raises_recipe_error(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "fuzz-text.yaml"
    check_loads_or_recipe_error(path, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary())
def test_any_bytes_load_or_raise_recipe_error(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz-bytes.yaml"
    check_loads_or_recipe_error(path, data)
