"""The recipe: an `Exmakefile` read, checked and turned into a `Recipe`.

Everything a user can get wrong in a recipe is caught here, before anything
is written, as one `RecipeError` naming the file, the line and the key (with
a did-you-mean where a name was misspelt). Inputs are expanded here too, so
later layers see absolute, sorted file lists and never touch YAML again.
"""

import difflib
import functools
import hashlib
import itertools
import os
import re
import unicodedata
from dataclasses import dataclass, field

from exmake import families, resources
from exmake.errors import RecipeError, UsageError
from exmake import chunks as chunking
from exmake.fs import parsecache
from exmake.defaults import default_slices
from exmake.inputs import GLOB_CHARS, expand_input, stat_signature
from exmake.method import MethodError, load_method
from exmake.names import (NAME_RE, URD_REF_RE, entry_spec_problem, job_name_problem,  # noqa: F401 - NAME_RE re-exported
                          recorded_name_problem)
from exmake.yamlsource import YamlList, YamlMap, load_yaml, read_text

TOP_KEYS = ("workdir", "results", "input_dir", "reuse_from", "slices", "default", "backend", "profiles", "jobs")
BACKENDS = ("local", "slurm", "torque", "auto")
USER_PROFILES = os.path.join("~", ".config", "exmake", "profiles.yaml")
JOB_KEYS = ("run", "method", "inputs", "deps", "options", "outputs", "publish", "env",
            "resources", "slices", "foreach", "doc", "chunks", "chunk_size")
# Files exmake writes in every job directory; a job may not claim them.
RESERVED_FILES = ("setup.json", "post.json", "stdout.txt", "stderr.txt")
MAX_SLICES = 1024

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `{inputs.x}`, `{deps.x}`, `{options.x}`, `{resources.cores}`, `{slices}`,
# `{sliceno}`; any other
# `{word.word}` is a mistyped placeholder. Bare `{word}` is left to the shell
# (awk programs, brace groups), except the two slice names.
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_]+)\.([A-Za-z_][A-Za-z0-9_]*)\}|\{(slices|sliceno)\}")
# The parts of a run command that mean to be a placeholder: `{` and a section
# name and a dot. Each must be a whole PLACEHOLDER_RE match; anything else
# (`{inputs.}`, `{deps.x.y}`, an unclosed `{inputs.t`) would reach the shell.
PLACEHOLDER_START_RE = re.compile(r"\{(inputs|deps|options|resources)\.")
# The resources a command may name: the cores the build gives the job.
RESOURCE_PLACEHOLDERS = {"cores": None}


@dataclass
class Job:
    """One job of the recipe, checked; paths are absolute."""

    name: str
    line: int
    run: str = None                                # a shell job's command, or
    method: object = None                          # a job script (exmake.method.MethodScript)
    inputs: dict = field(default_factory=dict)     # local name -> InputSpec
    deps: dict = field(default_factory=dict)       # local name -> job name (in this recipe)
    external: dict = field(default_factory=dict)   # local name -> `:LIST/ENTRY:NAME` reference
    dep_lines: dict = field(default_factory=dict)  # local name -> line
    options: dict = field(default_factory=dict)
    outputs: list = field(default_factory=list)
    publish: dict = field(default_factory=dict)    # results path -> job-dir path
    publish_lines: dict = field(default_factory=dict)  # results path -> line
    env: dict = field(default_factory=dict)
    resources: dict = field(default_factory=dict)  # canonical, profile applied
    slices: int = 0                                # 0: not a sliced job
    family: str = None                             # the family (`foreach:`) an instance belongs to
    fanin: dict = field(default_factory=dict)      # local -> [locals in deps], for `FAMILY@*`
    doc: str = None                                # `doc:`, one line for `exmake list`; not in the key
    chunks: str = None                             # the input whose chunks' results are cached
    chunk_size: int = 0                            # their target size in bytes (exmake.chunks)

    @property
    def kind(self):
        return "method" if self.method else "shell"


