"""Read the build log (urd): which jobs made up which build, when, from which recipe.

    exmake urd                      the lists, with entry counts and latest timestamps
    exmake urd LIST [--since TS]    the list's entries, newest last, one line each
    exmake urd LIST/latest          one entry with its jobs (also LIST/first,
                                    LIST/~N for N entries back, LIST/TIMESTAMP)
    exmake urd export [LIST]        JSON Lines, one entry a line, to stdout
    exmake urd import FILE          add the entries of an export (- for stdin)

Builds append entries; nothing here changes one.
"""

import sys

from exmake import urd
from exmake.commands import open_workspace, print_json
from exmake.errors import UsageError


def add_arguments(parser):
    parser.add_argument("what", nargs="?", metavar="LIST|LIST/ENTRY|export|import",
                        help="a list, an entry, or export / import")
    parser.add_argument("arg", nargs="?", metavar="LIST|FILE", help="export: the list; import: the file")
    parser.add_argument("--since", metavar="TS", help="only entries at or after this UTC timestamp (or prefix)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def main(args):
    if args.what == "import":
        return _import(args)
    ws = open_workspace(args, readonly=True)
    try:
        log = urd.Log(ws.store) if ws.store is not None else None
        if log is None:
            entries_exist = False
        else:
            entries_exist = bool(log.lists())
        if args.what == "export":
            for value in (log.raw(args.arg and urd.check_list_name(args.arg)) if log else []):
                sys.stdout.buffer.write(value + b"\n")
            return 0
        if args.arg:
            raise UsageError(f"unexpected argument {args.arg!r}")
        if not entries_exist:
            if args.what:
                raise UsageError(f"the build log of {ws.recipe.workdir} has no entries yet")
            print("no builds logged yet" if not args.json else "{}")
            return 0
        if args.what is None:
            return _show_lists(log, args)
        if "/" in args.what:
            return _show_entry(log.entry(args.what), args)
        return _show_list(log, urd.check_list_name(args.what), args)
    finally:
        ws.close()


def _show_lists(log, args):
    lists = log.lists()
    if args.json:
        print_json({name: {"entries": n, "latest": ts} for name, (n, ts) in lists.items()})
        return 0
    width = max(len(name) for name in lists)
    for name, (count, latest) in sorted(lists.items()):
        print(f"{name:<{width}}  {count:5d} {'entry' if count == 1 else 'entries':<7}  latest {latest}")
    return 0


def _show_list(log, name, args):
    entries = log.entries(name, args.since)
    if not entries and not log.entries(name):
        raise UsageError(f"no urd list named {name!r} (lists: {', '.join(sorted(log.lists()))})")
    if args.json:
        print_json(entries)
        return 0
    for entry in entries:
        print(entry_line(entry))
    return 0


def entry_line(entry):
    counts = {}
    for job in entry["jobs"].values():
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    caption = f"  \"{entry['caption']}\"" if entry.get("caption") else ""
    return (f"{entry['timestamp']}  {entry['status']:<11} {' '.join(entry['targets'])}  "
            f"({states}) {entry['duration']:.2f}s{caption}")


def _show_entry(entry, args):
    if args.json:
        print_json(entry)
        return 0
    print(f"{entry['list']}/{entry['timestamp']}  {entry['status']}  {entry['duration']:.2f}s")
    print(f"by      {entry['user']}@{entry['host']}")
    print(f"recipe  {entry['recipe']}  ({entry['recipe_digest'][:12]})")
    print(f"targets {' '.join(entry['targets'])}")
    if entry.get("caption"):
        print(f"caption {entry['caption']}")
    width = max((len(n) for n in entry["jobs"]), default=0)
    for name, job in entry["jobs"].items():
        where = f"  from {job['workdir']}" if job.get("workdir") else ""  # reused from another workdir
        print(f"  {name:<{width}}  {job['state']:<8} {job['jobid'] or '-'}{where}")
        for sub in job.get("subjobs", []):  # children its job script built (job.build)
            print(f"  {'':<{width}}    subjob {sub.get('jobid')}  {sub.get('state')}")
    return 0


def _lines(f):
    """The file's lines, each read only up to just past the longest entry
    parse_import accepts (so a 10 GiB line is refused, not read into memory)."""
    return iter(lambda: f.readline(urd.MAX_IMPORT_LINE_BYTES + 2), b"")


def _import(args):
    if not args.arg:
        raise UsageError("exmake urd import FILE: name the file to import (- for stdin)")
    if args.arg == "-":
        rows = urd.parse_import(_lines(sys.stdin.buffer), args.arg)
    else:
        try:
            with open(args.arg, "rb") as f:
                rows = urd.parse_import(_lines(f), args.arg)
        except OSError as exc:
            raise UsageError(f"{args.arg}: {exc.strerror}") from None
    ws = open_workspace(args, readonly=False)
    try:
        added, present = urd.import_rows(ws.store, rows)
    finally:
        ws.close()
    print(f"imported {added} entr{'y' if added == 1 else 'ies'}"
          + (f", {present} already present" if present else ""))
    return 0
