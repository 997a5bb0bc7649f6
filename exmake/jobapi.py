"""What a job script sees: `job`, `deps.NAME` and `inputs`.

    job.path, job.jobid, job.sliceno, job.slices
    job.open(name, mode="r", sliceno=None)   writes are atomic: a temporary
                                             name, renamed on a clean close;
                                             sliced files are `name.<sliceno>`
    job.save(obj, name="result.pickle") / job.load(name="result.pickle")
                                             saved deterministically: sets and
                                             frozensets in a fixed order (plain
                                             pickle when that cannot be done,
                                             see stable_dump)
    job.json_save(obj, name) / job.json_load(name)
    job.input_lines(name, encoding="utf-8")  the lines of input `name` that
                                             belong to this slice
    deps.NAME.path / .open(...) / .load(...) / .json_load(...) / .files()
    inputs.NAME                              its path in the job's stable view,
                                             `inputs/NAME/FILE` (a list of the
                                             files for globs and directories)
    deps.NAME.path                           `deps/NAME` (see exmake.view); a
                                             job script runs in its job directory
    job.build(method=SCRIPT_OR_ENTRY_POINT, options=None, inputs=None, deps=None, name=None)
                                             runs or reuses a subjob (below) and
                                             returns its JobDir

Subjobs. `job.build` runs a child job in the same workdir, by the same
rules as a recipe job: its key is its step (script code, options, name),
its inputs' content and its deps' outputs, and a finished job with that key
is reused, not run. `method` is a job script's path relative to the recipe,
or an entry point `package:name`; `name` defaults to the script's name (its
file name without `.py`, or the entry point's name). `inputs` maps names to
files or directories (paths in this job's view, such as `inputs.text`, or
absolute ones); `deps` maps names to finished jobs (`deps.words`, a JobDir
an earlier `job.build` returned, or a job directory's path). The child runs
in a separate `exmake subjob` process, synchronously, within this job's own
core slots (the parent lends them while it waits, so a build whose slots
are all taken cannot deadlock on its children). A child that fails raises
SubjobFailed in the parent, which then fails too.

Each child this job built or reused is appended, one JSON line each, to
`.subjobs.jsonl` in the job directory (under an flock: slices may build
children at once): {"name", "jobid", "path", "key", "state": "built" |
"reused"}. The runner moves them into post.json's "subjobs"
(exmake.methodrun); the file is never an output. A child is in the
workdir's index (made durable by the child's build, exmake.ledger) before
`job.build` returns it, so a kill at any instant loses no child the parent
had: the next build reuses it. One killed after it ended but before it was
indexed runs again, as any job does.
"""

import fcntl
import subprocess
import sys

import io
import json
import os
import pickle

from exmake.slicer.ranges import iter_lines, slice_ranges

RESULT_NAME = "result.pickle"
SUBJOBS_RECORD = ".subjobs.jsonl"


class SubjobFailed(Exception):
    """A subjob (`job.build`) failed; the message holds its exception and traceback."""


class _Unstable(Exception):
    """Sets that cannot be put in an order of their own (a set reached again
    while its own elements are being ordered: a cycle through a set)."""


# Elements of these types, all of one of them, compare totally: sorted by value.
_TOTALLY_ORDERED = (str, bytes, int)


