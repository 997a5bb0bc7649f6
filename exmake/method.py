"""Job scripts (`method:`): finding them, reading their declarations, and their code identity.

A job script is a Python file (path relative to the recipe) or an installed
entry point (group `exmake.methods`, recipe value `package:name`) defining
any of `prepare`, `analysis`, `synthesis`, and optionally

    options = {"min": 2}          # the options it takes, with defaults
    depend_extra = ["table.csv"]  # more files its result depends on

The script is read with `ast`, never executed, in the exmake process: the
declarations must be literals. Its identity for the job key is a hash of its
*normalised* code (the AST without positions, so comments, blank lines and
formatting do not count), of every local module it imports from the
recipe's tree (found by following imports), and of the depend_extra files.
"""

import ast
import os
import sys

from exmake.fs.hashcache import signature_of
from exmake.fs.hashing import hash_bytes

FUNCTIONS = ("prepare", "analysis", "analysis_chunk", "synthesis")
INJECTABLE = ("job", "options", "inputs", "deps", "slices", "sliceno", "prepare_res", "analysis_res")
# analysis_chunk's result is cached and reused by later jobs (exmake.chunkcache),
# so it may see only what its cache key covers: not `job` (files written in one
# job's directory would be missing where the result is reused), not the slice
# (another run computes the chunk in another slice).
CHUNK_INJECTABLE = ("lines", "options", "inputs", "deps", "prepare_res")
ENTRY_POINT_GROUP = "exmake.methods"


class MethodError(Exception):
    """A problem with a job script; `path`/`line` say where (the script, or None for the recipe)."""

    def __init__(self, problem, path=None, line=0):
        super().__init__(problem)
        self.problem, self.path, self.line = problem, path, line


class MethodScript:
    """What the recipe needs to know about one job script, read without running it."""

    def __init__(self, spec, path, tree, search_dirs, label):
        self.spec = spec                  # as the recipe wrote it
        self.path = path                  # absolute path of the script file
        self.label = label                # how keys and messages name it
        self.search_dirs = search_dirs    # where its local imports are looked for
        self.module_name = None           # an entry point's module, imported by name
        self.own_package = None           # an entry point's top-level package: its local code
        self.functions = {}               # name -> parameter names
        self.options = {}
        self.depend_extra = []
        self._read_declarations(tree)

    def _read_declarations(self, tree):
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS:
                self.functions[node.name] = self._parameters(node, self._injectable(node.name))
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 \
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id in ("options", "depend_extra"):
                self._declaration(node.targets[0].id, node)
        if not self.functions:
            raise MethodError("defines none of prepare, analysis, synthesis", self.path, 1)
        if "analysis" in self.functions and "sliceno" not in self.functions["analysis"]:
            raise MethodError("analysis() must take a `sliceno` parameter", self.path, 1)

    @staticmethod
    def _injectable(function):
        if function == "analysis_chunk":
            return CHUNK_INJECTABLE
        return INJECTABLE + ("chunk_res",) if function == "synthesis" else INJECTABLE

    def _parameters(self, node, allowed):
        names = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
        for name in names:
            if name not in allowed:
                why = " (its result is cached and reused by other jobs)" if node.name == "analysis_chunk" else ""
                raise MethodError(f"{node.name}() asks for {name!r}; {node.name}() may take "
                                  f"{', '.join(allowed)}{why}", self.path, node.lineno)
        if node.name == "analysis_chunk" and "lines" not in names:
            raise MethodError("analysis_chunk() must take a `lines` parameter (the chunk's lines)",
                              self.path, node.lineno)
        return names

    def _declaration(self, name, node):
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            raise MethodError(f"`{name} = ...` must be a literal (exmake reads it without running "
                              "the script)", self.path, node.lineno) from None
        if name == "options":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise MethodError("`options` must be a dict of name: default", self.path, node.lineno)
            self.options = value
        else:
            if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) for p in value):
                raise MethodError("`depend_extra` must be a list of paths", self.path, node.lineno)
            here = os.path.dirname(self.path)
            self.depend_extra = [os.path.normpath(os.path.join(here, p)) for p in value]
            for path in self.depend_extra:
                if not os.path.isfile(path):
                    raise MethodError(f"depend_extra file {path} does not exist", self.path, node.lineno)

    def check_options(self, given):
        """The options the job runs with: defaults overlaid with `given`, coerced.
        Raises MethodError(problem) naming the option."""
        merged = dict(self.options)
        for name, value in given.items():
            if name not in self.options:
                known = ", ".join(sorted(self.options)) or "none"
                raise MethodError(f"{name}: {self.label} takes no option {name!r} (it takes: {known})")
            merged[name] = coerce_option(name, self.options[name], value)
        return merged