@dataclass
class Recipe:
    """A whole checked recipe."""

    path: str
    root: str          # the recipe's directory; relative paths start here
    digest: str        # hash of the recipe text, for the build log
    workdir: str
    results: str
    slices: int
    default: list
    profiles: dict
    jobs: dict         # name -> Job, in recipe order
    backend: str = None    # `backend:` as written, if given
    families: dict = field(default_factory=dict)   # family name -> [instance names], value order
    family_sources: list = field(default_factory=list)  # [[path, sig]] that decided the families
    signature: tuple = ()  # stat signature of the recipe file when it was read
    parsed: object = None  # the YAML tree, until it is cached
    input_dir: str = None  # inputs are named (and keyed) relative to it; default `root`
    reuse_from: list = field(default_factory=list)  # other workdirs to reuse finished jobs from

    def relpath(self, path):
        """A path as the recipe would write it (relative to its directory)."""
        return os.path.relpath(path, self.root)

    def input_relpath(self, path):
        """An input's path as keys record it: relative to `input_dir:`, so moving
        the data (and pointing `input_dir:` or --input-dir at it) changes no key."""
        return os.path.relpath(path, self.input_dir or self.root)


def load_recipe(path, input_dir=None):
    """Read and check the recipe at `path`; raise RecipeError on any problem.
    The YAML tree comes from the parsed-YAML cache when the text is unchanged
    (see exmake.fs.parsecache); `save_parsed` refreshes that cache.
    `input_dir`: --input-dir, which overrides the recipe's `input_dir:`."""
    path = os.path.abspath(path)
    _real_directory.cache_clear()  # a watch session reloads: a symlink may have moved
    try:
        signature = stat_signature(path)  # before reading: a later edit must show
    except OSError:
        signature = ()
    text = read_text(path)
    digest = hashlib.sha256(text.encode()).hexdigest()
    from exmake.noop import guess_workdir
    workdir = guess_workdir(path, text)
    data = parsecache.load(workdir, path, digest, YamlMap, YamlList) if workdir else None
    cached = data is not None
    if not cached:
        data = load_yaml(path, text)
    recipe = _RecipeChecker(path, digest, input_dir).check(data)
    recipe.signature = signature
    recipe.parsed = None if cached else data
    return recipe


def save_parsed(recipe):
    """Cache the recipe's YAML tree (once its workdir exists: never made for this)."""
    if recipe.parsed is not None:
        parsecache.save(recipe.workdir, recipe.path, recipe.digest, recipe.parsed)
        recipe.parsed = None


def check_publish_targets(recipe, names):
    """RecipeError for the first publish target of these jobs that is taken
    (a regular file or directory there, a file where a directory must be, a
    symlink leading out): found before any job runs, not after."""
    from exmake.fs.publish import target_problem
    for name in names:
        job = recipe.jobs[name]
        for dest in job.publish:
            problem = target_problem(recipe.results, dest)
            if problem:
                raise RecipeError(recipe.path, job.publish_lines.get(dest, job.line),
                                  f"jobs.{name}.publish.{dest}", f"cannot publish there: {problem}")


