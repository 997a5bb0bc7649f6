"""`exmake board`'s web server: the workdir, the build log and the results, read-only.

The standard library's ThreadingHTTPServer, no framework. URLs:

    /                            the build log and the recipe's jobs with their states
                                 (`?page=N`, `?state=STATE`, `?log_page=N`)
    /job/<jobid>                 one job directory
    /job/<jobid>/file/<path>     a file (`?raw=1`: its bytes) or directory of it
    /results/<path>              the results directory, with previews

Every page is JSON too, for a request that accepts `application/json`.

What may be asked is narrow on purpose: GET and HEAD only (anything else
405: there is no write endpoint); the request path is percent-decoded
once and every file goes through `BoardData.safe_path`, so `..`, its
encodings, absolute paths and links that lead out of the workdir or the
results directory are 404 like a missing file. Nothing read is unpickled or
run. HTML pages carry a Content Security Policy that lets only their own
script run; raw files are sent with `nosniff` and a sandboxing policy, so an
HTML or SVG file a job wrote runs nothing either.
"""

import json
import os
import re
import socket
import stat
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from exmake.boarddata import SNIFF_BYTES, BoardData, classify_head
from exmake.boardhtml import csp, encode_page, new_nonce, quote_path
from exmake import boardpages

WARM_INTERVAL_S = 1.0     # how often the background thread looks for a changed workdir
STREAM_CHUNK_BYTES = 64 << 10
MAX_PAGE = 10 ** 6        # a page number past any real workdir's; bigger ones are bad requests
RAW_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
FILE_URL_RE = re.compile(r"/job/[^/]+/file/|/results/")   # the URLs whose rest is a file name
CONNECTION_TIMEOUT_S = 30  # an idle or half-sent request holds its thread no longer than this
MAX_CONNECTIONS = 64       # open connections at once; more are closed unanswered (a browser uses ~6)


class BadRequest(Exception):
    """A request the board cannot answer as asked (400), with the reason."""


class NotFound(Exception):
    """404: no such job, file or page, or a path the board never serves."""


class Misdirected(Exception):
    """421: a Host header naming another server (DNS rebinding)."""


class BoardServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, data, quiet=True, err=None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, BoardHandler)
        self.data, self.quiet, self.err = data, quiet, err
        self.hosts = host_names(address[0])
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._stop = threading.Event()
        self._warmer = threading.Thread(target=self._warm, name="board-warmer", daemon=True)

    def url(self):
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def serve(self):
        self._warmer.start()
        try:
            self.serve_forever(poll_interval=0.25)
        finally:
            self._stop.set()
            self.server_close()

    def process_request(self, request, client_address):
        # One thread per connection, at most MAX_CONNECTIONS of them: a flood of
        # idle connections cannot take a thread each without bound.
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _warm(self):
        """Retake the snapshots when the workdir changes, so that requests never wait for them."""
        try:
            self.data.users(wait=True)  # a job page's dependents: every setup.json read once, now
        except OSError:
            pass
        while not self._stop.wait(WARM_INTERVAL_S):
            try:
                self.data.refresh()
                self.data.log()
            except Exception:  # noqa: BLE001 - a page request will meet the same trouble and say it
                pass