def coerce_option(name, default, value):
    """`value` in the type of `default`, or MethodError. An int may stand for a float."""
    if default is None or value is None and default is None:
        return value
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise MethodError(f"{name}: {value} is too large for a float") from None
    if kind is tuple and isinstance(value, list):
        return value
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise MethodError(f"{name}: expected {kind.__name__} (the default is {default!r}), "
                      f"not {type(value).__name__} {value!r}")


def load_method(spec, root, cache=None):
    """The MethodScript for a recipe's `method:` value; MethodError if unusable."""
    if cache is not None and spec in cache:
        return cache[spec]
    module_name = None
    if ":" in spec and not spec.endswith(".py"):
        path, label, module_name = _entry_point_file(spec)
        # Imports resolve from the sys.path entry the package was found in.
        depth = module_name.count(".") + (2 if path.endswith("__init__.py") else 1)
        search_dirs = [os.path.dirname(path)]
        for _ in range(depth - 1):
            search_dirs = [os.path.dirname(search_dirs[0])]
    else:
        path = os.path.normpath(os.path.join(root, spec))
        label = os.path.relpath(path, root)
        search_dirs = [os.path.dirname(path), root]
    tree = _parse(path)
    script = MethodScript(spec, path, tree, search_dirs, label)
    script.module_name = module_name
    # An installed script's own code is its top-level package; the rest of
    # site-packages is named by the distribution's version in its label.
    script.own_package = module_name.split(".")[0] if module_name else None
    if cache is not None:
        cache[spec] = script
    return script


def _parse(path):
    try:
        with open(path, "rb") as f:
            source = f.read()
    except FileNotFoundError:
        raise MethodError(f"job script {path} does not exist") from None
    except OSError as exc:
        raise MethodError(f"job script {path}: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path
        raise MethodError(f"job script {path!r} is not a usable path") from None
    try:
        return ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise MethodError(f"syntax error: {exc.msg}", path, exc.lineno or 0) from None
    except ValueError as exc:  # NUL bytes
        raise MethodError(f"cannot be parsed: {exc}", path, 1) from None
    except (RecursionError, MemoryError):
        raise MethodError("too deeply nested for exmake to read", path, 1) from None


def _entry_point_file(spec):
    from importlib import metadata, util
    package, name = spec.split(":", 1)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name and ep.dist is not None and _same_name(ep.dist.name, package):
            module = ep.value.split(":", 1)[0]
            found = util.find_spec(module)
            if found is None or not found.origin or not found.origin.endswith(".py"):
                raise MethodError(f"entry point {spec}: module {module} has no Python source")
            return found.origin, f"{package}:{name}=={ep.dist.version}", module
    raise MethodError(f"no installed entry point {name!r} of package {package!r} in group {ENTRY_POINT_GROUP}")


def _same_name(a, b):
    return a.replace("_", "-").lower() == b.replace("_", "-").lower()


class CodeIdentity:
    """What a job script's result depends on in code, computed in one place
    for the job key, the no-op stamp and the watcher (they must never disagree).

    digest:      {what: digest} for the script's normalised code, each local
                 module it imports and each depend_extra file; `what` reads
                 well in a reason ("module lib/x.py").
    files:       [[path, stat signature], ...] of every file read for it; each
                 signature is taken *before* the file is read, so an edit made
                 meanwhile shows at the next build.
    absent:      paths that were looked for and not found, and whose
                 appearance would change where an import comes from: `x.py`
                 or a package `x/` in a directory searched before the one the
                 module was found in (or where it was not found at all), or
                 `x/__init__.py` beside a found `x.py`.
    directories: the directories those absent paths would appear in (what
                 a watcher watches).
    Not covered: compiled extension modules (`x.*.so`) appearing beside a
    local module.
    """

    __slots__ = ("digest", "files", "absent", "directories")

    def __init__(self, digest, files, absent):
        self.digest, self.files, self.absent = digest, files, sorted(absent)
        self.directories = sorted({os.path.dirname(p) for p in absent})


def code_identity(script):
    """The CodeIdentity of a job script; MethodError (naming file and line) if
    the script or a module it imports cannot be read or parsed."""
    root = script.search_dirs[-1]
    files, absent = {}, set()
    digest = {f"job script {script.label}": _hash_code(script.path, files)}
    for module in sorted(_local_modules(script, absent)):
        digest[f"module {os.path.relpath(module, root)}"] = _hash_code(module, files)
    for path in script.depend_extra:
        files[path] = signature_of(path)
        try:
            with open(path, "rb") as f:
                digest[f"depend_extra {os.path.relpath(path, root)}"] = hash_bytes(f.read())
        except OSError as exc:
            raise MethodError(f"depend_extra file {path}: {exc.strerror}", script.path, 1) from None
    return CodeIdentity(digest, [[p, s] for p, s in files.items() if s is not None], absent)


def _hash_code(path, files):
    files[path] = signature_of(path)  # before reading: see CodeIdentity
    return hash_bytes(_normalised(path).encode())


DUMP_RECURSION_LIMIT = 50_000   # ast.dump recurses once per nesting level: `1 + 1 + ...` of
                                # 1,000 terms imports fine but is 1,000 levels deep


def _normalised(path):
    tree = _parse(path)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, DUMP_RECURSION_LIMIT))
    try:
        return ast.dump(tree, include_attributes=False)
    except (RecursionError, MemoryError):
        raise MethodError("too deeply nested for exmake to read", path, 1) from None
    finally:
        sys.setrecursionlimit(limit)


