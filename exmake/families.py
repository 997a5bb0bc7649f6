"""Job families: one recipe entry (`foreach:`) that stands for many jobs.

    map:
      foreach: {sample: "data/samples/*.fastq"}   # a glob with one `*`: the text it matched
      inputs: {reads: "data/samples/{each.sample}.fastq"}
    train:
      foreach: {model: [cnn, xgb], lr: [0.1, 0.01]}   # lists: their cross product
    sort:
      foreach: {sample: map}                      # the values of another family
    qc:
      foreach: {sample: {lines: samples.txt}}     # one value per non-blank line (# comments)

Each combination of values is one job, an *instance*, named `NAME@VALUE`
(several variables: `NAME@V1,V2`, in the order the variables are written),
whose spec is the entry with every `{each.VAR}` replaced by its value: in
`run`, `inputs`, `deps`, `options`, `outputs`, `publish`, `env` and
`resources`, keys included. A string that is exactly `{each.VAR}` takes the
value with its YAML type (so `lr: "{each.lr}"` is the float 0.1). Instances
are in value order: a glob's matches sorted, lists and lines as written,
the product with the first variable outermost. From then on an instance is
a job like any other: its key is its own expanded step.

This module only expands the recipe's YAML tree; exmake.recipe checks the
instances as it checks any job, and turns `deps: {x: "FAMILY@*"}` (fan-in)
into one dependency per instance. What decided the values (the directory a
glob listed, the file of lines) is returned as `sources`, with stat
signatures taken before reading, for the no-op stamp and the watcher.
"""

import glob
import itertools
import os
import re

from exmake.fs.hashcache import signature_of
from exmake.names import MAX_JOB_NAME, job_name_problem
from exmake.yamlsource import YamlList, YamlMap

# Usable in a file name; not hidden (`.`), and not read as an option (`-`) where a
# value lands first in a command's word (`cat {each.f}.txt` with f = `-n`).
VALUE_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+-]*$")
EACH_RE = re.compile(r"\{each\.([^{}\s]*)\}")
EACH_START = "{each."
VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SUBSTITUTED_KEYS = ("run", "inputs", "deps", "options", "outputs", "publish", "env", "resources")
MAX_INSTANCES = 200_000     # in one recipe: a bound, like every count that enters (2x issue 13's 100,000)
MAX_LINES_BYTES = 64 << 20  # a sample sheet larger than this is refused, not cut short
GLOB_CHARS = re.compile(r"[*?\[]")


class FamilyError(Exception):
    def __init__(self, line, key, problem):
        super().__init__(problem)
        self.line, self.key, self.problem = line, key, problem


class Expanded:
    """The recipe's jobs with families expanded.

    specs:    {job name: (spec, line, family name or None)} in recipe order,
              each family's instances in value order where the family stood
    families: {family name: [instance names]}
    sources:  [[path, stat signature or None], ...] of each glob's listed
              directories and each lines file (signature taken before
              reading; None: it did not exist, and its appearance counts)
    """

    def __init__(self):
        self.specs, self.families, self.sources = {}, {}, []


def expand(jobs_map, root):
    """Expand every `foreach:` entry of `jobs_map`; FamilyError on bad input."""
    result = Expanded()
    values = {}   # family -> [(instance name, {var: value})], resolved once
    for name, spec in jobs_map.items():
        if isinstance(spec, YamlMap) and "foreach" in spec:
            _resolve(name, jobs_map, root, values, result, visiting=())
    total = sum(len(v) for v in values.values())
    if total > MAX_INSTANCES:
        raise FamilyError(1, "jobs", f"{total:,} family instances; at most {MAX_INSTANCES:,} are allowed")
    for name, spec in jobs_map.items():
        line = jobs_map.line_of(name)
        if name in values:
            result.families[name] = [instance for instance, _ in values[name]]
            for instance, each in values[name]:
                result.specs[instance] = (_instance_spec(spec, each, f"jobs.{name}"), line, name)
        else:
            if isinstance(spec, YamlMap):
                _no_each_outside_a_family(spec, f"jobs.{name}")
            result.specs[name] = (spec, line, None)
    return result


