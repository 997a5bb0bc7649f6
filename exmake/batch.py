"""`exmake batch`: sioworkers' batch interface, its environ in and its result document out.

The environ is one JSON object, read from `$environ` when that is set, else
from standard input:

    {"job": NAME,                 the recipe job to run or reuse (required)
     "options": {NAME: VALUE},    laid over the job's options in the recipe;
                                  other options make another key, so another job
     "recipe": PATH,              the Exmakefile (default: -f, ./Exmakefile)
     "targets": [NAME, ...],      more jobs to build with it
     ...}                         anything else is handed back untouched

The result document is the environ with these fields set (the whole contract):

    "result":    "SUCCESS" or "FAILURE"
    "jobid":     the job's id (`count-3`), or null when it never started
    "path":      the absolute path of its job directory, or null
    "outputs":   {path in the job directory: content digest} (empty on failure)
    and on FAILURE only
    "exception": one line: what went wrong (the job script's exception, the
                 command's exit status, a dependency that failed)
    "traceback": the job script's traceback, or the tail of the command's
                 stderr; "" when there is none

`--markers` wraps it in `--- BEGIN ENVIRON ---` / `--- END ENVIRON ---`
lines, as sio-batch does. An environ that is not JSON, is not an object,
names no job or a job the recipe lacks, or gives options that are not
options, is one UsageError (exit 2) before anything is written.
"""

import json
import os

from exmake.errors import UsageError
from exmake.method import MethodError
from exmake.names import NAME_RE
from exmake.recipe import _json_problem, suggest

ENVIRON_VAR = "environ"
BEGIN_MARKER = "--- BEGIN ENVIRON ---"
END_MARKER = "--- END ENVIRON ---"
MAX_ENVIRON_BYTES = 16 << 20   # an environ is a few fields; more is a mistake, not a request


def read_environ(stdin):
    """The environ object, from $environ if set, else `stdin`; UsageError if it is
    not a JSON object naming a job."""
    where = "$environ" if os.environ.get(ENVIRON_VAR) else "standard input"
    text = os.environ.get(ENVIRON_VAR) or stdin.read(MAX_ENVIRON_BYTES + 1)
    if len(text) > MAX_ENVIRON_BYTES:
        raise UsageError(f"environ ({where}): more than {MAX_ENVIRON_BYTES >> 20} MiB")
    try:
        environ = json.loads(text)
    except RecursionError:
        raise UsageError(f"environ ({where}) is nested too deeply") from None
    except ValueError as exc:
        problem = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if hasattr(exc, "lineno") else str(exc)
        raise UsageError(f"environ ({where}) is not JSON: {problem}") from None
    if not isinstance(environ, dict):
        raise UsageError(f"environ ({where}) must be a JSON object such as "
                         '{"job": "NAME", "options": {...}}, not ' + type(environ).__name__)
    job = environ.get("job")
    if not isinstance(job, str) or not job:
        raise UsageError(f"environ ({where}) names no job: give \"job\": \"NAME\"")
    for key, kind, label in (("options", dict, "an object"), ("recipe", str, "a path"),
                             ("targets", list, "a list of job names")):
        if key in environ and not isinstance(environ[key], kind):
            raise UsageError(f"environ: \"{key}\" must be {label}")
    if not all(isinstance(t, str) for t in environ.get("targets", [])):
        raise UsageError("environ: \"targets\" must be a list of job names")
    return environ


def apply_environ(recipe, environ):
    """Check the environ against the recipe and lay its options over the job's;
    returns the targets to build (the job first). UsageError names what is wrong."""
    name = environ["job"]
    for target in [name, *environ.get("targets", [])]:
        if target not in recipe.jobs:
            raise UsageError(f"environ: no job named {target!r} in {recipe.path}{suggest(target, recipe.jobs)}")
    job = recipe.jobs[name]
    given = environ.get("options", {})
    for option, value in given.items():
        if not NAME_RE.match(option):
            raise UsageError(f"environ: options.{option[:80]}: an option name must be a simple identifier")
        problem = _json_problem(value)
        if problem:
            raise UsageError(f"environ: options.{option}: {problem}")
        if not job.method and option not in job.options:  # a job script checks its own below
            known = ", ".join(sorted(job.options)) or "none"
            raise UsageError(f"environ: options.{option}: job {name} has no such option (its options: {known})"
                             f"{suggest(option, job.options)}")
    if given:
        merged = {**job.options, **given}
        if job.method:
            try:
                merged = job.method.check_options(merged)
            except MethodError as exc:
                raise UsageError(f"environ: options.{exc.problem}") from None
        if merged != job.options:
            job.options = merged
            job.publish = {}  # a variant must not take the recipe's published results
    return [name, *[t for t in environ.get("targets", []) if t != name]]


def result_document(environ, outcome, post):
    """The environ with the result fields (see the module docstring). `post`:
    the job's post record, if it has one."""
    document = dict(environ)
    ok = outcome.state in ("built", "reused")
    document["result"] = "SUCCESS" if ok else "FAILURE"
    document["jobid"] = outcome.jobid
    document["path"] = outcome.path
    document["outputs"] = {path: digest for path, digest in outcome.outputs or []} if ok else {}
    for key in ("exception", "traceback"):
        document.pop(key, None)
    if not ok:
        document["exception"], document["traceback"] = _failure(outcome, post)
    return document


def _failure(outcome, post):
    """(exception, traceback) of a job that did not succeed."""
    if post and post.get("exception"):
        return post["exception"], post.get("traceback") or ""
    reason = (post or {}).get("reason") or outcome.detail.get("reason") or "; ".join(outcome.reasons) \
        or outcome.state
    tail = (post or {}).get("stderr_tail") or outcome.detail.get("stderr_tail") or []
    return reason, "\n".join(tail)


def render(document, markers):
    """The text to print: one JSON document, with sio-batch's markers if asked."""
    if markers:  # as sio-batch prints it: the document on the one line between the markers
        return f"{BEGIN_MARKER}\n{json.dumps(document, sort_keys=True, ensure_ascii=False)}\n{END_MARKER}\n"
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
