"""Names a person gives exmake: job names, build-log list names and log-entry
references, and what each may be.

A leaf module: the recipe loader, the build log (urd) and job references
all check names with these, and none of them needs another to do so.
"""

import re

from exmake.fs.jobdir import JOB_NAME_PATTERN

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A directory name holds at most 255 bytes, and a job's name is followed by
# `-<N>` (N up to 19 digits), `-LATEST`, and suffixes of files named after
# the job id (batch scripts, logs). Checked here, before anything is written.
MAX_JOB_NAME = 200
LIST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
# A list name is part of an LMDB key (at most 511 bytes, with the timestamp);
# checked before a build runs, not when its entry fails to be written.
MAX_LIST_NAME = 200
BACK_RE = re.compile(r"^~([0-9]{1,9})$")   # LIST/~N: N entries back from the latest
TIMESTAMP_PREFIX_RE = re.compile(r"^[0-9][0-9T:.Z-]{0,26}$")
# `:LIST/ENTRY:NAME`: a job recorded in the build log (see exmake.jobref)
URD_REF_RE = re.compile(rf"^:([^/:]+/.+):({JOB_NAME_PATTERN})$")  # ENTRY may hold ':' (timestamps)
RECORDED_NAME_RE = re.compile(rf"^{JOB_NAME_PATTERN}$")


def job_name_problem(name):
    """Why `name` cannot name a job, or None."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        return "a job name must be a simple identifier (letters, digits, _; not starting with a digit)"
    if len(name) > MAX_JOB_NAME:
        return (f"a job name of {len(name):,} characters; at most {MAX_JOB_NAME} are allowed "
                "(it names directories)")
    return None


def recorded_name_problem(name):
    """Why `name` cannot be the name of a job in the build log or a reference
    (a recipe job's, or a family instance's `NAME@VALUE`), or None."""
    if not isinstance(name, str) or not RECORDED_NAME_RE.match(name):
        return "a job name must be a simple identifier, or NAME@VALUE for a family's job"
    if len(name) > MAX_JOB_NAME + 60:
        return f"a job name of {len(name):,} characters is longer than any job exmake makes"
    return None


def list_name_problem(name):
    """Why `name` cannot be a list name, or None."""
    if not isinstance(name, str) or not LIST_RE.match(name):
        return f"{name!r} is not a urd list name (letters, digits, _ . -; not starting with . or -)"
    if len(name) > MAX_LIST_NAME:
        return f"a urd list name of {len(name):,} characters; at most {MAX_LIST_NAME} are allowed"
    return None


def entry_spec_problem(spec):
    """Why `spec` cannot name an entry (LIST/latest, LIST/first, LIST/~N, LIST/TIMESTAMP), or None."""
    if "/" not in spec:
        return f"{spec[:80]!r}: name an entry as LIST/latest, LIST/first, LIST/~N or LIST/TIMESTAMP"
    list_name, which = spec.split("/", 1)
    problem = list_name_problem(list_name)
    if problem:
        return problem
    if which.startswith("~") and not BACK_RE.match(which):
        return f"{spec[:80]!r}: ~N needs a whole number of at most 9 digits"
    if which not in ("latest", "first") and not which.startswith("~") and not TIMESTAMP_PREFIX_RE.match(which):
        return f"{spec[:80]!r}: {which[:40]!r} is not latest, first, ~N or a timestamp (prefix)"
    return None