def _resolve(name, jobs_map, root, values, result, visiting):
    """The instances of family `name`, resolving families it draws values from first."""
    if name in values:
        return values[name]
    if name in visiting:
        cycle = " -> ".join((*visiting[visiting.index(name):], name))
        raise FamilyError(jobs_map.line_of(name), f"jobs.{name}.foreach", f"families draw values in a cycle: {cycle}")
    spec = jobs_map[name]
    where = f"jobs.{name}.foreach"
    problem = job_name_problem(name)
    if problem:
        raise FamilyError(jobs_map.line_of(name), f"jobs.{name}", problem)
    foreach = spec["foreach"]
    if not isinstance(foreach, YamlMap) or not foreach:
        raise FamilyError(spec.line_of("foreach"), where, "must be a mapping of variable: values, "
                          "e.g. {sample: \"data/*.fastq\"}")
    columns = []
    for var, source in foreach.items():
        line = foreach.line_of(var)
        if not isinstance(var, str) or not VAR_RE.match(var):
            raise FamilyError(line, where, f"{var!r}: a variable name must be a simple identifier")
        texts = _values(source, line, f"{where}.{var}", jobs_map, root, values, result, (*visiting, name))
        columns.append([(var, value, text) for value, text in texts])
    count = 1
    for column in columns:
        count *= len(column)
    if count > MAX_INSTANCES:  # before making a single name: a product grows fast
        raise FamilyError(spec.line_of("foreach"), where, f"{count:,} combinations of values; at most "
                          f"{MAX_INSTANCES:,} jobs are allowed in a recipe")
    instances, seen = [], {}
    for combination in itertools.product(*columns):
        instance = f"{name}@" + ",".join(text for _, _, text in combination)
        if instance in seen:
            raise FamilyError(spec.line_of("foreach"), where, f"two combinations of values give one job name, "
                              f"{instance!r}")
        if len(instance) > MAX_JOB_NAME:  # as for any job: it names directories and temporary files
            raise FamilyError(spec.line_of("foreach"), where, f"{instance[:60]!r}...: a job name of "
                              f"{len(instance)} characters; at most {MAX_JOB_NAME} are allowed")
        seen[instance] = True
        instances.append((instance, {var: value for var, value, _ in combination}))
    values[name] = instances
    return instances


def _values(source, line, where, jobs_map, root, values, result, visiting):
    """[(value, text in names), ...] of one variable."""
    if isinstance(source, YamlList):
        found = [(v, _text(v, source.line_of(i), where)) for i, v in enumerate(source)]
    elif isinstance(source, YamlMap) and list(source) == ["lines"]:
        found = [(v, _text(v, line, where)) for v in _lines(source["lines"], line, where, root, result)]
    elif isinstance(source, str) and GLOB_CHARS.search(source):
        found = [(v, _text(v, line, where)) for v in _glob(source, line, where, root, result)]
    elif isinstance(source, str) and source in jobs_map:
        spec = jobs_map[source]
        if not (isinstance(spec, YamlMap) and "foreach" in spec):
            raise FamilyError(line, where, f"{source!r} is a job, not a family (it has no foreach:)")
        found = [(instance.split("@", 1)[1],) * 2
                 for instance, _ in _resolve(source, jobs_map, root, values, result, visiting)]
    else:
        hint = f" (no family named {source!r})" if isinstance(source, str) else ""
        raise FamilyError(line, where, "values must be a glob with one `*`, a list, the name of a family "
                          f"or {{lines: FILE}}{hint}")
    seen = set()
    for _, text in found:
        if text in seen:
            raise FamilyError(line, where, f"the value {text!r} is given twice")
        seen.add(text)
    return found


def _text(value, line, where):
    """How a value is written in job names and commands; FamilyError if unusable there."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise FamilyError(line, where, f"a value must be a string or a number, not {type(value).__name__}")
    if not VALUE_RE.match(text):
        raise FamilyError(line, where, f"the value {text[:80]!r} cannot be part of a job name: use letters, "
                          "digits and . _ + - (not starting with . or -)")
    return text


def _glob(pattern, line, where, root, result):
    """The text each match's `*` covered, in sorted order of the matches."""
    norm = os.path.normpath(pattern)  # relative to the recipe, like an input (`..` and absolute too)
    if norm.count("*") != 1 or GLOB_CHARS.sub("", norm.replace("*", "", 1)) != norm.replace("*", "", 1):
        raise FamilyError(line, where, f"{pattern!r}: a family's glob has exactly one `*` (and no ? or [ ]): "
                          "the text it matches is the value")
    full = os.path.normpath(os.path.join(root, norm))
    before, after = full.split("*")
    listed = os.path.dirname(before)
    # Signed before listing, so a file added later shows; a directory that
    # does not exist yet is recorded as absent (its creation must show too).
    result.sources.append([listed, signature_of(listed)])
    if os.sep in after:  # the `*` is a directory: what appears inside each one counts too
        for entry in sorted(os.listdir(listed)) if os.path.isdir(listed) else ():
            path = os.path.join(listed, entry)
            if os.path.isdir(path):
                result.sources.append([path, signature_of(path)])
                deeper = os.path.dirname(path + after)  # `data/*/sub/reads.txt`: data/A/sub
                if deeper != path:
                    result.sources.append([deeper, signature_of(deeper)])
    # Only the pattern's `*` is a wildcard, never a character of the project's path.
    matcher = re.compile(re.escape(before) + r"([^/]*)" + re.escape(after) + r"\Z")
    found = []
    for path in sorted(glob.glob(glob.escape(before) + "*" + glob.escape(after))):
        match = matcher.match(path)
        if match and match.group(1):
            found.append(match.group(1))
    return found