class StablePickler(pickle._Pickler):
    """A pickler whose bytes do not depend on the process's hash seed.

    A set pickles in iteration order, which for strings depends on
    PYTHONHASHSEED; job scripts run in a fork of exmake, so each build's
    seed differs and the same result would pickle to other bytes, defeating
    early cutoff. Sets and frozensets are pickled sorted, in an order that is
    total and the same in every process: a set of only strings, only bytes
    or only ints by value; any other by each element's own pickle, as bytes
    (itself stable: a set inside an element is sorted the same way). Value
    order is not used beyond those types, as it is not total for others (a
    set of frozensets compares by inclusion, NaN with nothing, Decimal NaN
    raises). Elements whose own pickles are identical are indistinguishable
    and keep the set's order. This is Python's pure-Python pickler, as the C
    one never asks `reducer_override` about a set; it is many times slower,
    so `stable_dump` uses it only for objects that hold a set.

    `keys` (id -> (element, its pickle)) is shared with the picklers that
    make the elements' keys, so each element is pickled for its key once;
    `keying` holds the ids whose keys are being made, so a cycle back to one
    of them raises _Unstable instead of recursing for ever.
    """

    def __init__(self, file, protocol=pickle.HIGHEST_PROTOCOL, keys=None, keying=None):
        super().__init__(file, protocol=protocol)
        self.keys = {} if keys is None else keys
        self.keying = set() if keying is None else keying
        self.reduced = {}  # id -> set, kept alive so that its id is not reused

    def reducer_override(self, obj):
        if type(obj) not in (set, frozenset):
            return NotImplemented
        if id(obj) in self.reduced:
            # Not memoized yet, so reached again from its own elements: the
            # reduction would recurse without end.
            raise _Unstable("a set that holds itself")
        self.reduced[id(obj)] = obj
        return type(obj), (self._ordered(obj),)

    def _ordered(self, items):
        if len(items) < 2:
            return list(items)
        kinds = {type(item) for item in items}
        if len(kinds) == 1 and kinds.pop() in _TOTALLY_ORDERED:
            return sorted(items)
        return sorted(items, key=self._key)

    def _key(self, item):
        """The element's own pickle: C-pickled when it holds no set (fast, and
        the same in every process), else with its sets ordered."""
        known = self.keys.get(id(item))
        if known is not None:
            return known[1]
        if id(item) in self.keying:
            raise _Unstable("a cycle through a set")
        self.keying.add(id(item))
        try:
            buffer = io.BytesIO()
            spotter = _SetSpotter(buffer, protocol=self.proto)
            spotter.dump(item)
            if spotter.met_a_set:
                buffer = io.BytesIO()
                StablePickler(buffer, self.proto, self.keys, self.keying).dump(item)
        finally:
            self.keying.discard(id(item))
        self.keys[id(item)] = (item, buffer.getvalue())  # the item kept alive: its id stays its own
        return self.keys[id(item)][1]


class _SetSpotter(pickle.Pickler):
    """The C pickler, noting whether it met a set: it asks persistent_id about
    every object, sets included (and pickles as usual when told None)."""

    met_a_set = False

    def persistent_id(self, obj):
        if type(obj) in (set, frozenset):
            self.met_a_set = True
        return None


