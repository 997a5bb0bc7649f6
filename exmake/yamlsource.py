"""Read a YAML file into plain data that remembers where each key stood.

PyYAML silently keeps the last of two equal keys and forgets line numbers
once it has built Python objects. Recipes need both: a duplicate key is an
error, and every error names its line. So mappings load as `YamlMap` (a dict
with `line` and `key_lines`) and sequences as `YamlList` (a list with `line`
and `item_lines`); scalars stay plain Python values.
"""

import yaml

from exmake.errors import RecipeError

try:  # the C parser is several times faster on large recipes
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

MAX_RECIPE_BYTES = 16 * 1024 * 1024  # a recipe this big is a mistake, not a recipe


class YamlMap(dict):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines = {}

    def line_of(self, key):
        return self.key_lines.get(key, self.line)


class YamlList(list):
    """A sequence that knows its own line and the line of each item (1-based)."""

    line = 0

    def __init__(self, *args):
        super().__init__(*args)
        self.item_lines = []

    def line_of(self, index):
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _MarkingLoader(_BaseLoader):
    """A safe loader that builds YamlMap/YamlList and rejects duplicate keys."""


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)  # resolves `<<` merge keys first
    result = YamlMap()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise _LoadProblem(line, None, "a mapping key must be a plain value") from None
        if key in result:
            first = result.key_lines[key]
            raise _LoadProblem(line, key, f"duplicate key (first given on line {first})")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader, node):
    result = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_MarkingLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_MarkingLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


class _LoadProblem(Exception):
    def __init__(self, line, key, problem):
        super().__init__(problem)
        self.line, self.key, self.problem = line, key, problem


def load_yaml(path, text=None):
    """Load one YAML document from `path`; raise RecipeError on any problem."""
    if text is None:
        text = read_text(path)
    try:
        return yaml.load(text, Loader=_MarkingLoader)
    except _LoadProblem as problem:
        raise RecipeError(path, problem.line, problem.key, problem.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise RecipeError(path, line, None, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(path, 0, None, f"not valid YAML: {exc}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # PyYAML's constructors raise these on values such as huge timestamps.
        raise RecipeError(path, 0, None, f"not valid YAML: {exc}") from None


def read_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_RECIPE_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError(path, 0, None, "no such recipe file") from None
    except IsADirectoryError:
        raise RecipeError(path, 0, None, "is a directory, not a recipe file") from None
    except OSError as exc:
        raise RecipeError(path, 0, None, f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(path, 0, None, f"larger than {MAX_RECIPE_BYTES // 2**20} MiB; not a recipe")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RecipeError(path, line, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise RecipeError(path, line, None, "holds a NUL byte; not a text recipe")
    return text
