"""urd: the append-only build log, kept in the workdir's LMDB (`urd` database).

Every build appends one entry to a list (default `default`; `--urd LIST`).
An entry is written in one LMDB transaction, with `put(overwrite=False)`:
no build ever rewrites or deletes one, two concurrent builds both land
(LMDB serialises writers), and a reader sees whole entries only.

Key:   `<list>\\0<timestamp>`, timestamp = UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`
       (fixed width, so keys sort by time; a clash within one microsecond
       takes the next free microsecond).
Value: canonical JSON (sorted keys, no spaces), format 1:
    {"format": 1, "list", "timestamp", "user", "host",
     "recipe": absolute path, "recipe_digest": sha256 of its text,
     "targets": [...], "status": "SUCCESS" | "FAILURE" | "INTERRUPTED" | "SUBMITTED",
     "duration": seconds, "caption": str,
     "jobs": {name: {"jobid", "key", "state": "built" | "reused" | "failed" | "skipped" | "submitted",
                     and "workdir": the other workdir a reused job lies in (`reuse_from:`),
                     and "subjobs": [{"name", "jobid", "key", "state"}] a job script built}},
     and for a cluster build "scheduler": {"backend", "build", "ids": {name: scheduler id}}}
SUBMITTED is a cluster build that returned without waiting (--no-wait).

Export writes the stored values, one a line (JSON Lines), so export ->
import -> export is byte-identical.
"""

import json
import os
import re
from datetime import datetime, timedelta, timezone

from exmake.errors import UsageError
from exmake.names import BACK_RE, entry_spec_problem, list_name_problem, recorded_name_problem  # noqa: F401

FORMAT = 1
DEFAULT_LIST = "default"
MAX_IMPORT_LINE_BYTES = 64 << 20           # one entry; a build of 100,000 jobs writes ~10 MiB
MAX_JOB_NUMBER_DIGITS = 18                 # N of `<name>-<N>`: a 64-bit counter
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
# field -> the types it may have; an imported entry must have them all
FIELDS = {"format": (int,), "list": (str,), "timestamp": (str,), "user": (str,), "host": (str,),
          "recipe": (str,), "recipe_digest": (str,), "targets": (list,), "status": (str,),
          "duration": (int, float), "caption": (str,), "jobs": (dict,)}
STATUSES = ("SUCCESS", "FAILURE", "INTERRUPTED", "SUBMITTED")


def check_list_name(name):
    problem = list_name_problem(name)
    if problem:
        raise UsageError(problem)
    return name


def now_timestamp(moment=None):
    return (moment or datetime.now(timezone.utc)).strftime(TIMESTAMP_FORMAT)


def _key(list_name, timestamp):
    return f"{list_name}\0{timestamp}".encode()


def encode(entry):
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_entry(list_name, recipe_path, recipe_digest, targets, status, duration, jobs, caption=""):
    """A new entry (its timestamp is set when it is appended)."""
    return {"format": FORMAT, "list": list_name, "timestamp": None, "user": _user(),
            "host": os.uname().nodename, "recipe": recipe_path, "recipe_digest": recipe_digest,
            "targets": list(targets), "status": status, "duration": round(duration, 6),
            "caption": caption, "jobs": jobs}


def log_build(store, list_name, recipe_path, recipe_digest, targets, status, duration, jobs,
              caption="", scheduler=None):
    """Append one build's entry; returns its timestamp."""
    entry = make_entry(list_name, recipe_path, recipe_digest, targets, status, duration, jobs, caption)
    if scheduler:
        entry["scheduler"] = scheduler
    return append(store, entry)


def _user():
    # getpass.getuser() reads the same variables first; importing it (and
    # socket) costs more than the whole no-op build's own work.
    name = os.environ.get("LOGNAME") or os.environ.get("USER")
    if name:
        return name
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def append(store, entry):
    """Append `entry` to its list in one transaction; returns its timestamp."""
    def write(env, db):
        moment = datetime.now(timezone.utc)
        with env.begin(write=True, db=db) as txn:
            while True:
                entry["timestamp"] = now_timestamp(moment)
                if txn.put(_key(entry["list"], entry["timestamp"]), encode(entry), overwrite=False):
                    return entry["timestamp"]
                moment += timedelta(microseconds=1)
    return store.write_with(write, "urd")