def stable_dump(obj, file):
    """Pickle `obj` into `file` (seekable) the same whatever the hash seed.

    When its sets cannot be ordered (a cycle through a set, nesting too deep
    for the pure-Python pickler, anything it raises), `obj` is saved as plain
    pickle does, sets in iteration order: the result is still saved and the
    job does not fail for it, but its bytes may differ from run to run (and
    so defeat early cutoff for what reads it). A result that plain pickle
    cannot save fails as it always would."""
    start = file.tell()
    spotter = _SetSpotter(file, protocol=pickle.HIGHEST_PROTOCOL)
    spotter.dump(obj)
    if not spotter.met_a_set:
        return
    buffer = io.BytesIO()
    try:
        StablePickler(buffer, pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:  # RecursionError included: keep the plain pickle already written
        return
    file.seek(start)
    file.truncate()
    file.write(buffer.getbuffer())


def stable_dumps(obj):
    """`obj` pickled the same whatever the hash seed (see stable_dump)."""
    buffer = io.BytesIO()
    stable_dump(obj, buffer)
    return buffer.getvalue()


def _sliced(name, sliceno):
    return name if sliceno is None else f"{name}.{sliceno}"


class _AtomicFile:
    """A file opened for writing under a temporary name, renamed on a clean close."""

    def __init__(self, path, mode, **kwargs):
        self.path = path
        self.tmp = f"{path}.tmp-{os.getpid()}"
        self.file = open(self.tmp, mode, **kwargs)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __iter__(self):
        return iter(self.file)

    def close(self, keep=True):
        if self.file.closed:
            return
        self.file.close()
        if keep:
            os.rename(self.tmp, self.path)
        else:
            os.unlink(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self.close(keep=exc_type is None)


class JobDir:
    """Reading (and, for the running job, writing) files of one job directory."""

    def __init__(self, path, jobid=None):
        self.path = path
        self.jobid = jobid

    def filename(self, name, sliceno=None):
        return os.path.join(self.path, _sliced(name, sliceno))

    def open(self, name, mode="r", sliceno=None, **kwargs):
        path = self.filename(name, sliceno)
        if any(c in mode for c in "wax+"):
            if "+" in mode or "a" in mode:
                return open(path, mode, **kwargs)  # updating in place cannot be atomic
            return _AtomicFile(path, mode.replace("x", "w"), **kwargs)
        return open(path, mode, **kwargs)

    def load(self, name=RESULT_NAME, sliceno=None):
        with open(self.filename(name, sliceno), "rb") as f:
            return pickle.load(f)

    def json_load(self, name, sliceno=None):
        with open(self.filename(name, sliceno), "rb") as f:
            return json.load(f)

    def files(self):
        """The files this job wrote (its outputs), relative to its directory."""
        post = os.path.join(self.path, "post.json")
        if os.path.exists(post):
            with open(post) as f:
                return [p for p, _ in json.load(f)["outputs"]]
        return sorted(os.listdir(self.path))

    def __repr__(self):
        return f"<job {self.jobid or self.path}>"


class Job(JobDir):
    """The running job: its directory, its slice, and its inputs by slice."""

    def __init__(self, path, jobid, inputs, slices, sliceno=None):
        super().__init__(path, jobid)
        self.inputs = inputs
        self.slices = slices
        self.sliceno = sliceno

    def save(self, obj, name=RESULT_NAME, sliceno=None):
        with self.open(name, "wb", sliceno) as f:
            stable_dump(obj, f)

    def json_save(self, obj, name, sliceno=None):
        with self.open(name, "w", sliceno) as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    def build(self, method, options=None, inputs=None, deps=None, name=None):
        """Run or reuse a subjob; its JobDir (see the module docstring)."""
        request = {"recipe": self._recipe(), "parent": self.jobid, "method": method, "name": name,
                   "options": dict(options or {}),
                   "inputs": {k: _absolute(v) for k, v in (inputs or {}).items()},
                   "deps": {k: _absolute(getattr(v, "path", v)) for k, v in (deps or {}).items()}}
        command = [sys.executable, "-m", "exmake", "subjob"]
        proc = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True,
                              cwd=self.path)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise SubjobFailed(f"subjob {name or method}: {proc.stderr.strip() or 'exmake subjob failed'}")
        result = json.loads(proc.stdout)
        if result["result"] != "SUCCESS":
            raise SubjobFailed(f"subjob {result['name']} ({result['jobid'] or 'not started'}) failed: "
                               f"{result['exception']}\n{result['traceback']}".rstrip())
        self._note_subjob({k: result[k] for k in ("name", "jobid", "path", "key", "state")})
        return JobDir(result["path"], result["jobid"])

    def _recipe(self):
        """The recipe this job was built from, as its setup record says."""
        with open(os.path.join(self.path, "setup.json")) as f:
            return json.load(f)["recipe"]

    def _note_subjob(self, record):
        with open(os.path.join(self.path, SUBJOBS_RECORD), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # slices may append at once; one whole line each
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()

    def input_lines(self, name, encoding="utf-8", sliceno=None):
        """The lines of input `name` in this slice (for a glob or directory, this
        slice's share of each file, file by file)."""
        sliceno = self.sliceno if sliceno is None else sliceno
        if sliceno is None:
            raise ValueError("input_lines needs a slice: call it from analysis(sliceno)")
        paths = self.inputs[name]
        for path in paths if isinstance(paths, list) else [paths]:
            yield from iter_lines(path, slice_ranges(path, self.slices)[sliceno], encoding)


def _absolute(path):
    """A path given to `job.build`, absolute and with the job's view links followed."""
    if isinstance(path, list):
        return [_absolute(p) for p in path]
    return os.path.realpath(os.fspath(path))


def take_subjobs(directory):
    """The subjobs recorded in `directory` (each once, in order), the record
    removed so that it is never an output; [] if there are none. A line cut
    short by a kill is left out: its child is not the parent's yet."""
    path = os.path.join(directory, SUBJOBS_RECORD)
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    os.unlink(path)
    seen, subjobs = set(), []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("jobid") not in seen:
            seen.add(record.get("jobid"))
            subjobs.append(record)
    return subjobs


class Namespace:
    """Attribute access to a dict: `deps.words`, `inputs.text`."""

    def __init__(self, items):
        self.__dict__.update(items)

    def __getitem__(self, name):
        return self.__dict__[name]

    def __iter__(self):
        return iter(self.__dict__)

    def __repr__(self):
        return f"Namespace({', '.join(self.__dict__)})"
