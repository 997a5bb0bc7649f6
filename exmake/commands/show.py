"""Print what made a job or a file: command, code, options, env, inputs, dependencies, the build.

JOB is NAME (its current fresh job or, if its latest attempt failed, that
attempt), NAME-N, or NAME-LATEST. PATH is a published result or any file
in a job directory (a path holds a `/`, or is no job of the recipe): show
then also prints the file's own hash beside the one its job recorded, and
says "as recorded" only for one of the job's recorded outputs whose hash is
the recorded one; anything else in the directory (a directory, a FIFO,
exmake's own records, a file the job did not record) is named for what it
is, and a FIFO or device is never opened.
For each job: its id, its command as it ran (and the template it came
from) or its job script with the code digest, options, env, inputs with
their content hashes, the job ids of its dependencies (`--tree`: theirs
too, all the way down), the build-log entry of the build that made it, and
its result and outputs.
"""

import os
import stat

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


KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
         (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))
RECORDS = ("setup.json", "post.json")


def _file(ws, given, jobid, inside):
    """The file's kind and hash now, and the hash its job recorded (None for
    the job directory itself). `state`: "as recorded" (a recorded output, the
    same bytes), "changed" (a recorded output, other bytes or no longer a
    file), "record" (setup.json, post.json) or "not an output"."""
    if inside is None:
        return None
    path = os.path.join(ws.jobdirs.path(jobid), inside)
    recorded = dict(map(tuple, (ws.jobdirs.read_post(jobid) or {}).get("outputs", []))).get(inside)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    kind = next((name for test, name in KINDS if test(mode)), "something else")
    digest = hash_file(path) if kind == "file" else None  # never open a FIFO or a device
    if recorded is not None:
        state = "as recorded" if digest == recorded else "changed"
    else:
        state = "record" if inside in RECORDS else "not an output"
    return {"given": given, "path": path, "in_job": inside, "kind": kind, "digest": digest,
            "recorded": recorded, "state": state}


def _tree(ws, jobid, seen=None):
    """{local: {"jobid", "deps": {...}}} of a job's dependencies, recursively."""
    seen = set() if seen is None else seen
    tree = {}
    for local, dep in sorted(((ws.jobdirs.read_setup(jobid) or {}).get("deps") or {}).items()):
        dep_id = dep.get("jobid")
        if dep.get("workdir"):  # a job of another workdir (`reuse_from:`): not this one's to read
            tree[local] = {"jobid": f"{dep_id} in {dep['workdir']}", "deps": {}}
            continue
        below = {} if dep_id in seen else _tree(ws, dep_id, seen | {dep_id})
        tree[local] = {"jobid": dep_id, "deps": below}
    return tree


def _print(doc):
    found, setup, post, path = doc["file"], doc["setup"], doc["post"], doc["path"]
    if found:
        print(f"file     {show_path(found['given'])}  ({found['in_job']} of {doc['jobid']})")
        kind, state, recorded = found["kind"], found["state"], found["recorded"]
        if state == "as recorded":
            print(f"hash     {found['digest']}  as recorded")
        elif state == "changed" and kind == "file":
            print(f"hash     {found['digest']}  CHANGED since the job made it ({recorded[:22]} recorded)")
        elif state == "changed":
            print(f"hash     none: a {kind} now; the job recorded a file there ({recorded[:22]}): "
                  "CHANGED since the job made it")
        elif state == "record":
            print(f"hash     {found['digest']}  exmake's own record of the job, not one of its outputs")
        else:
            what = f"hash     {found['digest']}  a file" if kind == "file" else f"hash     none: a {kind}"
            print(f"{what}, not one of the job's recorded outputs")
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
    if post.get("chunks"):
        print(chunks_line(post["chunks"]))
    for rel, digest in post.get("outputs", []):
        print(f"output   {rel}  {digest[:22]}")
    for sub in post.get("subjobs", []):  # children its job script built (job.build)
        if isinstance(sub, dict):
            print(f"subjob   {sub.get('jobid')}  {sub.get('state')}  {sub.get('name')}")


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
            where = f" in {dep['workdir']}" if dep.get("workdir") else ""  # `reuse_from:`
            print(f"dep      {local}: {dep.get('jobid')}{where}")


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


def chunks_line(chunks):
    """A chunked job's chunks: how many were reused from the chunk cache and computed."""
    return (f"chunks   {chunks['total']} of input {chunks['input']} (target {_bytes(chunks['size'])}): "
            f"{chunks['reused']} reused, {chunks['computed']} computed "
            f"({_bytes(chunks['computed_bytes'])} of {_bytes(chunks['bytes'])})")


def _bytes(n):
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
