"""The parsed-YAML cache: a recipe's YAML tree, kept as JSON until its text changes.

Building the Python objects of a 1,000-job recipe costs PyYAML about 77 ms
here; reading the same tree back from JSON costs a fraction of that (see
the README's per-job path figure). The tree is a pure function of the
recipe's text, so it is stored under `<workdir>/.exmake/parsed/` with the
text's hash and used only when the hash matches; everything that depends on
the filesystem (inputs, job scripts) is checked afresh each time.

Why JSON and not pickle: this file lives in the workdir, which may be shared
or restored from a CI cache, and unpickling runs whatever code the file
names, as whoever types `exmake status` there. JSON only ever gives data,
and the tree goes through the recipe checker exactly as freshly parsed YAML
does. A tree is used only from a file that this user owns and nobody else
may write (a file planted by someone else is ignored, not trusted): a forged
tree could still change what a build runs.

File `<sha256 of the recipe's absolute path>-<uid>.json` (format 2), two lines:
    {"format": 2, "digest": sha256 of the recipe text}
    NODE: the tree
NODE is a JSON string, integer, finite float, true, false or null for the
same YAML scalar, or an object tagged by its one-letter key:
    {"m": line, "i": [[key NODE, key line, value NODE], ...]}   YamlMap
    {"l": line, "i": [NODE, ...], "n": [item line, ...]}        YamlList
    {"p": [NODE, ...]}  plain list (!!omap, !!pairs)      {"t": [NODE, ...]}  tuple
    {"s": [NODE, ...]}  set (!!set)                        {"b": base64}       bytes (!!binary)
    {"f": "inf" | "-inf" | "nan"}                          {"d": ISO date}  {"dt": ISO datetime}
    {"r": n}  the n-th mapping or sequence again, counting "m", "l" and "p" nodes in
              the order they end (closing brace): a YAML alias, kept shared as in the tree
A tree holding anything else is not cached. (Format 1 was a pickle; such
files are never read, and are removed when the cache is next written.)
"""

import base64
import datetime
import hashlib
import json
import math
import os

from exmake.fs import atomic

FORMAT = 2
CACHE_MODE = 0o644    # exmake's own file: never group- or world-writable, whatever the umask
MAX_CACHE_BYTES = 64 * 1024 * 1024  # far beyond any recipe's tree (recipes stop at 16 MiB)


class _Uncacheable(Exception):
    """The tree holds a value this format does not store."""


def _path(workdir, recipe_path, suffix="json"):
    name = hashlib.sha256(os.path.abspath(recipe_path).encode()).hexdigest()[:32]
    if suffix == "json":  # one per user: in a shared workdir each trusts only their own
        name += f"-{os.getuid()}"
    return os.path.join(workdir, ".exmake", "parsed", f"{name}.{suffix}")


def load(workdir, recipe_path, text_digest, map_type, list_type):
    """The cached tree for this recipe text, or None. Mappings and sequences
    are rebuilt as `map_type` and `list_type` (exmake.yamlsource's YamlMap and
    YamlList, passed in because fs/ imports nothing above it)."""
    try:
        with open(_path(workdir, recipe_path), "rb") as f:
            info = os.fstat(f.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o022 or info.st_size > MAX_CACHE_BYTES:
                return None  # someone else could have written it: parse the YAML instead
            header, tree = f.read().split(b"\n", 1)
        record = json.loads(header)
        if record["format"] != FORMAT or record["digest"] != text_digest:
            return None
        return json.loads(tree, object_hook=_Decoder(map_type, list_type).hook)
    except Exception:  # noqa: BLE001 - missing, torn, foreign or too deep: parse the YAML instead
        return None


def save(workdir, recipe_path, text_digest, tree):
    """Store the tree; only into an existing workdir, and never fatally."""
    if not os.path.isdir(os.path.join(workdir, ".exmake")):
        return
    path = _path(workdir, recipe_path)
    try:
        header = json.dumps({"format": FORMAT, "digest": text_digest})
        body = json.dumps(_Encoder().encode(tree), separators=(",", ":"), allow_nan=False)
    except (_Uncacheable, RecursionError, ValueError):
        return  # the next load parses the YAML, as without a cache
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_bytes(path, f"{header}\n{body}\n".encode(), fsync=False, mode=CACHE_MODE)
        atomic.unlink_quietly(_path(workdir, recipe_path, "pickle"))  # format 1, never read again
    except OSError:
        pass  # a cache: the next load parses the YAML again


class _Encoder:
    """Each mapping and sequence is written once; a YAML alias to it again is a
    reference, as in the tree itself (an alias-heavy recipe must not grow
    into a file as large as its expansion). Containers are numbered as they
    are finished, the order in which the decoder's hook sees them."""

    def __init__(self):
        self.numbers = {}  # id(container) -> its number
        self.keep = []     # the containers numbered, so that no id is reused meanwhile

    def encode(self, node):
        kind = type(node)
        if kind is str or kind is int or kind is bool or node is None:
            return node
        if kind is float:
            return node if math.isfinite(node) else {"f": repr(node)}
        if kind is tuple:
            return {"t": [self.encode(v) for v in node]}
        if kind is set:
            return {"s": [self.encode(v) for v in node]}
        if kind is bytes:
            return {"b": base64.b64encode(node).decode()}
        if kind is datetime.datetime:
            return {"dt": node.isoformat()}
        if kind is datetime.date:
            return {"d": node.isoformat()}
        if not isinstance(node, (dict, list)):
            raise _Uncacheable(kind.__name__)
        if id(node) in self.numbers:
            return {"r": self.numbers[id(node)]}
        encode = self.encode
        if isinstance(node, dict):  # the loader makes every mapping a YamlMap
            lines = node.key_lines
            out = {"m": node.line, "i": [[encode(k), lines.get(k, node.line), encode(v)] for k, v in node.items()]}
        elif hasattr(node, "item_lines"):
            out = {"l": node.line, "i": [encode(v) for v in node], "n": list(node.item_lines)}
        else:
            out = {"p": [encode(v) for v in node]}
        self.numbers[id(node)] = len(self.keep)
        self.keep.append(node)
        return out


class _Decoder:
    """json.loads' object_hook: called for each JSON object once its contents
    are decoded, so containers come in the order the encoder numbered them."""

    def __init__(self, map_type, list_type):
        self.map_type, self.list_type = map_type, list_type
        self.containers = []

    def hook(self, node):
        if "m" in node:
            items = node["i"]
            result = self.map_type([(key, value) for key, _, value in items])
            result.line = node["m"]
            result.key_lines = {key: line for key, line, _ in items}
        elif "l" in node:
            result = self.list_type(node["i"])
            result.line = node["l"]
            result.item_lines = node["n"]
        elif "p" in node:
            result = node["p"]
        elif "r" in node:
            return self.containers[node["r"]]
        elif "t" in node:
            return tuple(node["t"])
        elif "s" in node:
            return set(node["s"])
        elif "f" in node:
            return float(node["f"])
        elif "b" in node:
            return base64.b64decode(node["b"], validate=True)
        elif "dt" in node:
            return datetime.datetime.fromisoformat(node["dt"])
        elif "d" in node:
            return datetime.date.fromisoformat(node["d"])
        else:
            raise ValueError(f"unknown node {sorted(node)}")
        self.containers.append(result)
        return result
