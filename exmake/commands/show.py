"""Print what made a job or a file: command, code, options, env, inputs, dependencies, the build.

JOB is NAME (its current fresh job or, if its latest attempt failed, that
attempt), NAME-N, or NAME-LATEST. PATH is a published result or any file
in a job directory (a path holds a `/`, or is no job of the recipe): show
then also prints the file's own hash beside the one its job recorded.
For each job: its id, its command as it ran (and the template it came
from) or its job script with the code digest, options, env, inputs with
their content hashes, the job ids of its dependencies (`--tree`: theirs
too, all the way down), the build-log entry of the build that made it, and
its result and outputs.
"""

import os

from exmake import jobref
from exmake.commands import open_workspace, print_json
from exmake.fs.hashing import hash_file
from exmake.rebuilder import current_job
from exmake.report import show_path


def add_arguments(parser):
    parser.add_argument("job", metavar="JOB|PATH", help="NAME, NAME-N, NAME-LATEST, or a file a job made")
    parser.add_argument("--tree", action="store_true", help="also the dependencies of dependencies, all the way down")
    parser.add_argument("--json", action="store_true", help="print all of it as one JSON document")


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        found = None
        if jobref.is_path(ws, args.job):
            jobid, inside = jobref.from_path(ws, args.job)
            found = _file(ws, args.job, jobid, inside)
        else:
            jobid = jobref.resolve(ws, args.job, lambda ws, name: current_job(ws, name, failed_ok=True))
        document = {**_job(ws, jobid), "file": found}
        if args.tree:
            document["tree"] = _tree(ws, jobid)
    finally:
        ws.close()
    if args.json:
        print_json(document)
    else:
        _print(document)
    return 0


def _job(ws, jobid):
    """{jobid, path, setup, post, log}: one job and the build-log entry that made it."""
    entry = jobref.made_by(ws, jobid)
    log = {k: entry[k] for k in ("list", "timestamp", "user", "host", "recipe", "caption")} if entry else None
    return {"jobid": jobid, "path": ws.jobdirs.path(jobid), "setup": ws.jobdirs.read_setup(jobid),
            "post": ws.jobdirs.read_post(jobid), "log": log}


def _file(ws, given, jobid, inside):
    """The file's hash now and as its job recorded it (None for the job directory itself)."""
    if inside is None:
        return None
    path = os.path.join(ws.jobdirs.path(jobid), inside)
    recorded = dict(map(tuple, (ws.jobdirs.read_post(jobid) or {}).get("outputs", []))).get(inside)
    digest = hash_file(path) if os.path.isfile(path) else None
    return {"given": given, "path": path, "in_job": inside, "digest": digest, "recorded": recorded}


def _tree(ws, jobid, seen=None):
    """{local: {"jobid", "deps": {...}}} of a job's dependencies, recursively."""
    seen = set() if seen is None else seen
    tree = {}
    for local, dep in sorted(((ws.jobdirs.read_setup(jobid) or {}).get("deps") or {}).items()):
        dep_id = dep.get("jobid")
        below = {} if dep_id in seen else _tree(ws, dep_id, seen | {dep_id})
        tree[local] = {"jobid": dep_id, "deps": below}
    return tree


def _print(doc):
    found, setup, post, path = doc["file"], doc["setup"], doc["post"], doc["path"]
    if found:
        print(f"file     {show_path(found['given'])}  ({found['in_job']} of {doc['jobid']})")
        state = "as recorded" if found["digest"] == found["recorded"] else \
            "not an output of the job" if found["recorded"] is None else \
            f"CHANGED since the job made it ({found['recorded'][:22]} recorded)"
        print(f"hash     {found['digest']}  {state}")
    print(f"job      {doc['jobid']}")
    print(f"path     {show_path(path)}")
    if setup:
        _print_setup(setup, flat_deps="tree" not in doc)
    for local, sub in (doc.get("tree") or {}).items():
        _print_tree(local, sub, 1)
    log = doc["log"]
    if log:
        caption = f"  {log['caption']!r}" if log["caption"] else ""
        print(f"made by  build {log['list']}/{log['timestamp']}  {log['user']}@{log['host']}  "
              f"{show_path(log['recipe'])}{caption}")
    if post is None:
        print("result   (unfinished: no post.json)")
        return
    print(f"result   {post['result']}  {post.get('duration', 0):.3f}s  {post.get('start')}")
    if post["result"] != "SUCCESS":
        print(f"reason   {post.get('reason')}")
        if post.get("traceback"):
            print(post["traceback"].rstrip())
        for line in post.get("stderr_tail", []):
            print(f"  | {line}")
        print(f"log      {show_path(os.path.join(path, 'stderr.txt'))}")
    for line in usage_lines(post.get("usage")):
        print(line)
    for rel, digest in post.get("outputs", []):
        print(f"output   {rel}  {digest[:22]}")


def _print_setup(setup, flat_deps):
    step = setup["step"]
    print(f"key      {setup.get('key')}")
    if step.get("method"):
        print(f"script   {step['method']}")
        for what, digest in sorted((step.get("code") or {}).items()):
            print(f"code     {what}  {digest[:22]}")
    else:
        command = setup.get("command")
        for n, text in enumerate(command if isinstance(command, list) else [command] if command else []):
            print(f"command  {'' if not isinstance(command, list) else f'slice {n}: '}{text}")
        print(f"template {step.get('run')}")
    for name, value in sorted(step.get("options", {}).items()):
        print(f"option   {name} = {value!r}")
    for name, value in sorted(step.get("env", {}).items()):
        print(f"env      {name}={value}")
    for local, files in sorted(setup.get("inputs", {}).items()):
        for rel, digest in files:
            print(f"input    {local}: {rel}  {digest[:22]}")
    if flat_deps:
        for local, dep in sorted(setup.get("deps", {}).items()):
            print(f"dep      {local}: {dep.get('jobid')}")


def _print_tree(local, sub, depth):
    print(f"dep      {'  ' * (depth - 1)}{local}: {sub['jobid']}")
    for below, node in sub["deps"].items():
        _print_tree(below, node, depth + 1)


def usage_lines(usage):
    """What the job used, a line for it and one per slice."""
    if not usage:
        return []
    from exmake.resources import format_bytes

    def text(u):
        cpu = "" if u.get("user_s") is None else f"  cpu user {u['user_s']:.2f}s system {u['system_s']:.2f}s"
        return f"peak {format_bytes(u['peak_rss_bytes'])}{cpu}  wall {u['wall_s']:.2f}s"
    limit = ""
    if usage.get("mem_limit_mib"):
        limit = f"  (mem limit {usage['mem_limit_mib']}M, by {usage.get('limited_by')})"
    lines = [f"used     {text(usage)}  cores {usage.get('cores', 1)}{limit}"]
    lines += [f"  slice {n:<3} {text(u)}" for n, u in enumerate(usage.get("slices", []))]
    return lines
