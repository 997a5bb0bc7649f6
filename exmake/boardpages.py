"""The board's pages as HTML, one function per page, from the documents of
exmake.boarddata (the same documents the board serves as JSON).

Pure: plain data in, HTML out, all of it escaped by exmake.boardhtml. The
front page's little script polls the page as JSON and, when its `version`
changed, fetches the page again and swaps the parts marked `data-live`:
states update while a build runs, and no job text is ever put into the page
except as the server escaped it (the new HTML is parsed by DOMParser, which
runs no script).
"""

import json
from urllib.parse import urlencode

from exmake.boardhtml import (ansi_html, bar_chart, esc, human_bytes, layered_graph, link, page, pre,
                              quote_path, seconds, state_span, table)

POLL_INTERVAL_MS = 2000
STAGE_ORDER = ["prepare", "analysis", "synthesis"]   # a job script's stages, in the order they run

LIVE_SCRIPT = """
(function(){
  var version = %s;
  function swap(html){
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live]").forEach(function(old){
      var fresh = doc.getElementById(old.id);
      if (fresh) old.replaceWith(document.importNode(fresh, true));
    });
  }
  function poll(){
    fetch(location.href, {headers: {"Accept": "application/json"}, cache: "no-store"})
      .then(function(r){ return r.json(); })
      .then(function(doc){
        if (doc.version === version) return;
        version = doc.version;
        return fetch(location.href, {headers: {"Accept": "text/html"}, cache: "no-store"})
          .then(function(r){ return r.text(); }).then(swap);
      })
      .catch(function(){})
      .then(function(){ setTimeout(poll, %d); });
  }
  setTimeout(poll, %d);
})();
"""


def job_href(jobid):
    return f"/job/{quote_path(jobid, safe='@,+')}"


def file_href(jobid, rel):
    return f"{job_href(jobid)}/file/{quote_path(rel)}"


def results_href(rel):
    return f"/results/{quote_path(rel)}"


def _query(**params):
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, 1, "")}) if any(
        v not in (None, 1, "") for v in params.values()) else "/"


# -- the front page ----------------------------------------------------------------

def front_page(doc, nonce):
    body = [f"<h1>{esc(doc['recipe'])}</h1>",
            f'<p>workdir {esc(doc["workdir"])} · {link("/results/", "results")}</p>',
            _summary(doc), _log(doc), _jobs(doc)]
    script = LIVE_SCRIPT % (json.dumps(doc["version"]), POLL_INTERVAL_MS, POLL_INTERVAL_MS)
    return page("exmake board", "".join(body), nonce, script, where=doc["workdir"])


def _summary(doc):
    counts = " · ".join(
        f'<a href="{esc(_query(state=state))}">{state_span(state, f"{n:,} {state}")}</a>'
        for state, n in sorted(doc["counts"].items()))
    running = ""
    if doc["running"]:
        running = "<p>running now: " + ", ".join(
            state_span("running", jobid) for _, jobid in sorted(doc["running"].items())) + "</p>"
    error = f'<div class="banner bad">{esc(doc["error"])}</div>' if doc["error"] else ""
    checking = " (checking for changes…)" if doc["checking"] else ""
    return (f'<section id="summary" data-live>{error}<p>{counts or "no jobs"} · <a href="/">all</a> · '
            f'states as of {esc(doc["states_taken"])}{checking}</p>{running}</section>')


def _log(doc):
    rows = []
    for entry in doc["log"]:
        counts = ", ".join(f"{n:,} {state}" for state, n in sorted(entry["counts"].items()))
        details = "".join(
            f"<div>{state_span(state)}: " + ", ".join(
                link(job_href(j["jobid"]), j["name"]) if j["jobid"] else esc(j["name"]) for j in jobs)
            + (f" and {entry['counts'][state] - len(jobs):,} more" if entry["counts"][state] > len(jobs) else "")
            + "</div>" for state, jobs in sorted(entry["jobs"].items()))
        rows.append([esc(entry["timestamp"]), esc(entry["list"]), state_span(entry["status"]),
                     esc(seconds(entry["duration"])),
                     f"<details><summary>{esc(counts) or 'no jobs'}</summary>{details}</details>",
                     esc(entry["caption"])])
    pager = _pager(doc["log_page"], doc["log_pages"], "log_page", doc)
    shown = table(["when (UTC)", "list", "status", "took", "jobs", "caption"], rows, 'id="log-table"') \
        if rows else "<p>no build recorded yet</p>"
    return f'<section id="log" data-live><h2>Build log</h2>{shown}{pager}</section>'


def _jobs(doc):
    rows = []
    for job in doc["jobs"]:
        state = "running" if job["running"] else job["state"]
        shown = job["jobid"] or job["latest"]
        jobid = link(job_href(shown), shown) if shown else ""
        if shown and shown != job["jobid"]:
            jobid += ' <span class="dim">(last built)</span>'
        if job["running"]:  # jobs run in place: its page shows it while it runs
            jobid = f'{link(job_href(job["running"]), job["running"])} <span class="dim">(being built)</span>'
        # while it runs, why the last survey found it stale is old news
        why = "running now" if job["running"] else "; ".join(job["reasons"])
        rows.append([esc(job["name"]), state_span(state), jobid, f'<span class="reasons">{esc(why)}</span>'])
    title = f"Jobs ({doc['total']:,}{', ' + doc['filter'] if doc['filter'] else ''})"
    pager = _pager(doc["page"], doc["pages"], "page", doc)
    return (f'<section id="jobs" data-live><h2>{esc(title)}</h2>'
            f'{table(["job", "state", "job directory", "why"], rows, "id=jobs-table")}{pager}</section>')


