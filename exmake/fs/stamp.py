"""Build stamps: the whole-build no-op fast path.

After a successful build, exmake records what that build depended on: the
stat signature of the recipe, of every input file (as seen when it was
hashed) and of every directory whose listing expanded an input, plus each
job it used and each symlink it made (results and `-LATEST`). The next
build of the same recipe and targets first checks those with stat/readlink
alone; if nothing moved, it is a no-op without parsing YAML or computing a
key. A job costs one stat: of `<name>-LATEST/post.json`, through the link,
whose signature (inode included) is that of the post.json of the job the
build used; so it proves at once that LATEST still leads to that job and
that the job is still there. An input read by several jobs is stat'ed once.

A stamp is written only when every recorded mtime is older than
RACY_WINDOW_NS before the build started: a file modified within one
timestamp tick of being read could change again without changing its
signature.

Record (JSON, in the store's `stamps` database, key = stamp_id):
    {"format": 5, "recipe": [path, sig], "recipe_digest": sha256 of its text,
     "context": what else keys depend on (exmake.defaults.key_context),
     "targets": [resolved target names], "all_jobs": [every job of the recipe],
     "files": [[path, sig], ...],
     "dirs": [[path, sig], ...], "jobs": [[name, jobid, job path, key], ...],
     "latest": [[`<name>-LATEST` path, sig of its post.json], ...] (one per job),
     "links": [[result link path, target], ...]}
where sig = [dev, inode, size, mtime_ns, ctime_ns] (see exmake.fs.hashcache.signature),
or null in "files" for a path that must still not exist (a module that
would shadow one a job script imports: see exmake.method.CodeIdentity).
"""

import json
import os

from exmake.fs.hashcache import RACY_WINDOW_NS, signature
from exmake.fs.hashing import hash_bytes

FORMAT = 5


def stamp_id(recipe_path, targets):
    """The stamp's key: the recipe's absolute path and the targets as asked."""
    text = os.path.abspath(recipe_path) + "\0" + "\0".join(targets)
    return hash_bytes(text.encode()).encode()


def make_stamp(recipe_entry, recipe_digest, targets, all_jobs, files, dirs, jobs, latest, links, started_ns,
               context):
    """The stamp JSON bytes, or None if any entry is too recent to trust.
    `latest`: [[LATEST link, jobid]] of every job; None if one no longer leads there."""
    files = _once(files)
    entries = [recipe_entry, *files, *dirs]
    if any(sig and sig[3] > started_ns - RACY_WINDOW_NS for _, sig in entries):
        return None
    latest_sigs = []
    for link, jobid in latest:
        try:
            if os.readlink(link) != jobid:
                return None
            latest_sigs.append([link, list(signature(os.stat(os.path.join(link, "post.json"))))])
        except OSError:
            return None
    record = {"format": FORMAT, "recipe": recipe_entry, "recipe_digest": recipe_digest, "context": context,
              "targets": targets, "all_jobs": all_jobs, "files": files, "dirs": dirs, "jobs": jobs,
              "latest": latest_sigs, "links": links}
    return json.dumps(record, separators=(",", ":")).encode()


def _once(entries):
    """[path, sig] entries without repeats (an input many jobs read is stat'ed once)."""
    seen, kept = set(), []
    for path, sig in entries:
        mark = (path, tuple(sig) if sig is not None else None)
        if mark not in seen:
            seen.add(mark)
            kept.append([path, sig])
    return kept


def still_valid(raw, context):
    """The stamp record if everything it recorded, and the key `context`, are
    unchanged, else None."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if record.get("format") != FORMAT or record.get("context") != context:
        return None
    for path, sig in (record["recipe"], *record["files"], *record["dirs"]):
        if sig is None:
            if os.path.lexists(path):
                return None
            continue
        try:
            st = os.stat(path)
        except OSError:
            return None
        if list(signature(st)) != sig:
            return None
    for link, sig in record["latest"]:
        try:
            st = os.stat(os.path.join(link, "post.json"))
        except OSError:
            return None
        if list(signature(st)) != sig:
            return None
    for link, target in record["links"]:
        try:
            if os.readlink(link) != target:
                return None
        except OSError:
            return None
    return record