def _lines(path, line, where, root, result):
    """The non-blank lines of a file (stripped; `#` starts a comment line)."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise FamilyError(line, where, "{lines: FILE} needs a file name")
    full = os.path.normpath(os.path.join(root, path))
    sig = signature_of(full)
    try:
        with open(full, "rb") as f:
            if not os.path.isfile(full):
                raise OSError(0, "not a regular file")
            data = f.read(MAX_LINES_BYTES + 1)
    except OSError as exc:
        raise FamilyError(line, where, f"{path!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_LINES_BYTES:
        raise FamilyError(line, where, f"{path!r} is larger than {MAX_LINES_BYTES >> 20} MiB; a file of "
                          "values is read whole")
    result.sources.append([full, sig])
    text = data.decode("utf-8", "replace")
    return [item.strip() for item in text.splitlines() if item.strip() and not item.strip().startswith("#")]


# -- substituting {each.VAR} ------------------------------------------------------

def _instance_spec(spec, each, where):
    """A copy of the family's spec for one instance: `foreach` gone, {each.VAR} filled."""
    copy = YamlMap()
    copy.line, copy.key_lines, copy.own_lines = spec.line, dict(spec.key_lines), set(spec.own_lines)
    for key, value in spec.items():
        if key == "foreach":
            continue
        if key in SUBSTITUTED_KEYS:
            copy[key] = _fill(value, each, spec.line_of(key), f"{where}.{key}")
        else:
            if _mentions_each(value):
                raise FamilyError(spec.line_of(key), f"{where}.{key}", "{each.VAR} is not filled in here "
                                  f"(only in {', '.join(SUBSTITUTED_KEYS)})")
            copy[key] = value
    return copy


def _fill(value, each, line, where):
    if isinstance(value, str):
        return _fill_text(value, each, line, where)
    if isinstance(value, YamlMap):
        copy = YamlMap()
        copy.line, copy.own_lines = value.line, set(value.own_lines)
        for key, item in value.items():
            new_key = _fill_text(key, each, value.line_of(key), where, typed=False) if isinstance(key, str) else key
            if new_key in copy:
                raise FamilyError(value.line_of(key), f"{where}.{new_key}", "two keys become one once filled in")
            copy[new_key] = _fill(item, each, value.line_of(key), f"{where}.{new_key}")
            copy.key_lines[new_key] = value.line_of(key)
        return copy
    if isinstance(value, YamlList):
        copy = YamlList(_fill(item, each, value.line_of(i), where) for i, item in enumerate(value))
        copy.line, copy.item_lines = value.line, list(value.item_lines)
        return copy
    return value


def _fill_text(text, each, line, where, typed=True):
    if EACH_START not in text:
        return text
    _check_each(text, each, line, where)
    whole = EACH_RE.fullmatch(text)
    if whole and typed:
        return each[whole.group(1)]  # `lr: "{each.lr}"` keeps the value's type
    return EACH_RE.sub(lambda m: _text(each[m.group(1)], line, where), text)


def _check_each(text, each, line, where):
    """Every `{each.` must be a whole `{each.VAR}` naming a declared variable."""
    for start in re.finditer(re.escape(EACH_START), text):
        match = EACH_RE.match(text, start.start())
        if not match or not VAR_RE.match(match.group(1)):
            shown = text[start.start():start.start() + 40]
            raise FamilyError(line, where, f"malformed placeholder {shown!r}: write {{each.VAR}}")
        if match.group(1) not in each:
            known = ", ".join(each)
            raise FamilyError(line, where, f"{{each.{match.group(1)}}} names no variable of this family "
                              f"(its foreach declares: {known})")


def _mentions_each(value):
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str) and EACH_START in item:
            return True
        if isinstance(item, dict):
            todo.extend(item)
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


def _no_each_outside_a_family(spec, where):
    for key, value in spec.items():
        if _mentions_each(value) or (isinstance(key, str) and EACH_START in key):
            raise FamilyError(spec.line_of(key), f"{where}.{key}", "{each.VAR} is only known in a family "
                              "(a job with `foreach:`)")
