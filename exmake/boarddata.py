"""What the board and the HTML report show, as plain JSON-able documents.

`BoardData` reads, never writes: the recipe's job states (asked of the
rebuilder's survey, or of the no-op stamp as `exmake status` does: this
module decides no freshness itself), the build log, job directories and the
results directory. Every page of the board is one of these documents, shown
as HTML (exmake.boardpages) or as JSON.

A workdir of 10,000 jobs must show its front page in well under a second,
and a running build must not be slowed by a board polling it, so the
expensive answers are snapshots, each taken once per change of the
workdir: the survey (at most every MIN_RESURVEY_S), the build log's
entries summed up (once per change of the LMDB file), and which jobs used
which (once per change of the workdir). Requests read the snapshots; a
background thread (`BoardData.warm`) retakes them when the workdir changes.

Paths: `safe_path` is the one gate between a request and the filesystem.
Only files under the workdir (not its `.exmake/`) and the results directory
are ever named by it: `..`, absolute paths and symlinks that resolve
elsewhere give None, whatever encoding the request used (the server
decodes once, then asks here). A running job may swap a checked file or
directory for a link at any instant, so a checked path is then opened by
`open_inside`: one component at a time from its root's descriptor, never
following a link (a swap makes it fail), and the answer is made from that
descriptor only. Anything but a regular file or a directory (a FIFO, a
socket, a device) is never read.
"""

import json
import os
import stat
import threading
import time

from exmake.errors import ExmakeError, UsageError
from exmake.fs.jobdir import JOBID_RE, JobDirs, listing

MIN_RESURVEY_S = 2.0      # a build finishing a job a millisecond must not make the board survey nonstop
RESURVEY_EVERY_S = 30.0   # inputs edited outside the workdir change states too; look again this often
JOBS_PER_PAGE = 200
LOG_ENTRIES_PER_PAGE = 20
NAMES_PER_ENTRY = 50      # job names listed per state in one build-log entry; the rest are counted
TEXT_PREVIEW_BYTES = 1 << 20
LOG_TAIL_BYTES = 64 << 10  # of stdout/stderr shown on a job page
MAX_FILES_LISTED = 2000
SNIFF_BYTES = 8192
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml", ".bmp": "image/bmp", ".ico": "image/x-icon"}
LOG_FILE_PREFIXES = ("stdout", "stderr")


