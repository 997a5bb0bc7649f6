"""Write one self-contained HTML file about a build: jobs, timeline, resources, failures, results.

The newest build of the build log, or `--entry LIST/ENTRY` (as `exmake urd`
names entries: `default/latest`, `nightly/~2`, a timestamp). CSS, script,
SVG and images are inline and nothing is fetched: a CI artifact or an
e-mail attachment shows the same anywhere. Reads the workdir, writes only
the output file (atomically).
"""

import os


def add_arguments(parser):
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="the HTML file to write")
    parser.add_argument("--entry", metavar="LIST/ENTRY", help="the build to report (default: the newest)")


def main(args):
    from exmake.boardhtml import encode_page
    from exmake.fs.atomic import write_bytes
    from exmake.htmlreport import render, report_document
    from exmake.errors import UsageError
    from exmake.report import show_path
    output = args.output
    check_output(output)
    document = report_document(args.file, args.entry)
    try:
        write_bytes(output, encode_page(render(document)))
    except OSError as exc:   # e.g. a read-only directory or file system, a full disk: nothing is left behind
        raise UsageError(f"-o {output}: cannot write it: {exc.strerror or exc}") from None
    entry = document["entry"]
    print(f"exmake report: {show_path(os.path.abspath(output))}: build {entry['list']}/{entry['timestamp']}, "
          f"{len(document['jobs'])} jobs, {entry['status']}")
    return 0


def check_output(output):
    """Refuse an -o the report must not replace, before anything is read or written:
    anything but a regular file (a device, a FIFO, a socket, a directory), a name
    ending in a slash, a directory that is missing or not writable. A symlink to a
    regular file is itself replaced by the report (its target is left as it was);
    a symlink to anything else is refused like what it points to."""
    import stat
    from exmake.errors import UsageError
    from exmake.report import show_path
    if output.endswith(("/", os.sep)) or os.path.basename(output) in ("", ".", ".."):
        raise UsageError(f"-o {output}: names a directory; give the HTML file to write")
    try:
        mode = os.stat(output).st_mode
    except FileNotFoundError:
        mode = None   # a new file (or a dangling link, which is replaced)
    except OSError as exc:
        raise UsageError(f"-o {output}: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
        raise UsageError(f"-o {output}: {what}; the report replaces only a regular file")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"-o {output}: no directory {show_path(folder)} to write it in")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"-o {output}: the directory {show_path(folder)} is not writable")