class BoardHandler(BaseHTTPRequestHandler):
    server_version = "exmake-board"
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT_S   # StreamRequestHandler sets it on the socket
    head = False   # answering HEAD: headers only
    started = False  # the answer's headers are sent: an error now can only end the connection

    # -- methods ----------------------------------------------------------------------

    def do_GET(self):
        self._answer(head=False)

    def do_HEAD(self):
        self._answer(head=True)

    def __getattr__(self, name):
        # http.server answers a method it has no do_X for with 501; the board
        # knows every other method and refuses it: nothing here writes.
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _refuse(self):
        self.close_connection = True  # its body, if any, is never read: this connection is done
        self._send(405, "text/plain; charset=utf-8",
                   f"{self.command} is not allowed: the board is read-only (GET and HEAD only)\n".encode(),
                   extra={"Allow": "GET, HEAD"})

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if not self.server.quiet:
            super().log_message(format, *args)

    # -- routing --------------------------------------------------------------------------

    def _answer(self, head):
        self.head, self.started = head, False
        self.nonce = new_nonce()
        self.wants_json = "application/json" in self.headers.get("Accept", "")
        try:
            self._check_request()
            split = urlsplit(self.path)
            self.query = _query(split.query)
            path = unquote(split.path, errors="surrogateescape")   # a file name's own bytes, UTF-8 or not
            if not FILE_URL_RE.match(path) and path.encode("utf-8", "surrogateescape") != path.encode(
                    "utf-8", "surrogatepass"):
                raise UnicodeDecodeError("utf-8", b"", 0, 0, "not UTF-8")   # only file names may be other bytes
            self._route(path)
        except BadRequest as exc:
            self._error(400, str(exc))
        except Misdirected as exc:
            self._error(421, str(exc))
        except NotFound as exc:
            self._error(404, str(exc) or "not found")
        except UnicodeDecodeError:
            self._error(400, "the path is not UTF-8")
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the browser went away mid-answer
        except Exception as exc:  # noqa: BLE001 - every failure gets an answer and one line in the log
            self._fail(exc)

    def _check_request(self):
        """Refuse what the board must not answer: a body (GET and HEAD have none;
        one would be read as the next request) and a Host that is not this
        server's address (a page of another site reaching it by DNS rebinding)."""
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0").strip() != "0":
            self.close_connection = True   # the body is never read: this connection is done
            raise BadRequest(f"a {self.command} request has no body (Content-Length or Transfer-Encoding sent)")
        host = self.headers.get("Host")
        if host is None:
            raise BadRequest("no Host header")
        name, port = split_host(host)
        local = self.connection.getsockname()[0]   # an IP address the client reached us by is ours
        if name is None or (name not in self.server.hosts and name != local.lower()) \
                or port not in (None, self.server.server_address[1]):
            raise Misdirected(f"Host: {host[:100]} is not this board's address; open {self.server.url()} "
                              "(the board answers only to its own address, so that another site's page "
                              "cannot read it through a DNS name of its own)")

    def _fail(self, exc):
        """A failure of the board itself: 500 (one line in the log, no traceback)."""
        self.close_connection = True
        where = f"{self.command} {self.path[:200]}"
        print(f"exmake board: 500 {where}: {type(exc).__name__}: {exc}"[:1000], file=self.server.err or sys.stderr,
              flush=True)
        if not self.started:
            try:
                self._error(500, f"the board failed on {where}: {type(exc).__name__}: {exc}"[:1000])
            except OSError:
                pass

    def _route(self, path):
        data = self.server.data
        if path == "/":
            doc = data.front(page=self._int("page"), state=self.query.get("state"),
                             log_page=self._int("log_page"))
            return self._page(doc, boardpages.front_page)
        if path == "/results" or path.startswith("/results/"):
            return self._file(data.results, path[len("/results/"):], "/results", ("/", "the board"))
        parts = path.split("/", 4)   # "", "job", jobid, "file", path
        if len(parts) >= 3 and parts[1] == "job":
            jobid = parts[2]
            if not data.is_job(jobid):
                raise NotFound(f"no job directory {jobid} in {data.workdir}")
            if len(parts) == 3:
                doc = data.job(jobid)
                if doc is None:
                    raise NotFound(f"no job directory {jobid} in {data.workdir}")
                return self._page(doc, boardpages.job_page)
            if parts[3] == "file" and len(parts) == 5:
                return self._file(data.jobdirs.path(jobid), parts[4], f"/job/{jobid}/file",
                                  (boardpages.job_href(jobid), jobid))
        raise NotFound(f"no page {path}")

    def _int(self, key):
        text = self.query.get(key, "1")
        if not (text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= MAX_PAGE):
            raise BadRequest(f"?{key}={text[:40]}: a page number is a whole number from 1")
        return int(text)

    def _file(self, base, rel, prefix, up):
        data = self.server.data
        real = data.safe_path(base, rel.rstrip("/")) if rel.strip("/") else (
            os.path.realpath(base) if os.path.isdir(base) else None)
        if real is None:
            raise NotFound(f"no file {rel}")
        try:
            fd = data.open_inside(real)   # what is served is what this opened: a later swap changes nothing
        except OSError:
            raise NotFound(f"no file {rel}") from None  # a link swapped in, unreadable, a socket, gone
        try:
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise NotFound(f"{rel} is not a regular file")   # a FIFO or a device is never read
            raw_url = f"{prefix}/{quote_path(rel)}?raw=1"
            if stat.S_ISDIR(mode):
                doc = data.directory(fd, rel)
            elif "raw" in self.query:
                return self._stream(fd, real)
            else:
                doc = data.file(fd, rel, raw_url)
                if doc["kind"] == "binary" and not self.wants_json:
                    return self._stream(fd, real)  # anything else is a download
        finally:
            os.close(fd)
        title = f"{prefix.split('/file')[0].lstrip('/')}/{rel}".replace("job/", "", 1)
        base_href = f"{prefix}/{quote_path(rel.rstrip('/'))}" if rel.strip("/") else prefix
        return self._page(doc, lambda d, nonce: boardpages.file_page(d, nonce, title, up, base_href))

    # -- answers --------------------------------------------------------------------------

    def _page(self, doc, render):
        if self.wants_json:
            return self._send(200, "application/json; charset=utf-8", json_bytes(doc))
        body = encode_page(render(doc, self.nonce))
        return self._send(200, "text/html; charset=utf-8", body, extra={"Content-Security-Policy": csp(self.nonce)})

    def _error(self, status, message):
        if self.wants_json:
            body = json.dumps({"error": message, "status": status}).encode()
            return self._send(status, "application/json; charset=utf-8", body)
        body = encode_page(boardpages.error_page(status, message, self.nonce))
        self._send(status, "text/html; charset=utf-8", body, extra={"Content-Security-Policy": csp(self.nonce)})

    def _send(self, status, content_type, body, extra=None):
        self.send_response(status)
        self._headers(content_type, len(body), extra)
        if not self.head:
            self.wfile.write(body)

    def _headers(self, content_type, length, extra=None):
        self.started = True
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _stream(self, fd, name):
        """The file's bytes, in chunks (a big file is never read whole): exactly
        the Content-Length taken at the start. A file that grows meanwhile (a
        running job's log) is cut there, so nothing spills into the next answer
        on a kept-alive connection; one that shrinks ends the connection, so the
        client sees a short answer instead of waiting for bytes that never come."""
        kind, mime = classify_head(name, os.pread(fd, SNIFF_BYTES, 0))
        extra = {"Content-Security-Policy": RAW_POLICY}
        if kind in ("text", "csv"):
            mime = "text/plain; charset=utf-8"
        elif kind == "binary":
            extra["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote_path(os.path.basename(name), safe='')}"
        size = os.fstat(fd).st_size
        self.send_response(200)
        self._headers(mime, size, extra)
        if self.head:
            return
        sent = 0
        while sent < size:
            chunk = os.pread(fd, min(STREAM_CHUNK_BYTES, size - sent), sent)
            if not chunk:
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)