class BoardData:
    """The documents of one recipe's board; safe to share between request threads."""

    def __init__(self, recipe_path):
        from exmake.workspace import Workspace
        ws = Workspace.load(recipe_path, readonly=True)  # a recipe error stops the board before it serves
        self.recipe_path = ws.recipe.path
        self.workdir, self.results = ws.recipe.workdir, ws.recipe.results
        self.jobdirs = JobDirs(self.workdir)
        self.roots = [os.path.realpath(self.workdir), os.path.realpath(self.results)]
        self.meta = os.path.realpath(self.jobdirs.meta)
        self._lock = threading.Lock()
        self._states = None          # (token, taken at, document)
        self._log = None             # (token, summary)
        self._users = None           # (token, {jobid: [dependent jobids]})
        self.surveying = False       # a survey is under way (the page says "checking")

    # -- change tokens -----------------------------------------------------------

    def _mtime(self, path):
        try:
            st = os.stat(path)
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def workdir_token(self):
        """Changes when a job directory appears or goes, or -LATEST moves (entries of the workdir)."""
        return (self._mtime(self.recipe_path), self._mtime(self.workdir))

    def log_token(self):
        return self._mtime(os.path.join(self.jobdirs.meta, "lmdb", "data.mdb"))

    def version(self):
        """A short text that changes whenever anything a page shows may have changed."""
        states = self._states
        return f"{hash((self.workdir_token(), self.log_token(), tuple(self.running()))) & 0xffffffff:x}" \
               f"-{int(states[1] * 1000) if states else 0}"

    # -- job states (asked of the rebuilder) --------------------------------------

    def states(self):
        """{"error", "taken", "jobs": {name: {"state", "jobid", "reasons", "latest"}}}: the
        newest snapshot. Requests never wait for a survey (10,000 jobs take seconds);
        `refresh` retakes it, from the board's background thread."""
        with self._lock:
            held = self._states
        if held is None:
            self.refresh(force=True)
            with self._lock:
                held = self._states
        return {**held[2], "checking": self.surveying}

    def refresh(self, force=False):
        """Survey again if the workdir or recipe changed since the snapshot (at
        most every MIN_RESURVEY_S), or it is RESURVEY_EVERY_S old; and retake
        the dependents if a job page asked for them. True if it surveyed."""
        token = self.workdir_token()
        with self._lock:
            held = self._states
        now = time.monotonic()
        due = force or held is None or now - held[1] >= RESURVEY_EVERY_S or (
            held[0] != token and now - held[1] >= MIN_RESURVEY_S)
        if due:
            self.surveying = True
            try:
                document = self._survey()
            finally:
                self.surveying = False
            with self._lock:
                self._states = (token, time.monotonic(), document)
        if self._users is not None and self._users[0] != token:
            self.users(wait=True)
        return due

    def _survey(self):
        from datetime import datetime, timezone
        taken = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            jobs = self._unchanged() or self._full_survey()
        except (ExmakeError, OSError) as exc:  # the recipe edited into an error, a file that went
            return {"error": str(exc), "taken": taken, "jobs": {}}
        return {"error": None, "taken": taken, "jobs": jobs}

    def _unchanged(self):
        """Every job fresh, from the no-op stamp (what `exmake status` asks first), or None."""
        from exmake.noop import unchanged_build
        found = unchanged_build(self.recipe_path, [])
        if not found or set(found[0]["all_jobs"]) != {name for name, *_ in found[0]["jobs"]}:
            return None
        return {name: {"state": "fresh", "jobid": jobid, "reasons": [], "latest": jobid}
                for name, jobid, _, _ in found[0]["jobs"]}

    def _full_survey(self):
        from exmake.rebuilder import survey
        from exmake.workspace import Workspace
        ws = Workspace.load(self.recipe_path, readonly=True)
        try:
            outcomes = survey(ws, list(ws.recipe.jobs))
        finally:
            ws.close()
        jobs = {}
        for name, outcome in outcomes.items():
            state = outcome.state
            if state == "stale" and outcome.detail.get("never_built"):
                state = "never built"
            jobs[name] = {"state": state, "jobid": outcome.jobid,
                          "reasons": [r for r in outcome.reasons if r != "no earlier job" or state != "never built"],
                          "latest": self.jobdirs.latest(name)}
        return jobs

    def running(self):
        """{name: jobid} of jobs a live build is making now; cheap, so asked
        afresh on every request."""
        return {JOBID_RE.match(jobid).group(1): jobid for jobid in self.jobdirs.being_made()}

    # -- the build log ---------------------------------------------------------------

    def log(self):
        """{"entries": [summary, newest first], "made": {jobid: (list, timestamp) of the
        build that ran it}}."""
        token = self.log_token()
        with self._lock:
            if self._log and self._log[0] == token:
                return self._log[1]
        summary = self._read_log() if token else {"entries": [], "made": {}}
        with self._lock:
            self._log = (token, summary)
        return summary

    def _read_log(self):
        from exmake.fs.store import Store
        store = Store(os.path.join(self.jobdirs.meta, "lmdb"), readonly=True)
        try:
            values = [value for _, value in store.items("urd")]
        finally:
            store.close()
        entries, made = [], {}
        for value in values:
            entry = json.loads(value)
            entries.append(summarize_entry(entry))
            for job in entry["jobs"].values():
                if job.get("state") in ("built", "failed") and job.get("jobid"):
                    made[job["jobid"]] = (entry["list"], entry["timestamp"])
        entries.sort(key=lambda e: e["timestamp"], reverse=True)
        return {"entries": entries, "made": made}

    def entry(self, spec=None):
        """The full stored entry of a build: `LIST/ENTRY` as `exmake urd` takes it,
        or (None) the newest of any list; None when the log is empty."""
        from exmake.fs.store import Store
        from exmake.urd import Log
        path = os.path.join(self.jobdirs.meta, "lmdb")
        if not os.path.exists(os.path.join(path, "data.mdb")):
            if spec is None:
                return None
            raise UsageError(f"--entry {spec}: the build log of {self.workdir} is empty")
        if spec is None:
            newest = self.log()["entries"][:1]
            if not newest:
                return None
            spec = f"{newest[0]['list']}/{newest[0]['timestamp']}"
        store = Store(path, readonly=True)
        try:
            return Log(store).entry(spec)
        finally:
            store.close()

    # -- the front page --------------------------------------------------------------

    def front(self, page=1, state=None, log_page=1):
        states = self.states()
        running = self.running()
        names = [n for n, j in states["jobs"].items() if state is None or j["state"] == state
                 or (state == "running" and n in running)]
        pages = max(1, -(-len(names) // JOBS_PER_PAGE))
        shown = names[(page - 1) * JOBS_PER_PAGE:page * JOBS_PER_PAGE]
        counts = {}
        for job in states["jobs"].values():
            counts[job["state"]] = counts.get(job["state"], 0) + 1
        entries = self.log()["entries"]
        return {
            "recipe": self.recipe_path, "workdir": self.workdir, "results": self.results,
            "version": self.version(), "states_taken": states["taken"], "error": states["error"],
            "checking": states["checking"],
            "counts": counts, "running": running, "filter": state,
            "page": page, "pages": pages, "per_page": JOBS_PER_PAGE, "total": len(names),
            "jobs": [{"name": n, **states["jobs"][n], "running": running.get(n)} for n in shown],
            "log_page": log_page, "log_pages": max(1, -(-len(entries) // LOG_ENTRIES_PER_PAGE)),
            "log": entries[(log_page - 1) * LOG_ENTRIES_PER_PAGE:log_page * LOG_ENTRIES_PER_PAGE],
        }

    # -- one job -----------------------------------------------------------------------

    def is_job(self, jobid):
        """Whether `jobid` names a job directory of this workdir."""
        return bool(JOBID_RE.match(jobid)) and self.jobdirs.is_job_directory(jobid)

    def job(self, jobid):
        """The job page's document, or None when `jobid` is no job directory of this workdir."""
        if not self.is_job(jobid):
            return None
        name = JOBID_RE.match(jobid).group(1)
        setup, post = self.jobdirs.read_setup(jobid), self.jobdirs.read_post(jobid)
        running = post is None and self.jobdirs.is_being_made(jobid)
        now = self.states()
        made = self.log()["made"].get(jobid)
        document = {
            "jobid": jobid, "name": name, "path": self.jobdirs.path(jobid),
            "now": now["jobs"].get(name), "in_recipe": name in now["jobs"],
            "banner": "being built now" if running else banner(jobid, name, now), "running": running,
            "setup": setup, "post": post, "made_by": {"list": made[0], "timestamp": made[1]} if made else None,
            "logs": self._logs(jobid), "files": self.files(jobid),
            "deps": [{"local": local, "jobid": dep.get("jobid")} for local, dep in sorted(setup["deps"].items())],
            "dependents": self.users().get(jobid, []),
            "same_name": self._same_name(name, jobid),
        }
        # what changes while the job runs: its logs grow, then post.json appears
        sizes = [log["size"] for kind in LOG_FILE_PREFIXES for log in document["logs"][kind]]
        document["version"] = f"{post is not None}-{running}-{sizes}-{document['banner']}"
        return document

    def _logs(self, jobid):
        """{"stdout": [...], "stderr": [...]}: each non-empty log file's tail."""
        found = {kind: [] for kind in LOG_FILE_PREFIXES}
        path = self.jobdirs.path(jobid)
        for entry in listing(path):
            kind = entry.split(".", 1)[0]
            if kind in found and entry.endswith(".txt"):
                try:
                    log = tail(os.path.join(path, entry))
                except OSError:
                    continue   # a link, a FIFO, gone: not a log the board reads
                if log["size"]:
                    found[kind].append({"file": entry, **log})
        return found

    def files(self, jobid, sub=""):
        """[{"path", "kind", "size", "target"}] in the job directory (or one of its
        subdirectories), depth first, without following links."""
        base = self.jobdirs.path(jobid)
        found, stack = [], [sub]
        while stack and len(found) < MAX_FILES_LISTED:
            rel = stack.pop()
            try:
                entries = sorted(os.scandir(os.path.join(base, rel)), key=lambda e: e.name, reverse=True)
            except OSError:
                continue
            for entry in entries:
                path = f"{rel}/{entry.name}" if rel else entry.name
                try:   # a running job's files come and go between the listing and the look
                    st = entry.stat(follow_symlinks=False)
                    kind = entry_kind(st.st_mode)
                    target = os.readlink(entry.path) if kind == "link" else None
                except OSError:
                    continue
                found.append({"path": path, "kind": kind, "size": st.st_size if kind == "file" else None,
                              "target": target})
                if kind == "directory":
                    stack.append(path)
        found.sort(key=lambda f: f["path"])
        for f in found:  # a link out of the workdir is listed, not offered
            f["served"] = f["kind"] != "link" or self.safe_path(base, f["path"]) is not None
        return found[:MAX_FILES_LISTED]

    def users(self, wait=False):
        """{jobid: [the job ids whose setup.json names it as a dependency]}, for the
        whole workdir (reading every setup.json: seconds at 10,000 jobs). A request
        takes the last answer if there is one (`wait`: only an up-to-date one);
        the background thread retakes it when the workdir changed."""
        token = self.workdir_token()
        with self._lock:
            if self._users and (self._users[0] == token or not wait):
                return self._users[1]
        users = {}
        for entry in listing(self.workdir):
            if JOBID_RE.match(entry) and not os.path.islink(self.jobdirs.path(entry)):
                for dep in (self.jobdirs.read_setup(entry) or {}).get("deps", {}).values():
                    if isinstance(dep, dict) and isinstance(dep.get("jobid"), str):
                        users.setdefault(dep["jobid"], []).append(entry)
        with self._lock:
            self._users = (token, users)
        return users

    def _same_name(self, name, jobid):
        """{"older": [...], "newer": [...]} job directories of the same name, nearest first."""
        number = int(JOBID_RE.match(jobid).group(2))
        numbers = sorted(int(m.group(2)) for m in map(JOBID_RE.match, listing(self.workdir))
                         if m and m.group(1) == name and not os.path.islink(self.jobdirs.path(m.group(0))))
        return {"older": [f"{name}-{n}" for n in reversed(numbers) if n < number][:20],
                "newer": [f"{name}-{n}" for n in numbers if n > number][:20]}

    # -- files ----------------------------------------------------------------------------

    def safe_path(self, base, rel):
        """The real path of `rel` under `base`, if it exists and lies inside the
        workdir (not its .exmake/) or the results directory; else None."""
        if "\0" in rel or rel.startswith("/") or "\\" in rel:
            return None
        if any(part == ".." for part in rel.split("/")):
            return None
        try:
            real = os.path.realpath(os.path.join(base, rel))
        except OSError:   # a link that changed while it was resolved (readlink of what is no longer one)
            return None
        if not any(real == root or real.startswith(root + os.sep) for root in self.roots):
            return None
        if real == self.meta or real.startswith(self.meta + os.sep) or not os.path.exists(real):
            return None
        return real

    def open_inside(self, real):
        """A descriptor of `real` (a path `safe_path` gave), opened from its root one
        component at a time with O_NOFOLLOW: `real` has no links in it, so a link
        found now was put there after the check and the open fails (OSError).
        Non-blocking, so that a FIFO never hangs it; the caller fstats the answer."""
        root = max((r for r in self.roots if real == r or real.startswith(r + os.sep)), key=len)
        parts = [p for p in real[len(root):].split(os.sep) if p]
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for n, part in enumerate(parts):
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                if n < len(parts) - 1:
                    flags |= os.O_DIRECTORY
                inner = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        return fd

    def directory(self, fd, rel):
        """The document of a directory, from its descriptor. Entries are described
        as they are (lstat): a link is a link, never the size or kind of its target."""
        entries = []
        for name in sorted(os.listdir(fd))[:MAX_FILES_LISTED]:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue  # gone since the listing
            kind = entry_kind(st.st_mode)
            entries.append({"name": name, "kind": kind, "size": st.st_size if kind == "file" else None})
        return {"path": rel, "kind": "directory", "entries": entries}

    def file(self, fd, rel, raw_url):
        """The document of a regular file, from its descriptor (`open_inside`)."""
        size = os.fstat(fd).st_size
        kind, mime = classify_head(rel, os.pread(fd, SNIFF_BYTES, 0))
        document = {"path": rel, "kind": kind, "size": size, "mime": mime, "raw": raw_url}
        if kind in ("text", "csv"):
            data = read_at_most(fd, TEXT_PREVIEW_BYTES)
            document["text"] = data.decode("utf-8", "replace")
            document["truncated"] = size > len(data)
            if kind == "csv":
                document["rows"] = csv_rows(document["text"])
                if document["rows"] is None:   # not CSV after all (a field over the csv module's limit)
                    document["kind"] = "text"
                    del document["rows"]
        return document


def entry_kind(mode):
    """What a directory page calls an entry, from its lstat mode."""
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "directory"
    return "file" if stat.S_ISREG(mode) else "special"


def open_regular(path):
    """A descriptor of `path` if it is a regular file and no link (a log a job may swap), else OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return fd


def read_at_most(fd, limit, offset=0):
    """Up to `limit` bytes of `fd` from `offset` (pread until the end or the limit)."""
    chunks, got = [], 0
    while got < limit:
        chunk = os.pread(fd, limit - got, offset + got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def summarize_entry(entry):
    """One build-log entry as the front page lists it: counts, and some names per state."""
    by_state = {}
    for name, job in entry["jobs"].items():
        by_state.setdefault(job.get("state", "?"), []).append((name, job.get("jobid")))
    return {"list": entry["list"], "timestamp": entry["timestamp"], "status": entry["status"],
            "duration": entry["duration"], "caption": entry["caption"], "user": entry["user"],
            "host": entry["host"], "targets": entry["targets"][:NAMES_PER_ENTRY],
            "counts": {state: len(jobs) for state, jobs in by_state.items()},
            "jobs": {state: [{"name": n, "jobid": j} for n, j in sorted(jobs)[:NAMES_PER_ENTRY]]
                     for state, jobs in by_state.items()}}


def banner(jobid, name, now):
    """Why this job is not the one a build would use now (None when it is)."""
    if now["error"]:
        return f"the recipe cannot be read now: {now['error']}"
    job = now["jobs"].get(name)
    if job is None:
        return f"{name} is no longer a job of the recipe"
    if job["jobid"] == jobid and job["state"] == "fresh":
        return None
    if job["jobid"] == jobid and job["state"] == "failed":
        return f"this attempt of {name} failed; a build would run it again"
    if job["state"] == "fresh":
        return f"not the current job of {name}: that is {job['jobid']}"
    why = "; ".join(job["reasons"]) or job["state"]
    return f"not the current job: {name} is {job['state']} now ({why})"


def tail(path, limit=LOG_TAIL_BYTES):
    """{"text", "truncated"}: the last `limit` bytes of a log, from a line start
    (a log swapped for a link or a FIFO: OSError)."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        data = read_at_most(fd, limit, max(0, size - limit))
    finally:
        os.close(fd)
    if size > limit and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return {"text": data.decode("utf-8", "replace"), "truncated": size > limit, "size": size}


def classify_head(name, head):
    """(kind, MIME type): image, csv, text or binary, by extension and the first bytes."""
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_TYPES:
        return "image", IMAGE_TYPES[ext]
    if b"\0" in head:
        return "binary", "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4 or len(head) < SNIFF_BYTES:  # not merely a character cut by the sniff
            return "binary", "application/octet-stream"
    if ext in (".csv", ".tsv"):
        return "csv", "text/plain"
    return "text", "text/plain"


MAX_CSV_ROWS = 500


def csv_rows(text):
    import csv
    import io
    dialect = "excel-tab" if text[:SNIFF_BYTES].count("\t") > text[:SNIFF_BYTES].count(",") else "excel"
    rows = []
    try:
        for row in csv.reader(io.StringIO(text), dialect):
            rows.append(row)
            if len(rows) >= MAX_CSV_ROWS:
                break
    except csv.Error:
        return None   # e.g. a field over csv.field_size_limit(): shown as text instead
    return rows
