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
    from exmake.fs.atomic import write_bytes
    from exmake.htmlreport import render, report_document
    from exmake.errors import UsageError
    from exmake.report import show_path
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder) or os.path.isdir(args.output):
        raise UsageError(f"-o {args.output}: " + ("a directory" if os.path.isdir(args.output)
                                                   else f"no directory {show_path(folder)} to write it in"))
    document = report_document(args.file, args.entry)
    write_bytes(args.output, render(document).encode())
    entry = document["entry"]
    print(f"exmake report: {show_path(os.path.abspath(args.output))}: build {entry['list']}/{entry['timestamp']}, "
          f"{len(document['jobs'])} jobs, {entry['status']}")
    return 0