def _local_modules(script, absent):
    """Absolute paths of the modules from the recipe's tree the script imports,
    transitively; `absent` collects the paths whose appearance would change
    that (see CodeIdentity)."""
    found, todo = set(), [script.path]
    while todo:
        current = todo.pop()
        for module in _imported_files(current, script.search_dirs, absent, script.own_package):
            if module not in found and module != script.path:
                found.add(module)
                todo.append(module)
    return found


IMPORT_CALLS = ("import_module", "__import__")   # importlib.import_module("x"), __import__("x")


def _imported_files(path, search_dirs, absent, own_package=None):
    """The local files that the imports in `path` execute: `import`, `from ...
    import` (relative ones too, and `*` with the package's literal __all__),
    and importlib.import_module / __import__ called with a literal name. An
    import computed at run time cannot be followed: name such files in
    `depend_extra`."""
    tree = _parse(path)
    here = os.path.dirname(path)

    def local(dotted):
        return own_package is None or dotted.split(".")[0] == own_package

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if local(alias.name):
                    yield from _module_files(alias.name, search_dirs, absent)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the importing module's package
                base = here
                for _ in range(node.level - 1):
                    base = os.path.dirname(base)
                dirs, prefix = [base], node.module or ""
            elif local(node.module):
                dirs, prefix = search_dirs, node.module
            else:
                continue
            found = list(_module_files(prefix, dirs, absent)) if prefix else []
            yield from found
            names = [a.name for a in node.names]
            if names == ["*"]:  # the submodules the package's __all__ names
                names = _literal_all(found[-1]) if found and found[-1].endswith("__init__.py") else []
            for name in names:  # `from pkg import sub` may name a submodule
                yield from _module_files(f"{prefix}.{name}" if prefix else name, dirs, absent)
        elif isinstance(node, ast.Call) and _call_name(node.func) in IMPORT_CALLS and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            name = node.args[0].value
            if name and not name.startswith(".") and local(name):
                yield from _module_files(name, search_dirs, absent)


def _call_name(func):
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _literal_all(init):
    """The names in a package's `__all__ = [...]`, if it is a literal."""
    for node in _parse(init).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [n for n in value if isinstance(n, str)] if isinstance(value, (list, tuple)) else []
    return []


def _module_files(dotted, dirs, absent):
    """Files executed by importing `dotted` from `dirs` (packages' __init__
    included); `absent` collects the paths that would shadow what was found.

    A directory without __init__.py is a namespace package (PEP 420): its
    modules are local too, and since its portions may lie in several of
    `dirs`, the later ones are searched as well (more files in the identity
    can only cost a rebuild, a missing one a wrong reuse)."""
    parts = dotted.split(".")
    for top in dirs:
        files, namespace = _resolve_in(top, parts, absent)
        yield from files
        if files and not namespace:
            return


def _resolve_in(top, parts, absent):
    """([files], top-level name is a namespace package) for `parts` under `top`.
    The import system prefers, in one directory, a regular package `x/`
    (with __init__.py) to a module `x.py`, and that to a namespace `x/`."""
    files, directory, namespace = [], top, False
    for depth, part in enumerate(parts):
        base = os.path.join(directory, part)
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            files.append(init)
        elif os.path.isfile(base + ".py"):
            files.append(base + ".py")
            absent.add(init)
            break
        elif os.path.isdir(base):
            absent.update((init, base + ".py"))
            namespace = namespace or depth == 0
        else:
            absent.update((base, base + ".py"))
            break
        directory = base
    return files, namespace