class Log:
    """Reading the log of one store."""

    def __init__(self, store):
        self.store = store

    def lists(self):
        """{list: (entry count, latest timestamp)}."""
        result = {}
        for key, _ in self.store.items("urd"):
            name, timestamp = key.decode().split("\0")
            count, _ = result.get(name, (0, None))
            result[name] = (count + 1, timestamp)
        return result

    def entries(self, list_name, since=None):
        """The entries of a list, oldest first (from `since` on)."""
        rows = self.store.items("urd", f"{list_name}\0".encode())
        entries = [json.loads(value) for _, value in rows]
        return [e for e in entries if since is None or e["timestamp"] >= since]

    def raw(self, list_name=None):
        """The stored bytes of every entry (of one list), in key order."""
        prefix = f"{list_name}\0".encode() if list_name else b""
        return [value for _, value in self.store.items("urd", prefix)]

    def entry(self, spec):
        """One entry from `LIST/latest`, `LIST/first`, `LIST/~N` or `LIST/<timestamp prefix>`."""
        problem = entry_spec_problem(spec)
        if problem:
            raise UsageError(problem)
        list_name, which = spec.split("/", 1)
        entries = self.entries(list_name)
        if not entries:
            raise UsageError(f"urd list {list_name!r} has no entries")
        if which in ("latest", "~0"):
            return entries[-1]
        if which == "first":
            return entries[0]
        if which.startswith("~"):
            back = int(BACK_RE.match(which).group(1))
            if back >= len(entries):
                raise UsageError(f"{spec!r}: list {list_name!r} has only {len(entries)} entries")
            return entries[-1 - back]
        matches = [e for e in entries if e["timestamp"].startswith(which)]
        if len(matches) == 1 or (matches and matches[-1]["timestamp"] == which):
            return matches[-1]
        if not matches:
            raise UsageError(f"{spec!r}: no entry of list {list_name!r} has that timestamp")
        raise UsageError(f"{spec!r} matches {len(matches)} entries: "
                         + ", ".join(e["timestamp"] for e in matches[:5]))


def parse_import(lines, source):
    """[(key, value bytes)] from JSON Lines; UsageError naming the line for a bad one."""
    rows = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip(b"\n")
        if not line.strip():
            continue
        if len(line) > MAX_IMPORT_LINE_BYTES:
            raise UsageError(f"{source}:{number}: a line of {len(line):,} bytes; an entry is at most "
                             f"{MAX_IMPORT_LINE_BYTES >> 20} MiB")
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise UsageError(f"{source}:{number}: not JSON ({str(exc)[:200]})") from None
        except RecursionError:  # `[[[[...` thousands deep: no entry nests like that
            raise UsageError(f"{source}:{number}: JSON nested too deep to be an entry") from None
        problem = _entry_problem(entry)
        if problem:
            raise UsageError(f"{source}:{number}: {problem}")
        rows.append((_key(entry["list"], entry["timestamp"]), line))
    return rows


def _entry_problem(entry):
    if not isinstance(entry, dict):
        return "an entry must be a JSON object"
    missing = [k for k in FIELDS if k not in entry]
    if missing:
        return f"missing {', '.join(missing)}"
    for key, types in FIELDS.items():
        if not isinstance(entry[key], types) or isinstance(entry[key], bool):
            return f"{key} must be {' or '.join(t.__name__ for t in types)}"
    if entry["format"] != FORMAT:
        return f"format {entry['format']!r}; this exmake reads format {FORMAT}"
    if list_name_problem(entry["list"]):
        return list_name_problem(entry["list"])
    if not isinstance(entry["timestamp"], str) or not TIMESTAMP_RE.match(entry["timestamp"]):
        return f"bad timestamp {entry['timestamp']!r}"
    if entry["status"] not in STATUSES:
        return f"bad status {entry['status']!r}"
    if not all(isinstance(t, str) for t in entry["targets"]):
        return "targets must be job names"
    from exmake.fs.jobdir import JOBID_RE  # only imports need it
    for name, job in entry["jobs"].items():
        if recorded_name_problem(name):
            return f"jobs: {recorded_name_problem(name)}"
        if not isinstance(job, dict) or not isinstance(job.get("state"), str) or "jobid" not in job:
            return f"job {name!r} must be an object with a state and a jobid"
        jobid = job.get("jobid")
        if jobid is not None and not (isinstance(jobid, str) and JOBID_RE.match(jobid)
                                      and jobid.rsplit("-", 1)[0] == name
                                      and len(jobid.rsplit("-", 1)[1]) <= MAX_JOB_NUMBER_DIGITS):
            return f"job {name!r} has a bad jobid {jobid!r}"
    return None


def used_numbers(values):
    """{job name: highest N} over the `<name>-<N>` job ids of these stored entries."""
    used = {}
    for value in values:
        for name, job in json.loads(value).get("jobs", {}).items():
            jobid = job.get("jobid") if isinstance(job, dict) else None
            number = jobid.rsplit("-", 1)[1] if isinstance(jobid, str) and "-" in jobid else ""
            if number.isdigit() and number.isascii() and len(number) <= MAX_JOB_NUMBER_DIGITS:
                used[name] = max(used.get(name, 0), int(number))
    return used


def import_rows(store, rows):
    """Add imported entries in one transaction; returns (added, already present).
    An entry already present with other content is a conflict (UsageError).

    First the job-number counters pass every job id the entries name (also
    those already present: importing again repairs a half-done import), so
    that after the index is recovered no job number is handed out twice."""
    store.raise_counters(used_numbers(value for _, value in rows))

    def write(env, db):
        added = same = 0
        with env.begin(write=True, db=db) as txn:
            for key, value in rows:
                present = txn.get(key)
                if present is None:
                    txn.put(key, value)
                    added += 1
                elif present == value:
                    same += 1
                else:
                    name, timestamp = key.decode().split("\0")
                    raise UsageError(f"entry {name}/{timestamp} is already in the log with other content")
        return added, same
    return store.write_with(write, "urd")
