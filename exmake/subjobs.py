"""Subjobs: a job that a job script asks for while it runs (`job.build`, exmake.jobapi).

`exmake subjob` (a hidden command the job script's `job.build` runs) reads
one request, JSON on standard input:

    {"recipe": the parent's recipe (absolute), "parent": the parent's job id,
     "method": a job script relative to the recipe, or `package:name`,
     "name": the subjob's name or null (then the script's),
     "options": {...}, "inputs": {name: absolute path},
     "deps": {name: absolute path of a finished job directory}}

and turns it into a recipe Job that exists for this one build: the same
key, the same rebuilder decision (exmake.rebuilder: a finished job with the
key is reused, here or in a `reuse_from:` workdir), the same local job run
(exmake.build). Its dependencies are finished jobs given by path, entered as
the rebuilder's external dependencies (like `:LIST/ENTRY:NAME` deps). It
prints one JSON line:

    {"result": "SUCCESS" | "FAILURE", "name", "jobid", "path", "key",
     "state": "built" | "reused" | "failed" | "skipped", "exception", "traceback"}

A subjob's build is not a build-log entry of its own (that would move
`LIST/latest`): the parent's post.json lists its children, and the parent's
build's log entry lists them under the parent (exmake.commands.build).
"""

import os

from exmake.build import Build, BuildOptions
from exmake.errors import UsageError
from exmake.fs.atomic import read_json
from exmake.fs.jobdir import JOBID_RE
from exmake.fs.records import POST, check_post
from exmake.inputs import expand_input
from exmake.method import MethodError, load_method
from exmake.names import job_name_problem
from exmake.outcome import Outcome
from exmake.recipe import Job, _json_problem
from exmake.report import Reporter
from exmake.workspace import Workspace

INPUT_DIR_ENV = "EXMAKE_INPUT_DIR"   # the parent build's --input-dir, for its subjobs
FIELDS = {"recipe": str, "method": str, "options": dict, "inputs": dict, "deps": dict}


def check_request(request):
    """UsageError unless `request` has the fields above, each of its type."""
    if not isinstance(request, dict):
        raise UsageError("subjob: the request must be a JSON object")
    for field, kind in FIELDS.items():
        if not isinstance(request.get(field), kind):
            raise UsageError(f"subjob: {field!r} must be a {kind.__name__}")
    if request.get("name") is not None and not isinstance(request["name"], str):
        raise UsageError("subjob: 'name' must be a string")


def run_subjob(request, cores=1):
    """Build (or reuse) the requested subjob; its result record."""
    check_request(request)
    reuse = os.environ.get("EXMAKE_REUSE_FROM")
    ws = Workspace.load(request["recipe"], input_dir=os.environ.get(INPUT_DIR_ENV) or None)
    try:
        if reuse:
            ws.recipe.reuse_from = [os.path.abspath(d) for d in reuse.split(":") if os.path.isdir(d)]
        job, deps = make_job(ws.recipe, request)
        ws.recipe.jobs, ws.recipe.default, ws.recipe.families = {job.name: job}, [job.name], {}
        build = Build(ws, BuildOptions(cores), Reporter(enabled=False))
        build.rebuilder.external.update({(job.name, local): outcome for local, outcome in deps.items()})
        _refuse_a_cycle(ws, job, build, request.get("parent"))
        outcome = build.run([job.name])[job.name]
        post = ws.jobdirs.read_post(outcome.jobid) if outcome.jobid and outcome.state == "failed" else None
        return result_record(job.name, outcome, build.keys.get(job.name), post)
    finally:
        ws.close()


def make_job(recipe, request):
    """(the subjob's Job, {local: Outcome of each dependency}); UsageError naming
    what in the request is wrong."""
    try:
        method = load_method(request["method"], recipe.root)
        options = method.check_options(request["options"])
    except MethodError as exc:
        where = f" ({exc.path}:{exc.line})" if exc.path else ""
        raise UsageError(f"subjob {request['method']}: {exc.problem}{where}") from None
    for option, value in options.items():
        problem = _json_problem(value)
        if problem:
            raise UsageError(f"subjob: options.{option}: {problem}")
    name = request.get("name") or _script_name(request["method"])
    problem = job_name_problem(name)
    if problem:
        raise UsageError(f"subjob name {name!r}: {problem}")
    if name in recipe.jobs:
        raise UsageError(f"subjob name {name!r} is a job of the recipe; give job.build another name=")
    job = Job(name=name, line=0, method=method, options=options, slices=recipe.slices)
    # The child runs in its parent's environment, so the parent's `env:` is
    # part of what the child is: in its key (two parents that differ only in
    # env: must not share one child).
    job.env = _parent_env(recipe, request.get("parent"))
    job.inputs = {local: _input(recipe, local, path) for local, path in request["inputs"].items()}
    deps = {local: _dependency(local, path, recipe.workdir) for local, path in request["deps"].items()}
    job.external = {local: path for local, path in request["deps"].items()}
    return job, deps