def json_bytes(doc):
    """`doc` as UTF-8 JSON; a non-UTF-8 file name is written as \\u escapes (still valid JSON)."""
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(doc, sort_keys=True).encode()


def host_names(bound):
    """The host names a request may give: the loopback names, the bound address,
    and (bound to every address) this machine's names."""
    names = {"127.0.0.1", "localhost", "::1", bound.lower()}
    if bound in ("0.0.0.0", "::", ""):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return names


def split_host(value):
    """(name, port or None) of a Host header ("[::1]:80" -> ("::1", 80)); (None, None) if malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else (None if not rest else "bad")
    else:
        name, _, port = value.partition(":")
        port = port if _ else None
    if port is not None:
        if not (port.isascii() and port.isdigit() and len(port) <= 5):
            return None, None
        port = int(port)
    return (name or None), port


def _query(text):
    """{key: last value} of a query string; a malformed one is a bad request."""
    try:
        pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=20)
    except ValueError as exc:
        raise BadRequest(f"bad query string: {exc}") from None
    return {key: values[-1] for key, values in pairs.items()}


def serve(recipe_path, host, port, out, err):
    """Serve until interrupted; prints the URL first (a line ending with it)."""
    from exmake.errors import UsageError
    data = BoardData(recipe_path)
    data.refresh(force=True)   # the first states before the first page
    if host not in LOCAL_HOSTS:
        print(f"exmake board: warning: --host {host} lets anyone who can reach this machine read the "
              "workdir, the build log and the results: the board has no login", file=err, flush=True)
    try:
        server = BoardServer((host, port), data, err=err)
    except OSError as exc:
        raise UsageError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    print(f"exmake board: serving {data.workdir} read-only (Ctrl-C stops) at {server.url()}", file=out, flush=True)
    server.serve()
