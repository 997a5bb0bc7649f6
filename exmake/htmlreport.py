"""`exmake report`: one self-contained HTML file about one build.

For a CI artifact or an e-mail: the newest build of the build log (or the
entry `--entry LIST/ENTRY` names), its jobs with states and reasons, a
timeline of when each job and slice ran, what the jobs used, failures with
their stderr tails, and the published results with previews. CSS, script
and SVG are inline and images are data: URIs; the page's Content Security
Policy forbids fetching anything, so the file shows the same offline.

Reasons are worded by exmake.rebuild.explain, the comparison the rebuilder
itself uses: a built job against the setup of the job of the same name
before it. Nothing here decides freshness; the states are the build log's.
"""

import base64
import os
import stat
from datetime import datetime

from exmake.boarddata import SNIFF_BYTES, BoardData, MAX_CSV_ROWS, classify_head, csv_rows, read_at_most
from exmake.boardhtml import (ansi_html, bar_chart, esc, human_bytes, new_nonce, page, seconds, state_span,
                              table, timeline)
from exmake.errors import UsageError
from exmake.fs.jobdir import JOBID_RE, listing

MAX_TIMELINE_ROWS = 1000       # a 10,000-job build's timeline shows its first 1,000 jobs
MAX_JOB_ROWS = 5000
TOP_USERS = 10
PREVIEW_LINES = 40
MAX_IMAGE_BYTES = 2 << 20      # bigger images are named, not embedded
MAX_RESULTS = 200


def report_document(recipe_path, spec=None):
    """Everything the report shows, as plain data."""
    data = BoardData(recipe_path)
    try:
        entry = data.entry(spec)
    except UsageError as exc:
        raise UsageError(str(exc) if str(exc).startswith("--entry") else f"--entry {spec}: {exc}") from None
    if entry is None:
        raise UsageError(f"no build recorded in {data.workdir} yet: run exmake first")
    jobs = []
    for name, job in sorted(entry["jobs"].items()):
        jobid = job.get("jobid")
        post = data.jobdirs.read_post(jobid) if jobid and JOBID_RE.match(jobid) else None
        setup = data.jobdirs.read_setup(jobid) if jobid and JOBID_RE.match(jobid) else None
        jobs.append({"name": name, "state": job["state"], "jobid": jobid,
                     "reasons": reasons(data, job["state"], jobid, setup, post),
                     "start": (post or {}).get("start"), "end": (post or {}).get("end"),
                     "timings": (post or {}).get("timings"), "usage": (post or {}).get("usage"),
                     "failure": failure(post) if job["state"] == "failed" else None})
    return {"entry": {k: entry[k] for k in ("list", "timestamp", "status", "duration", "user", "host",
                                             "recipe", "targets", "caption")},
            "workdir": data.workdir, "jobs": jobs, "results": results(data)}


def reasons(data, state, jobid, setup, post):
    if state == "reused":
        return [f"same code, options and inputs as {jobid}"]
    if state == "skipped":
        return ["a dependency failed"]
    if state == "failed" and post:
        return [post.get("reason") or "failed"]
    if state == "built" and setup:
        from exmake.rebuild import explain
        return explain(_previous_setup(data, jobid), setup)
    return []


def _previous_setup(data, jobid):
    """The setup of the nearest older job directory of the same name, or None."""
    name, number = JOBID_RE.match(jobid).groups()
    older = sorted((int(m.group(2)) for m in map(JOBID_RE.match, listing(data.workdir))
                    if m and m.group(1) == name and int(m.group(2)) < int(number)), reverse=True)
    for n in older:
        setup = data.jobdirs.read_setup(f"{name}-{n}")
        if setup:
            return setup
    return None


def failure(post):
    if not post:
        return {"reason": "no post.json: the job did not finish", "traceback": None, "stderr_tail": []}
    return {"reason": post.get("reason"), "exception": post.get("exception"), "traceback": post.get("traceback"),
            "stderr_tail": post.get("stderr_tail", [])}


def results(data):
    """[{"path", "target", "kind", "size", "preview"...}] of the results directory's files."""
    found = []
    root = data.results
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            real = data.safe_path(root, rel)
            if real is None:
                continue
            item = preview(data, real, rel, os.path.relpath(real, os.path.dirname(data.workdir)))
            if item is not None:
                found.append(item)
            if len(found) >= MAX_RESULTS:
                return found
    return found


def preview(data, real, rel, shown_target):
    """The result's entry with its preview, read from one descriptor opened as the
    board opens files (no link followed after the check); None for anything but a
    regular file (a FIFO would hang the report) or one that cannot be read."""
    try:
        fd = data.open_inside(real)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        kind, mime = classify_head(real, os.pread(fd, SNIFF_BYTES, 0))
        item = {"path": rel, "target": shown_target, "kind": kind, "size": st.st_size}
        if kind == "image" and st.st_size <= MAX_IMAGE_BYTES and mime != "image/svg+xml":
            item["data_uri"] = f"data:{mime};base64,{base64.b64encode(read_at_most(fd, MAX_IMAGE_BYTES)).decode()}"
        elif kind in ("text", "csv"):
            text = read_at_most(fd, 64 << 10).decode("utf-8", "replace")
            lines = text.splitlines()
            item["text"] = "\n".join(lines[:PREVIEW_LINES])
            item["more_lines"] = len(lines) > PREVIEW_LINES
            rows = csv_rows(text) if kind == "csv" else None
            if rows is None:
                item["kind"] = "text"   # not CSV after all (a field over the csv module's limit)
            else:
                item["rows"] = rows[:min(PREVIEW_LINES, MAX_CSV_ROWS)]
        return item
    except OSError:
        return None
    finally:
        os.close(fd)


