"""Serve the workdir, the build log and the results in a browser, read-only, until Ctrl-C.

Binds 127.0.0.1 unless --host says otherwise (then it warns: the board has
no login). Pages: / (build log and jobs, live while a build runs),
/job/JOBID, /job/JOBID/file/PATH, /results/PATH; each also as JSON for a
request with `Accept: application/json`. Writes nothing.
"""

import sys

DEFAULT_PORT = 8353


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                        help=f"the port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", metavar="H",
                        help="the address to listen on (default 127.0.0.1: this machine only)")


def main(args):
    from exmake.board import serve  # not at import: `exmake --help` needs no server
    if not 0 <= args.port <= 65535:
        from exmake.errors import UsageError
        raise UsageError(f"--port {args.port}: a port is a number from 0 to 65535")
    try:
        serve(args.file, args.host, args.port, sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        print("exmake board: stopped", file=sys.stderr)
    return 0