def _pager(current, pages, key, doc):
    if pages <= 1:
        return ""
    keep = {"state": doc["filter"], "page": doc["page"], "log_page": doc["log_page"]}

    def href(n):
        return _query(**{**keep, key: n})
    near = sorted({1, pages, *range(max(1, current - 3), min(pages, current + 3) + 1)})
    parts = [f"<span>{n}</span>" if n == current else link(href(n), str(n)) for n in near]
    return f'<p class="pager">page {" ".join(parts)} of {pages}</p>'


# -- a job ----------------------------------------------------------------------------

def job_page(doc, nonce):
    setup, post = doc["setup"], doc["post"]
    body = [f"<h1>{esc(doc['jobid'])}</h1>"]
    if doc["banner"]:
        failed = (doc["post"] or {}).get("result") == "FAILURE"
        body.append(f'<div class="banner{" bad" if failed else ""}" id="banner">{esc(doc["banner"])}</div>')
    result = post["result"] if post else ("running" if doc["running"] else "unfinished")
    body.append(f"<p>{state_span(result)} · {esc(doc['path'])}" + (
        f" · made by build {esc(doc['made_by']['list'])}/{esc(doc['made_by']['timestamp'])}"
        if doc["made_by"] else "") + "</p>")
    body += [_failure(post), _setup(setup), _timings(post), _usage(post), _logs(doc), _files(doc),
             _graph(doc), _same_name(doc)]
    # A running job's page follows it (its output, then its result); a finished one never changes.
    script = LIVE_SCRIPT % (json.dumps(doc["version"]), POLL_INTERVAL_MS, POLL_INTERVAL_MS) if doc["running"] else ""
    return page(doc["jobid"], f'<div id="job" data-live>{"".join(body)}</div>', nonce, script, where=doc["path"])


def _failure(post):
    if not post or post["result"] == "SUCCESS":
        return ""
    parts = ["<h2>Failure</h2>", f"<p>{esc(post.get('reason') or '')}</p>"]
    if post.get("exception"):
        parts.append(f"<p>exception: <code>{esc(post['exception'])}</code></p>")
    if post.get("traceback"):
        parts.append(pre(post["traceback"]))
    return "".join(parts)


def _setup(setup):
    step = setup["step"]
    rows = [["key", f"<code>{esc(setup['key'])}</code>"], ["created", esc(setup.get("created", ""))]]
    if step.get("method"):
        rows.append(["job script", esc(step["method"])])
    if setup.get("command"):
        commands = setup["command"] if isinstance(setup["command"], list) else [setup["command"]]
        rows += [["command" if len(commands) == 1 else f"slice {n}", f"<code>{esc(c)}</code>"]
                 for n, c in enumerate(commands)]
    if step.get("run"):
        rows.append(["template", f"<code>{esc(step['run'])}</code>"])
    rows += [[f"option {esc(k)}", f"<code>{esc(json.dumps(v))}</code>"] for k, v in sorted(step.get("options", {}).items())]
    rows += [[f"env {esc(k)}", f"<code>{esc(v)}</code>"] for k, v in sorted(step.get("env", {}).items())]
    for local, files in sorted(setup.get("inputs", {}).items()):
        rows += [[f"input {esc(local)}", f"{esc(rel)} <span class=dim>{esc(digest[:22])}</span>"]
                 for rel, digest in files]
    return "<h2>Setup</h2>" + table(["", ""], rows)


def _timings(post):
    if not post:
        return ""
    timings = post.get("timings") if isinstance(post.get("timings"), dict) else {}
    stages = sorted((stage for stage, value in timings.items() if isinstance(value, (int, float))),
                    key=lambda stage: (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage))
    rows = [(stage, timings[stage], "stage") for stage in stages]
    usage = post.get("usage") if isinstance(post.get("usage"), dict) else {}
    slices = timings.get("slices") or [s.get("wall_s") for s in usage.get("slices") or [] if isinstance(s, dict)]
    slices = slices if isinstance(slices, list) else []
    rows += [(f"slice {n}", value, "slice") for n, value in enumerate(slices) if isinstance(value, (int, float))]
    duration = post.get("duration")
    rows.append(("whole job", duration if isinstance(duration, (int, float)) and duration >= 0 else 0, "ok" if post["result"] == "SUCCESS" else "bad"))
    return f"<h2>Timings</h2><p>{esc(post.get('start'))} to {esc(post.get('end'))}</p>" + bar_chart(rows)