# -- HTML ---------------------------------------------------------------------------------------

def render(doc):
    nonce = new_nonce()
    entry = doc["entry"]
    title = f"exmake build {entry['list']}/{entry['timestamp']}"
    body = [f"<h1>{esc(title)}</h1>",
            f"<p>{state_span(entry['status'])} · {esc(seconds(entry['duration']))} · "
            f"{esc(entry['user'])}@{esc(entry['host'])} · {esc(entry['recipe'])}"
            + (f" · “{esc(entry['caption'])}”" if entry["caption"] else "") + "</p>",
            _counts(doc), _failures(doc), _timeline(doc), _usage(doc), _jobs(doc), _results(doc)]
    return page(title, "".join(body), nonce, where=doc["workdir"], home=None)


def _counts(doc):
    counts = {}
    for job in doc["jobs"]:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    return "<p>" + " · ".join(state_span(s, f"{n:,} {s}") for s, n in sorted(counts.items())) + "</p>"


def _failures(doc):
    failed = [j for j in doc["jobs"] if j["failure"]]
    if not failed:
        return ""
    parts = ["<h2>Failures</h2>"]
    for job in failed:
        f = job["failure"]
        parts.append(f'<h3 class="bad">{esc(job["name"])} ({esc(job["jobid"] or "")})</h3><p>{esc(f["reason"] or "")}</p>')
        if f.get("traceback"):
            parts.append(f"<pre>{esc(f['traceback'])}</pre>")
        if f["stderr_tail"]:
            parts.append("<p>the end of its stderr:</p><pre class=\"stderr\">"
                         + ansi_html("\n".join(f["stderr_tail"])) + "</pre>")
    return "".join(parts)


def _when(text):
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def _timeline(doc):
    ran = [j for j in doc["jobs"] if j["state"] in ("built", "failed") and _when(j["start"]) and _when(j["end"])]
    if not ran:
        return "<h2>Timeline</h2><p>no job ran in this build (everything was reused)</p>"
    ran.sort(key=lambda j: _when(j["start"]))
    zero = _when(ran[0]["start"])
    rows = []
    for job in ran[:MAX_TIMELINE_ROWS]:
        start, end = _when(job["start"]) - zero, _when(job["end"]) - zero
        timings = job["timings"] or {}
        offset = start + (timings.get("prepare") or 0)
        slices = [(offset, offset + s) for s in timings.get("slices") or [] if isinstance(s, (int, float))]
        rows.append((job["name"], start, end, "ok" if job["state"] == "built" else "bad", None, slices))
    more = f"<p>the first {MAX_TIMELINE_ROWS:,} of {len(ran):,} jobs</p>" if len(ran) > MAX_TIMELINE_ROWS else ""
    return ("<h2>Timeline</h2><p>each job from its start to its end; thin bars under a job: its slices</p>"
            + timeline(rows) + more)


def _usage(doc):
    used = [j for j in doc["jobs"] if j["usage"] and j["state"] in ("built", "failed")]
    if not used:
        return ""
    cpu = sum((j["usage"].get("user_s") or 0) + (j["usage"].get("system_s") or 0) for j in used)
    slowest = sorted(used, key=lambda j: -(j["usage"].get("wall_s") or 0))[:TOP_USERS]
    biggest = sorted(used, key=lambda j: -(j["usage"].get("peak_rss_bytes") or 0))[:TOP_USERS]
    return ("<h2>Resources used</h2>"
            f"<p>{len(used):,} jobs ran; {esc(seconds(cpu))} of CPU in all</p>"
            "<h3>slowest (wall time)</h3>"
            + bar_chart([(j["name"], j["usage"].get("wall_s") or 0, "stage") for j in slowest])
            + "<h3>biggest (peak memory)</h3>"
            + bar_chart([(j["name"], j["usage"].get("peak_rss_bytes") or 0, "slice") for j in biggest],
                        unit=human_bytes))


def _jobs(doc):
    rows = [[esc(j["name"]), state_span(j["state"]), esc(j["jobid"] or ""),
             f'<span class="reasons">{esc("; ".join(j["reasons"]))}</span>'] for j in doc["jobs"][:MAX_JOB_ROWS]]
    more = f"<p>the first {MAX_JOB_ROWS:,} of {len(doc['jobs']):,}</p>" if len(doc["jobs"]) > MAX_JOB_ROWS else ""
    return f"<h2>Jobs ({len(doc['jobs']):,})</h2>" + table(["job", "state", "job directory", "why"], rows,
                                                         'id="jobs-table"') + more


def _results(doc):
    if not doc["results"]:
        return "<h2>Results</h2><p>nothing published</p>"
    parts = ["<h2>Results</h2>"]
    for item in doc["results"]:
        parts.append(f'<h3 class="mono">{esc(item["path"])} <span class="dim">→ {esc(item["target"])} · '
                     f'{esc(human_bytes(item["size"]))}</span></h3>')
        if item.get("data_uri"):
            parts.append(f'<img class="preview" alt="{esc(item["path"])}" src="{esc(item["data_uri"])}">')
        elif item.get("rows"):
            rows = item["rows"]
            parts.append(table(rows[0], [[esc(c) for c in r] for r in rows[1:]]))
        elif "text" in item:
            parts.append(f"<pre>{esc(item['text'])}</pre>" + ("<p class=dim>…</p>" if item["more_lines"] else ""))
    return "".join(parts)