def _script_name(method):
    """A subjob's default name: its script's file name without `.py`, or an entry point's name."""
    if ":" in method and not method.endswith(".py"):
        return method.rsplit(":", 1)[1]
    return os.path.splitext(os.path.basename(method))[0]


ANCESTORS_ENV = "EXMAKE_SUBJOB_KEYS"   # the keys of the jobs building this one, ':'-separated


def _refuse_a_cycle(ws, job, build, parent):
    """A subjob with the key of a job that is building it would wait for ever
    on that job's key lock: refuse it at once. The chain of ancestors' keys
    goes down to the child's own processes in the environment."""
    setup = read_json(os.path.join(ws.recipe.workdir, parent, "setup.json")) \
        if isinstance(parent, str) and JOBID_RE.match(parent) else None
    ancestors = [k for k in os.environ.get(ANCESTORS_ENV, "").split(":") if k]
    if isinstance(setup, dict) and isinstance(setup.get("key"), str):
        ancestors.append(setup["key"])
    verdict = build.rebuilder.decide(job, {}, False)
    if verdict.key and verdict.key in ancestors:
        raise UsageError(f"subjob {job.name} would build itself: a job that is building it "
                         "(its parent or an ancestor) has the same script, options, inputs and deps")
    os.environ[ANCESTORS_ENV] = ":".join(ancestors)


def _parent_env(recipe, parent):
    """The `env:` of the job whose script asks for the subjob, from its setup record."""
    if not isinstance(parent, str) or not JOBID_RE.match(parent):
        return {}
    setup = read_json(os.path.join(recipe.workdir, parent, "setup.json")) or {}
    env = (setup.get("step") or {}).get("env") if isinstance(setup, dict) else None
    return dict(env) if isinstance(env, dict) else {}


def _input(recipe, local, path):
    if not isinstance(path, str):
        raise UsageError(f"subjob: inputs.{local} must be one file or directory")
    real = os.path.realpath(path)
    for top in (recipe.workdir, recipe.results):
        top = os.path.realpath(top)
        if real == top or real.startswith(top + os.sep) or top.startswith(real.rstrip(os.sep) + os.sep):
            raise UsageError(f"subjob: inputs.{local}: {path} is, holds or is inside {top}: "
                             "give a job as deps= instead")
    try:
        return expand_input(recipe.input_dir or recipe.root, local, path, 0)
    except ValueError as exc:
        raise UsageError(f"subjob: inputs.{local}: {exc}") from None


def _dependency(local, path, own_workdir):
    """The Outcome of a finished job directory given as a dependency (its
    workdir noted when it is another's, as a `reuse_from:` job's is)."""
    post = check_post(read_json(os.path.join(path, POST))) if isinstance(path, str) else None
    if not post or post["result"] != "SUCCESS":
        raise UsageError(f"subjob: deps.{local}: {path} is not a finished job directory")
    workdir = os.path.dirname(path)
    elsewhere = os.path.realpath(workdir) != os.path.realpath(own_workdir)
    return Outcome("reused", os.path.basename(path), path, outputs=post["outputs"],
                   detail={"workdir": workdir} if elsewhere else None)


def result_record(name, outcome, key, post):
    """What `exmake subjob` prints for the parent (see the module docstring)."""
    ok = outcome.state in ("built", "reused")
    exception = traceback = None
    if not ok:
        exception = (post or {}).get("exception") or (post or {}).get("reason") \
            or outcome.detail.get("reason") or "; ".join(outcome.reasons) or outcome.state
        traceback = (post or {}).get("traceback") or "\n".join(outcome.detail.get("stderr_tail") or [])
    return {"result": "SUCCESS" if ok else "FAILURE", "name": name, "jobid": outcome.jobid,
            "path": outcome.path, "key": key, "state": outcome.state,
            "exception": exception, "traceback": traceback}
