"""Read a YAML file into plain data that remembers where each key stood.

PyYAML silently keeps the last of two equal keys and forgets line numbers
once it has built Python objects. Recipes need both: a duplicate key is an
error, and every error names its line. So mappings load as `YamlMap` (a dict
with `line` and `key_lines`) and sequences as `YamlList` (a list with `line`
and `item_lines`); scalars stay plain Python values.
"""

import os
import re
import stat

import yaml

from exmake.errors import RecipeError

try:  # the C parser is several times faster on large recipes
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

MAX_RECIPE_BYTES = 16 * 1024 * 1024  # a recipe this big is a mistake, not a recipe
# YAML aliases let a few lines stand for millions of values (the "billion
# laughs"): every later step (JSON, hashing, the parse cache) would expand
# them. The tree may hold this many values more than the text wrote.
MAX_ALIAS_EXPANSION = 1_000_000
# An integer this long is no count, size or option anyone means; Python
# refuses to parse one past 4,300 digits with an error naming no line.
MAX_INT_DIGITS = 100


class YamlMap(dict):
    """A mapping that knows its own line and the line of each key (1-based)."""

    line = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines = {}
        self.own_lines = set()  # lines of keys written in this mapping, not merged in

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


class _DeepMarkingLoader(yaml.SafeLoader):
    """The pure-Python loader, for documents nested too deep for the C one:
    libyaml's composer recurses in C per level and overflows the stack
    (SIGSEGV) where Python's recursion limit raises a catchable error."""


# Nesting beyond this (flow brackets, or indentation and `- ` prefixes) goes
# to the pure-Python loader; no real recipe comes near it.
C_LOADER_MAX_DEPTH = 500
_BRACKETS_RE = re.compile(r"[^\[\]{}]+")
_LINE_PREFIX_RE = re.compile(r"^[ \-]*", re.M)


def _construct_mapping(loader, node):
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # puts the pairs merged in by `<<` first
    merged = len(node.value) - own
    result = YamlMap()
    result.line = node.start_mark.line + 1
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise _LoadProblem(line, None, "a mapping key must be a plain value") from None
        # A key written here may override one merged in by `<<` (that is what
        # merging is for); only two keys written here are a duplicate.
        if key in result and index >= merged and result.key_lines.get(key, 0) in result.own_lines:
            first = result.key_lines[key]
            raise _LoadProblem(line, key, f"duplicate key (first given on line {first})")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        if index >= merged:
            result.own_lines.add(line)
    return result


def _construct_int(loader, node):
    digits = sum(c.isdigit() for c in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise _LoadProblem(node.start_mark.line + 1, None,
                           f"a number with {digits:,} digits; at most {MAX_INT_DIGITS} are allowed")
    return loader.construct_yaml_int(node)


def _construct_sequence(loader, node):
    result = YamlList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


for _loader in (_MarkingLoader, _DeepMarkingLoader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)
    _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _loader_for(text):
    """The C loader unless the text may nest deeper than it can survive."""
    depth = deepest = 0
    for char in _BRACKETS_RE.sub("", text):  # brackets inside strings only overestimate
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    prefix = max((len(m) for m in _LINE_PREFIX_RE.findall(text)), default=0)
    return _DeepMarkingLoader if max(deepest, prefix) > C_LOADER_MAX_DEPTH else _MarkingLoader


class _LoadProblem(Exception):
    def __init__(self, line, key, problem):
        super().__init__(problem)
        self.line, self.key, self.problem = line, key, problem


def load_yaml(path, text=None):
    """Load one YAML document from `path`; raise RecipeError on any problem."""
    if text is None:
        text = read_text(path)
    try:
        data = yaml.load(text, Loader=_loader_for(text))
    except _LoadProblem as problem:
        raise RecipeError(path, problem.line, problem.key, problem.problem) from None
    except yaml.reader.ReaderError as exc:
        # Not a MarkedYAMLError: its message spans two lines and names no line.
        line = text[: exc.position].count("\n") + 1
        raise RecipeError(path, line, None, f"character U+{exc.character:04X} is not allowed in YAML "
                          "(write it as an escape inside a double-quoted string)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise RecipeError(path, line, None, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(path, 0, None, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise RecipeError(path, 0, None, "nested too deep to be a recipe") from None
    except Exception as exc:  # noqa: BLE001 - a boundary: PyYAML's constructors raise
        # TypeError, KeyError, ValueError ... on odd explicit tags (`!!map [a]`).
        raise RecipeError(path, 0, None, f"not valid YAML: {type(exc).__name__}: {exc}") from None
    _check_expansion(path, data)
    return data


def _check_expansion(path, data):
    """RecipeError if aliases make the tree hold MAX_ALIAS_EXPANSION values more
    than the text wrote. PyYAML shares an aliased
    object, so the tree stays small in memory; this counts it as the later
    steps (options to JSON, hashing, the parse cache) would see it."""
    if not isinstance(data, (dict, list)):
        return
    expanded, written = _sizes(data)
    if expanded[id(data)] - written <= MAX_ALIAS_EXPANSION:
        return
    where, line, node = [], data.line, data
    while isinstance(node, dict):  # down the one key that alone is too big, for its name and line
        big = next((k for k, v in node.items()
                    if isinstance(v, (dict, list)) and expanded[id(v)] > MAX_ALIAS_EXPANSION), None)
        if big is None:
            break
        where.append(str(big))
        line, node = node.line_of(big), node[big]
    raise RecipeError(path, line, ".".join(where) or None,
                      f"YAML aliases expand this to more than {MAX_ALIAS_EXPANSION:,} values; "
                      "that is a bomb, not a recipe")


def _sizes(data):
    """({id(container): values under it, aliases expanded}, values the text wrote).

    Depth first without recursion (a tree may nest thousands deep), each
    shared container visited once. (An alias inside its own anchor never
    gets here: PyYAML refuses it as a recursive node.)"""
    expanded, written = {}, 0
    todo = [(data, False)]
    while todo:
        node, closing = todo.pop()
        children = list(node.values()) if isinstance(node, dict) else node
        containers = [c for c in children if isinstance(c, (dict, list))]
        if not closing:
            if id(node) in expanded:
                continue
            written += 1 + len(children) - len(containers)
            expanded[id(node)] = None  # open
            todo.append((node, True))
            todo.extend((c, False) for c in containers if id(c) not in expanded)
            continue
        expanded[id(node)] = 1 + len(children) - len(containers) + sum(expanded[id(c)] for c in containers)
    return expanded, written


def read_text(path):
    try:
        # O_NONBLOCK: opening a FIFO for reading would wait for a writer forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RecipeError(path, 0, None, "no such recipe file") from None
    except IsADirectoryError:
        raise RecipeError(path, 0, None, "is a directory, not a recipe file") from None
    except OSError as exc:
        raise RecipeError(path, 0, None, f"cannot read: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise RecipeError(path, 0, None, "is a directory, not a recipe file")
        raise RecipeError(path, 0, None, "is not a regular file (a FIFO, socket or device?); "
                          "a recipe must be a file")
    with open(fd, "rb") as f:
        try:
            data = f.read(MAX_RECIPE_BYTES + 1)
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
