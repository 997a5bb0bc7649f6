"""Print a job's setup and result: command, key, inputs, dependencies, outcome, outputs.

JOB is NAME (its current fresh job or, if its latest attempt failed, that
attempt), NAME-N, or NAME-LATEST.
"""

import os

from exmake import jobref
from exmake.commands import open_workspace, print_json
from exmake.rebuilder import current_job
from exmake.report import show_path


def add_arguments(parser):
    parser.add_argument("job", metavar="JOB", help="NAME, NAME-N or NAME-LATEST")
    parser.add_argument("--json", action="store_true", help="print the raw setup and post records")


def main(args):
    ws = open_workspace(args, readonly=True)
    try:
        jobid = jobref.resolve(ws, args.job, lambda ws, name: current_job(ws, name, failed_ok=True))
        setup, post = ws.jobdirs.read_setup(jobid), ws.jobdirs.read_post(jobid)
        path = ws.jobdirs.path(jobid)
    finally:
        ws.close()
    if args.json:
        print_json({"jobid": jobid, "path": path, "setup": setup, "post": post})
        return 0
    print(f"job      {jobid}")
    print(f"path     {show_path(path)}")
    if setup:
        print(f"key      {setup.get('key')}")
        print(f"command  {setup['step'].get('run')}")
        for name, value in sorted(setup["step"].get("options", {}).items()):
            print(f"option   {name} = {value!r}")
        for local, files in sorted(setup.get("inputs", {}).items()):
            for rel, digest in files:
                print(f"input    {local}: {rel}  {digest[:15]}")
        for local, dep in sorted(setup.get("deps", {}).items()):
            print(f"dep      {local}: {dep.get('jobid')}")
    if post is None:
        print("result   (unfinished: no post.json)")
        return 0
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
        print(f"output   {rel}  {digest[:15]}")
    return 0


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