def suggest(word, choices):
    """` (did you mean X?)` for a close match among `choices`, else ``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _RecipeChecker:
    """Walks the YAML data once, raising the first problem it meets."""

    def __init__(self, path, digest, input_dir=None):
        self.path = path
        self.root = os.path.dirname(path)
        self.digest = digest
        self.input_override = input_dir  # --input-dir, relative to the current directory

    def fail(self, line, key, problem):
        raise RecipeError(self.path, line, key, problem)

    def check(self, data):
        if data is None:
            self.fail(1, None, "the recipe is empty; it needs at least `jobs:`")
        if not isinstance(data, YamlMap):
            self.fail(getattr(data, "line", 1), None, "the recipe must be a mapping of keys such as `jobs:`")
        self._unknown_keys(data, TOP_KEYS, "")
        if "jobs" not in data:
            self.fail(1, "jobs", "missing; a recipe needs at least one job")
        slices = self._int(data, "slices", "slices", default_slices(), 1, MAX_SLICES)
        profiles = self._profiles(data)
        jobs_map = self._mapping(data, "jobs", "jobs", required=True)
        if not jobs_map:
            self.fail(data.line_of("jobs"), "jobs", "no jobs are defined")
        self.methods = {}  # job scripts read once, however many jobs use them
        workdir = self._dir(data, "workdir", "work")
        results = self._dir(data, "results", "results")
        self.not_inputs = (os.path.realpath(workdir), os.path.realpath(results))  # once, not per input
        self.input_root = self._input_dir(data)
        reuse_from = self._reuse_from(data, workdir)
        # Named as an input, a path in these is an error (a file there changes with
        # every build, which then never settles); a directory input skips them.
        # Not when one holds the recipe's own directory (`workdir: .`).
        self.forbidden_inputs = [(label, top) for label, top in zip(("workdir", "results directory"), self.not_inputs)
                                 if not _inside(os.path.realpath(self.root), top)]
        for label, top in self.forbidden_inputs:  # inputs named from inside what builds write: never settles
            if _inside(os.path.realpath(self.input_root), top):
                if self.input_override is not None:
                    raise UsageError(f"--input-dir {self.input_override}: inside the {label} {top}: "
                                     "what a build writes cannot be its input")
                self.fail(data.line_of("input_dir"), "input_dir", f"{self.input_root} is inside the {label} "
                          f"{top}: what a build writes cannot be its input")
        try:
            expanded = families.expand(jobs_map, self.input_root)  # its globs and files name data, as inputs do
        except families.FamilyError as exc:
            self.fail(exc.line, exc.key, exc.problem)
        self.families = expanded.families
        jobs = {name: self._job(name, spec, line, family, profiles, slices)
                for name, (spec, line, family) in expanded.specs.items()}
        self._check_deps(jobs, jobs_map)
        self._check_publish(jobs, jobs_map)
        default = self._default(data, jobs)
        backend = None
        if "backend" in data:
            backend = self._string(data, "backend", "backend")
            if backend not in BACKENDS:
                self.fail(data.line_of("backend"), "backend", f"{backend!r} is not one of {', '.join(BACKENDS)}"
                          f"{suggest(backend, BACKENDS)}")
        return Recipe(backend=backend,
            path=self.path, root=self.root, digest=self.digest,
            workdir=workdir, results=results,
            slices=slices, default=default, profiles=profiles, jobs=jobs,
            families=expanded.families, family_sources=expanded.sources,
            input_dir=self.input_root, reuse_from=reuse_from)

    # -- generic typed getters -------------------------------------------

    def _unknown_keys(self, mapping, allowed, where):
        for key in mapping:
            if key not in allowed:
                hint = suggest(key, allowed) or f" (known keys: {', '.join(allowed)})"
                self.fail(mapping.line_of(key), f"{where}{key}", f"unknown key{hint}")

    def _mapping(self, parent, key, where, required=False):
        value = parent.get(key)
        if value is None and not required:
            return YamlMap()
        if not isinstance(value, YamlMap):
            self.fail(parent.line_of(key), where, f"must be a mapping, not {_type_name(value)}")
        return value

    def _int(self, parent, key, where, default, low, high):
        if key not in parent:
            return default
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(parent.line_of(key), where, f"must be a whole number from {low} to {high}, not {value!r}")
        return value

    def _string(self, parent, key, where):
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(parent.line_of(key), where, f"must be a non-empty string, not {_type_name(value)}")
        if "\x00" in value:
            self.fail(parent.line_of(key), where, "holds a NUL byte")
        return value

    def _dir(self, data, key, default):
        if key not in data:
            path = os.path.join(self.root, default)
        else:
            path = os.path.normpath(os.path.join(self.root, self._string(data, key, key)))
        if os.path.exists(path) and not os.path.isdir(path):
            self.fail(data.line_of(key) if key in data else 1, key, f"{path} exists and is not a directory")
        return path

    def _input_dir(self, data):
        """Where inputs are named from: --input-dir, else `input_dir:` (relative
        to the recipe), else the recipe's directory. It must be a directory."""
        if self.input_override is not None:
            path = os.path.abspath(self.input_override)
            if not os.path.isdir(path):
                raise UsageError(f"--input-dir {self.input_override}: not a directory")
            return path
        if "input_dir" not in data:
            return self.root
        path = os.path.normpath(os.path.join(self.root, self._string(data, "input_dir", "input_dir")))
        if not os.path.isdir(path):
            self.fail(data.line_of("input_dir"), "input_dir", f"{path} is not a directory")
        return path

    def _reuse_from(self, data, workdir):
        """`reuse_from: [DIR, ...]`: workdirs (relative to the recipe) whose finished
        jobs may be used in place (see exmake.fs.elsewhere)."""
        if "reuse_from" not in data:
            return []
        value = data["reuse_from"]
        if isinstance(value, str):
            value = YamlList([value])
            value.line = data.line_of("reuse_from")
        if not isinstance(value, YamlList):
            self.fail(data.line_of("reuse_from"), "reuse_from", "must be a list of workdirs")
        dirs = []
        for i, item in enumerate(value):
            line = value.line_of(i)
            if not isinstance(item, str) or not item.strip() or "\x00" in item:
                self.fail(line, "reuse_from", f"must be a workdir's path, not {_type_name(item)}")
            path = os.path.normpath(os.path.join(self.root, os.path.expanduser(item)))
            if not os.path.isdir(path):
                self.fail(line, "reuse_from", f"{item!r}: no such directory (looked for {path})")
            if os.path.realpath(path) != os.path.realpath(workdir) and path not in dirs:
                dirs.append(path)
        return dirs

    def _relative_path(self, value, line, where):
        if not isinstance(value, str) or not value.strip():
            self.fail(line, where, f"must be a relative path, not {_type_name(value)}")
        norm = os.path.normpath(value)
        if os.path.isabs(value) or norm == ".." or norm.startswith("../") or "\x00" in value:
            self.fail(line, where, f"{value!r} must stay inside its directory (no absolute path, no '..')")
        if norm == ".":
            self.fail(line, where, f"{value!r} names the directory itself, not a file")
        return norm

    # -- sections ---------------------------------------------------------

    def _profiles(self, data):
        profiles = self._user_profiles()
        mapping = self._mapping(data, "profiles", "profiles")
        for name in mapping:
            profiles[name] = self._profile(mapping, name)
        return profiles

    def _user_profiles(self):
        """Profiles from ~/.config/exmake/profiles.yaml; the recipe's own override them."""
        path = os.path.expanduser(USER_PROFILES)
        if not os.path.isfile(path):
            return {}
        data = load_yaml(path)
        if data is None:
            return {}
        checker = _RecipeChecker.__new__(_RecipeChecker)
        checker.path, checker.root = path, os.path.dirname(path)
        if not isinstance(data, YamlMap):
            checker.fail(1, None, "must be a mapping of profile name: resources")
        return {name: checker._profile(data, name) for name in data}

    def _profile(self, mapping, name):
        spec = mapping[name]
        where = f"profiles.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            self.fail(mapping.line_of(name), where, "a profile name must be a simple identifier")
        if not isinstance(spec, YamlMap):
            self.fail(mapping.line_of(name), where, "must be a mapping of resources")
        if "profile" in spec:
            self.fail(spec.line_of("profile"), f"{where}.profile", "a profile cannot name another profile")
        return self._resources(spec, where)

    def _resources(self, spec, where):
        self._unknown_keys(spec, tuple(resources.RESOURCE_KEYS), f"{where}.")
        result = {}
        for key, value in spec.items():
            try:
                result[key] = resources.normalise(key, value)
            except ValueError as exc:
                self.fail(spec.line_of(key), f"{where}.{key}", str(exc))
        return result

    def _default(self, data, jobs):
        if "default" not in data:
            return list(jobs)
        value = data["default"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            self.fail(data.line_of("default"), "default", "must be a job name or a list of job names")
        default = []
        for i, name in enumerate(names):
            if name in self.families:  # a family stands for all its jobs
                default += self.families[name]
            elif name in jobs:
                default.append(name)
            else:
                line = names.line_of(i) if isinstance(names, YamlList) else data.line_of("default")
                self.fail(line, "default", f"no job named {name!r}{suggest(name, [*jobs, *self.families])}")
        return default

    def _job(self, name, spec, line, family, profiles, default_slices):
        where = f"jobs.{name}"
        if family is None and job_name_problem(name):  # an instance's was checked with its family
            self.fail(line, where, job_name_problem(name))
        if not isinstance(spec, YamlMap):
            self.fail(line, where, f"must be a mapping with at least `run:`, not {_type_name(spec)}")
        self._unknown_keys(spec, JOB_KEYS, f"{where}.")
        if ("run" in spec) == ("method" in spec):
            self.fail(line, f"{where}.run", "a job needs exactly one of `run:` (a command) "
                      "or `method:` (a job script)")
        job = Job(name=name, line=line, family=family)
        if "run" in spec:
            job.run = self._string(spec, "run", f"{where}.run")
        else:
            job.method = self._method(spec, where)
        job.inputs = self._inputs(spec, where)
        job.deps, job.dep_lines = self._deps(spec, where)
        job.deps, job.fanin = self._fan_in(job.deps, job.dep_lines, where)
        job.external = {k: v for k, v in job.deps.items() if v.startswith(":")}
        job.deps = {k: v for k, v in job.deps.items() if k not in job.external}
        job.options = self._options(spec, where)
        if job.method:
            job.options = self._method_options(job.method, spec, job.options, where)
        job.outputs = self._outputs(spec, where)
        job.publish, job.publish_lines = self._publish(spec, where)
        job.env = self._env(spec, where)
        job.resources = self._job_resources(spec, where, profiles)
        job.slices = self._int(spec, "slices", f"{where}.slices", default_slices if job.method else 0,
                               1, MAX_SLICES)
        if "doc" in spec:
            job.doc = self._string(spec, "doc", f"{where}.doc").strip()
            if "\n" in job.doc:
                self.fail(spec.line_of("doc"), f"{where}.doc", "must be one line (a description for `exmake list`)")
            # `exmake list` prints it to a terminal: \r, ESC sequences (a title, a
            # cleared screen), DEL and C1 controls would act there, not show.
            bad = next((c for c in job.doc if unicodedata.category(c) == "Cc"), None)
            if bad is not None:
                self.fail(spec.line_of("doc"), f"{where}.doc",
                          f"holds the control character {bad!r}; a description is plain text")
        if job.run:
            self._placeholders(job, spec.line_of("run"), where)
        self._chunks(job, spec, where)
        return job

    def _chunks(self, job, spec, where):
        """`chunks: INPUT` and `chunk_size:` (see exmake.chunks, exmake.chunkcache)."""
        functions = job.method.functions if job.method else {}
        if "chunks" not in spec:
            if "chunk_size" in spec:
                self.fail(spec.line_of("chunk_size"), f"{where}.chunk_size", "only a job with `chunks:` has chunks")
            if "analysis_chunk" in functions:
                self.fail(spec.line_of("method"), f"{where}.chunks", f"{job.method.label} defines "
                          "analysis_chunk(), which runs only in a job with `chunks: INPUT`")
            return
        line, key, name = spec.line_of("chunks"), f"{where}.chunks", spec["chunks"]
        if not job.method:
            self.fail(line, key, "chunks are for job scripts (`method:` with analysis_chunk); "
                      + ("a shell job's slices cannot be chunked" if job.slices else "this is a shell job"))
        if not isinstance(name, str) or name not in job.inputs:
            self.fail(line, key, f"names no input: this job's inputs are {', '.join(job.inputs) or 'none'}")
        if job.inputs[name].kind != "file":
            self.fail(line, key, f"input {name!r} is a {'directory' if job.inputs[name].kind == 'dir' else 'glob'}; "
                      "chunks are cut from one file")
        if "analysis_chunk" not in functions:
            self.fail(line, key, f"{job.method.label} defines no analysis_chunk(lines, ...)")
        if "analysis" in functions:
            self.fail(line, key, f"{job.method.label} defines analysis() too: a chunked job runs "
                      "analysis_chunk() instead; keep one")
        job.chunks, job.chunk_size = name, chunking.DEFAULT_CHUNK_BYTES
        if "chunk_size" in spec:
            try:
                job.chunk_size = chunking.parse_size(spec["chunk_size"])
            except ValueError as exc:
                self.fail(spec.line_of("chunk_size"), f"{where}.chunk_size", str(exc))

    def _method(self, spec, where):
        value = self._string(spec, "method", f"{where}.method")
        try:
            return load_method(value, self.root, self.methods)
        except MethodError as exc:
            if exc.path:  # a problem inside the script: name the script's file and line
                raise RecipeError(exc.path, exc.line, None, exc.problem) from None
            self.fail(spec.line_of("method"), f"{where}.method", exc.problem)

    def _method_options(self, method, spec, options, where):
        try:
            return method.check_options(options)
        except MethodError as exc:
            name = exc.problem.split(":", 1)[0]
            mapping = spec.get("options") or spec
            self.fail(mapping.line_of(name), f"{where}.options.{name}", exc.problem.split(": ", 1)[1])

    def _inputs(self, spec, where):
        inputs = {}
        mapping = self._mapping(spec, "inputs", f"{where}.inputs")
        for name, pattern in mapping.items():
            line, key = mapping.line_of(name), f"{where}.inputs.{name}"
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.fail(line, key, "an input name must be a simple identifier")
            if not isinstance(pattern, str) or not pattern.strip() or "\x00" in pattern:
                self.fail(line, key, f"must be a path or glob, not {_type_name(pattern)}")
            inputs[name] = self._expand_input(name, pattern, line, key)
        return inputs

    def _expand_input(self, name, pattern, line, key):
        self._not_a_result(pattern, line, key)
        try:
            return expand_input(self.input_root, name, pattern, line, self.not_inputs)
        except ValueError as exc:
            self.fail(line, key, str(exc))

    def _not_a_result(self, pattern, line, key):
        parts = os.path.normpath(pattern).split(os.sep)
        fixed = list(itertools.takewhile(lambda part: not GLOB_CHARS.search(part), parts))  # a glob's fixed start
        path = os.path.normpath(os.path.join(self.input_root, os.sep.join(fixed) or "."))
        for label, top in self.forbidden_inputs:
            if _inside(path, top) or _inside(_realpath(path), top):
                self.fail(line, key, f"{pattern!r} is inside the {label} {top}: what a build writes "
                          "cannot be its input (the build would never settle); use `deps:` to read "
                          "another job's output")

    def _deps(self, spec, where):
        value = spec.get("deps")
        if value is None:
            return {}, {}
        if isinstance(value, YamlList):  # [a, b] is short for {a: a, b: b}
            pairs = [(v, v, value.line_of(i)) for i, v in enumerate(value)]
        elif isinstance(value, YamlMap):
            pairs = [(k, v, value.line_of(k)) for k, v in value.items()]
        else:
            self.fail(spec.line_of("deps"), f"{where}.deps", "must be a mapping (local name: job) or a list of jobs")
        deps, lines = {}, {}
        for local, target, line in pairs:
            key = f"{where}.deps.{local}"
            if not isinstance(local, str) or not NAME_RE.match(local):
                self.fail(line, f"{where}.deps", f"{local!r} is not a simple identifier")
            if not isinstance(target, str) or not target:
                self.fail(line, key, f"must name a job, not {_type_name(target)}")
            if local in deps:
                self.fail(line, key, "listed twice")
            if target.startswith(":"):
                self._check_reference(target, line, key)
            deps[local], lines[local] = target, line
        return deps, lines

    def _fan_in(self, deps, lines, where):
        """`{x: "FAMILY@*"}` becomes one dependency per instance, in value order,
        local names `x@VALUE`; returns (deps, {x: [those locals]})."""
        flat, fanin = {}, {}
        for local, target in deps.items():
            if not target.endswith("@*") or target.startswith(":"):
                flat[local] = target
                continue
            family = target[:-2]
            if family not in self.families:
                self.fail(lines[local], f"{where}.deps.{local}", f"no family named {family!r}"
                          f"{suggest(family, self.families)}")
            fanin[local] = []
            for instance in self.families[family]:
                key = f"{local}@{instance.split('@', 1)[1]}"
                flat[key], lines[key] = instance, lines[local]
                fanin[local].append(key)
        return flat, fanin

    def _check_reference(self, target, line, key):
        """A `:LIST/ENTRY:NAME` dep, checked in form here (the log is read when it is built)."""
        match = URD_REF_RE.match(target)
        if not match:
            self.fail(line, key, f"{target[:80]!r} is not a job reference; a job from the build log "
                      "is written :LIST/ENTRY:NAME, e.g. :default/latest:count")
        problem = entry_spec_problem(match.group(1)) or recorded_name_problem(match.group(2))
        if problem:
            self.fail(line, key, problem)

    def _options(self, spec, where):
        options = self._mapping(spec, "options", f"{where}.options")
        for name, value in options.items():
            key = f"{where}.options.{name}"
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.fail(options.line_of(name), key, "an option name must be a simple identifier")
            problem = _json_problem(value)
            if problem:
                self.fail(options.line_of(name), key, problem)
        return _plain(options)

    def _outputs(self, spec, where):
        value = spec.get("outputs")
        if value is None:
            return []
        if isinstance(value, str):
            value = YamlList([value])
            value.line = spec.line_of("outputs")
        if not isinstance(value, YamlList):
            self.fail(spec.line_of("outputs"), f"{where}.outputs", "must be a list of file names")
        outputs = []
        for i, item in enumerate(value):
            line = value.line_of(i)
            norm = self._relative_path(item, line, f"{where}.outputs")
            if norm in RESERVED_FILES:
                self.fail(line, f"{where}.outputs", f"{norm!r} is written by exmake itself")
            if norm in outputs:
                self.fail(line, f"{where}.outputs", f"{norm!r} is listed twice")
            outputs.append(norm)
        return outputs

    def _publish(self, spec, where):
        mapping = self._mapping(spec, "publish", f"{where}.publish")
        publish, lines = {}, {}
        for dest, src in mapping.items():
            line, key = mapping.line_of(dest), f"{where}.publish.{dest}"
            norm = self._relative_path(dest, line, key)
            publish[norm], lines[norm] = self._relative_path(src, line, key), line
        return publish, lines

    def _env(self, spec, where):
        mapping = self._mapping(spec, "env", f"{where}.env")
        env = {}
        for name, value in mapping.items():
            key = f"{where}.env.{name}"
            if not isinstance(name, str) or not ENV_NAME_RE.match(name):
                self.fail(mapping.line_of(name), key, "not a valid environment variable name")
            if isinstance(value, (dict, list)) or value is None:
                self.fail(mapping.line_of(name), key, f"must be a string or number, not {_type_name(value)}")
            if "\x00" in str(value):
                self.fail(mapping.line_of(name), key, "holds a NUL byte")
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def _job_resources(self, spec, where, profiles):
        mapping = self._mapping(spec, "resources", f"{where}.resources")
        own = self._resources(mapping, f"{where}.resources")
        name = own.pop("profile", None)
        if name is None:
            return own
        if name not in profiles:
            self.fail(mapping.line_of("profile"), f"{where}.resources.profile",
                      f"no profile named {name!r}{suggest(name, profiles)}")
        return {**profiles[name], **own}

    def _placeholders(self, job, line, where):
        allowed = {"inputs": job.inputs, "deps": {**job.deps, **job.external, **job.fanin}, "options": job.options,
                   "resources": RESOURCE_PLACEHOLDERS}
        for start in PLACEHOLDER_START_RE.finditer(job.run):
            if not PLACEHOLDER_RE.match(job.run, start.start()):
                text = re.match(r"\{[^\s{}]{0,40}\}?", job.run[start.start():]).group(0)
                self.fail(line, f"{where}.run", f"malformed placeholder {text!r}: write "
                          f"{{{start.group(1)}.NAME}}, NAME a simple identifier, closed by }}")
        for match in PLACEHOLDER_RE.finditer(job.run):
            text = match.group(0)
            if match.group(3):
                if not job.slices:
                    self.fail(line, f"{where}.run", f"{text} is only known in a sliced job (set `slices:`)")
                continue
            section, name = match.group(1), match.group(2)
            if section not in allowed:
                hint = suggest(section, allowed)
                self.fail(line, f"{where}.run", f"placeholder {text} names nothing{hint}")
            if name not in allowed[section]:
                known = ", ".join(allowed[section]) or "none"
                self.fail(line, f"{where}.run", f"placeholder {text} names nothing: this job's {section} are {known}")

    # -- whole-recipe checks ----------------------------------------------

    def _check_deps(self, jobs, jobs_map):
        for job in jobs.values():
            for local, target in job.deps.items():
                if target == job.name:
                    self.fail(job.dep_lines[local], f"jobs.{job.name}.deps.{local}", "a job cannot depend on itself")
                if target in self.families:
                    self.fail(job.dep_lines[local], f"jobs.{job.name}.deps.{local}",
                              f"{target!r} is a family: depend on one of its jobs ({target}@VALUE, e.g. "
                              f"{target}@{{each.VAR}}) or on all of them ({target}@*)")
                if target not in jobs:
                    self.fail(job.dep_lines[local], f"jobs.{job.name}.deps.{local}",
                              f"no job named {target!r}{suggest(target, jobs)}")

    def _check_publish(self, jobs, jobs_map):
        owner = {}
        for job in jobs.values():
            for dest in job.publish:
                line = job.publish_lines[dest]
                if dest in owner:
                    self.fail(line, f"jobs.{job.name}.publish.{dest}", f"already published by job {owner[dest]!r}")
                clash = next((d for d in owner if d.startswith(dest + "/") or dest.startswith(d + "/")), None)
                if clash:  # one would have to be a file and a directory at once
                    self.fail(line, f"jobs.{job.name}.publish.{dest}",
                              f"clashes with {clash!r} (published by job {owner[clash]!r})")
                owner[dest] = job.name


def _realpath(path):
    """os.path.realpath, with each directory's resolved once per process (a
    recipe of many inputs in a few directories asked it thousands of times)."""
    head, tail = os.path.split(path)
    if not tail:
        return _real_directory(head)
    joined = os.path.join(_real_directory(head), tail)
    return os.path.realpath(joined) if os.path.islink(joined) else joined


@functools.lru_cache(maxsize=4096)
def _real_directory(path):
    return os.path.realpath(path)


def _inside(path, top):
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def _type_name(value):
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


MAX_OPTION_VALUES = 100_000  # more, after YAML aliases are expanded, is a bomb, not options


def _json_problem(value):
    """Why `value` cannot be an option (it must survive a JSON round trip), or None.
    Walks iteratively with a budget: aliases can make a tiny file expand without end."""
    todo, seen = [value], 0
    while todo:
        item = todo.pop()
        seen += 1
        if seen > MAX_OPTION_VALUES:
            return f"holds more than {MAX_OPTION_VALUES:,} values (YAML aliases expanding?)"
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, str):
            if "\x00" in item:
                return "a string holds a NUL byte"
        elif isinstance(item, float):
            if item != item or abs(item) == float("inf"):
                return f"{item!r} is not a usable number"
        elif isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return "nested mapping keys must be strings"
            todo.extend(item.values())
        else:
            return f"{_type_name(item)} is not allowed here; quote it to make it a string"
    return None


def _plain(value):
    """YamlMap/YamlList -> dict/list, recursively, for hashing and JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