def _usage(post):
    usage = (post or {}).get("usage")
    if not usage or not isinstance(usage, dict):
        return ""   # post.json passed check_post; what it says of usage is shown only as far as it makes sense

    def row(label, u):
        return [esc(label), esc(human_bytes(u.get("peak_rss_bytes") or 0)), esc(seconds(u.get("user_s"))),
                esc(seconds(u.get("system_s"))), esc(seconds(u.get("wall_s")))]
    cores = usage.get("cores", 1)
    rows = [row(f"job ({cores} core{'' if cores == 1 else 's'})", usage)]
    slices = usage.get("slices")
    rows += [row(f"slice {n}", u) for n, u in enumerate(slices if isinstance(slices, list) else [])
             if isinstance(u, dict)]
    limit = f"<p>memory limit {esc(usage['mem_limit_mib'])} MiB, by {esc(usage.get('limited_by'))}</p>" \
        if usage.get("mem_limit_mib") else ""
    return "<h2>Resources used</h2>" + table(["", "peak memory", "user CPU", "system CPU", "wall"], rows) + limit


def _logs(doc):
    parts = ["<h2>Output</h2>"]
    for kind in ("stdout", "stderr"):
        for log in doc["logs"][kind]:
            more = " (last part; " + link(file_href(doc["jobid"], log["file"]), "the whole file") + ")" \
                if log["truncated"] else ""
            parts.append(f'<h3 class="mono">{esc(log["file"])} · {esc(human_bytes(log["size"]))}{more}</h3>'
                         f'<pre class="log" id="log-{esc(log["file"])}">{ansi_html(log["text"])}</pre>')
    if len(parts) == 1:
        parts.append('<p class="dim">no output</p>')
    return "".join(parts)


def _files(doc):
    rows = []
    outputs = {rel for rel, _ in (doc["post"] or {}).get("outputs", [])}
    for f in doc["files"]:
        what = link(file_href(doc["jobid"], f["path"]), f["path"]) if f["served"] else esc(f["path"])
        if f["kind"] == "link":
            what += f' <span class="dim">→ {esc(f["target"])}{"" if f["served"] else " (outside: not served)"}</span>'
        rows.append([what, esc(f["kind"]), esc(human_bytes(f["size"])) if f["size"] is not None else "",
                     "output" if f["path"] in outputs else ""])
    return "<h2>Files</h2>" + table(["path", "kind", "size", ""], rows, 'id="files"')


def _graph(doc):
    deps = [(d["jobid"], f"{d['local']}: {d['jobid']}", job_href(d["jobid"]) if d["jobid"] else None, "ok")
            for d in doc["deps"]]
    users = [(u, u, job_href(u), "ok") for u in doc["dependents"]]
    here = [(doc["jobid"], doc["jobid"], None, "here")]
    edges = [(d[0], doc["jobid"]) for d in deps] + [(doc["jobid"], u[0]) for u in users]
    layers = [layer for layer in (deps, here, users) if layer]
    return ("<h2>Dependencies and dependents</h2>"
            f"<p>{len(deps)} dependencies (left), {len(users)} jobs that used this one (right)</p>"
            + layered_graph(layers, edges))


def _same_name(doc):
    same = doc["same_name"]
    if not same["older"] and not same["newer"]:
        return f"<h2>Other {esc(doc['name'])} jobs</h2><p>none</p>"
    return (f"<h2>Other {esc(doc['name'])} jobs</h2>"
            f"<p>newer: {', '.join(link(job_href(j), j) for j in same['newer']) or 'none'}</p>"
            f"<p>older: {', '.join(link(job_href(j), j) for j in same['older']) or 'none'}</p>")


# -- files and results ---------------------------------------------------------------

def file_page(doc, nonce, title, up, crumbs_base):
    """A file or directory of a job or of the results: `up` = (href, text)."""
    body = [f"<p>{link(*up)}</p>", f"<h1>{esc(title)}</h1>"]
    if doc["kind"] == "directory":
        rows = [[link(f"{crumbs_base}/{quote_path(e['name'])}", e["name"] + ("/" if e["kind"] == "directory" else "")),
                 esc(e["kind"]), esc(human_bytes(e["size"])) if e["size"] is not None else ""]
                for e in doc["entries"]]
        body.append(table(["name", "kind", "size"], rows, 'id="entries"'))
        return page(title, "".join(body), nonce)
    body.append(f"<p>{esc(human_bytes(doc['size']))} · {link(doc['raw'], 'download')}</p>")
    if doc["kind"] == "image":
        body.append(f'<img class="preview" alt="{esc(doc["path"])}" src="{esc(doc["raw"])}">')
    elif doc["kind"] == "csv":
        rows = doc["rows"]
        body.append(table(rows[0] if rows else [], [[esc(c) for c in r] for r in rows[1:]], 'id="csv"'))
    elif doc["kind"] == "text":
        body.append(f'<pre id="text">{ansi_html(doc["text"])}</pre>')
    if doc.get("truncated"):
        body.append(f"<p>only the first part is shown; {link(doc['raw'], 'download the whole file')}</p>")
    return page(title, "".join(body), nonce)


def error_page(status, message, nonce):
    return page(f"{status}", f"<h1>{esc(status)}</h1><p>{esc(message)}</p><p>{link('/', 'the board')}</p>", nonce)
