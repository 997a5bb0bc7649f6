"""`exmake board` over real HTTP: URLs, JSON, path traversal, methods, escaping, live states.

The board runs as a real `exmake board --port 0` process on 127.0.0.1 and
is asked with http.client, which sends a path exactly as written (a browser
would tidy `..` away before sending). The browser's own view is in
tests/test_board_browser.py.
"""

import hashlib
import http.client
import json
import os
import re
import subprocess
import textwrap
from urllib.parse import urlsplit

import pytest

from conftest import wait_for

HOSTILE = "<script>window.pwned=1</script>"
HOSTILE_FILE = "<img src=x onerror=window.pwned=2>.txt"

RECIPE = textwrap.dedent("""\
    jobs:
      upper:
        run: "tr a-z A-Z < {inputs.text} > upper.txt; printf '\\\\033[31mred\\\\033[0m %(hostile)s\\\\n'; printf x > '%(file)s'"
        inputs: {text: a.txt}
        outputs: [upper.txt]
        options: {label: "<script>window.pwned=3</script>"}
      count:
        method: count.py
        deps: {upper: upper}
        publish: {count.csv: count.csv, plot.png: plot.png}
      big:
        run: "head -c 3000000 /dev/urandom > big.bin"
        outputs: [big.bin]
      broken:
        run: "echo 'it broke <b>here</b>' >&2; exit 3"
    """) % {"hostile": HOSTILE, "file": HOSTILE_FILE}

COUNT = '''\
import struct
import zlib


def analysis(sliceno):
    print("slice", sliceno)
    return sliceno


def synthesis(analysis_res):
    with open("count.csv", "w") as f:
        f.write("slice,value\\n" + "".join(f"{n},{v}\\n" for n, v in enumerate(analysis_res)))
    write_png("plot.png", 40, 20)


def write_png(path, width, height):
    """A small red and blue image, made by hand (no imaging library)."""
    raw = b"".join(b"\\0" + b"".join(bytes((200, 30, 30) if x < width // 2 else (30, 30, 200))
                                     for x in range(width)) for _ in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    with open(path, "wb") as f:
        f.write(b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
'''


def make_project(project):
    project.recipe(RECIPE)
    project.write("a.txt", "hello\n")
    project.write("count.py", COUNT)
    project.run("-k", expect=1)
    return project


class Board:
    """A running `exmake board` and a way to ask it."""

    def __init__(self, project, *args):
        self.proc = project.popen("board", "--port", "0", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = line.split()[-1]
        self.port = urlsplit(self.url).port

    def request(self, path, method="GET", accept="text/html"):
        """(status, headers, body bytes); `path` is sent exactly as given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader("Accept", accept)
            conn.endheaders()
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def json(self, path):
        status, headers, body = self.request(path, accept="application/json")
        assert status == 200, (path, status, body[:300])
        assert headers["Content-Type"].startswith("application/json")
        return json.loads(body)

    def html(self, path):
        status, headers, body = self.request(path)
        assert status == 200, (path, status, body[:300])
        return body.decode()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def built(project):
    return make_project(project)


@pytest.fixture
def board(built):
    running = Board(built)
    yield running
    running.stop()


def test_front_page_lists_the_build_log_and_every_job_with_its_state(board):
    doc = board.json("/")
    states = {job["name"]: job["state"] for job in doc["jobs"]}
    assert states == {"upper": "fresh", "count": "fresh", "big": "fresh", "broken": "failed"}
    assert doc["counts"] == {"fresh": 3, "failed": 1}
    [entry] = doc["log"]
    assert entry["status"] == "FAILURE" and entry["counts"] == {"built": 3, "failed": 1}
    assert {j["name"] for j in entry["jobs"]["built"]} == {"upper", "count", "big"}
    page = board.html("/")
    assert 'href="/job/count-1"' in page and "FAILURE" in page and 'data-live' in page


def test_job_page_has_records_timings_usage_logs_files_graph_and_siblings(board):
    doc = board.json("/job/count-1")
    assert doc["setup"]["name"] == "count" and doc["post"]["result"] == "SUCCESS"
    assert doc["deps"] == [{"local": "upper", "jobid": "upper-1"}]
    assert doc["made_by"]["list"] == "default" and doc["banner"] is None
    assert {log["file"] for log in doc["logs"]["stdout"]} == {"stdout.0.txt", "stdout.1.txt"}
    files = {f["path"]: f for f in doc["files"]}
    assert files["count.csv"]["size"] == len("slice,value\n0,0\n1,1\n") and files["deps/upper"]["kind"] == "link"
    page = board.html("/job/count-1")
    for part in ("<h2>Timings</h2>", "slice 1", "<h2>Resources used</h2>", 'aria-label="dependencies"',
                 'href="/job/upper-1"', 'href="/job/count-1/file/count.csv"'):
        assert part in page, part
    assert board.json("/job/upper-1")["dependents"] == ["count-1"]


def test_a_failed_job_shows_its_failure_and_a_banner(board):
    doc = board.json("/job/broken-1")
    assert doc["post"]["result"] == "FAILURE" and "failed" in doc["banner"]
    page = board.html("/job/broken-1")
    assert "exit status 3" in page and "it broke &lt;b&gt;here&lt;/b&gt;" in page


def test_an_older_job_has_a_banner_and_knows_its_newer_sibling(built):
    built.write("a.txt", "changed\n")
    built.run("upper", expect=0)
    board = Board(built)
    try:
        old = board.json("/job/upper-1")
        assert old["banner"] == "not the current job of upper: that is upper-2"
        assert old["same_name"] == {"older": [], "newer": ["upper-2"]}
        assert board.json("/job/upper-2")["same_name"]["older"] == ["upper-1"]
        assert board.json("/job/upper-2")["banner"] is None
        assert "not the current job of upper" in board.html("/job/upper-1")
    finally:
        board.stop()


def test_ansi_colours_become_spans_and_markup_stays_text(board):
    page = board.html("/job/upper-1")
    assert '<span class="f1">red</span>' in page
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert "&lt;script&gt;window.pwned=3&lt;/script&gt;" in page   # the option
    assert "&lt;img src=x onerror=window.pwned=2&gt;.txt" in page   # the file name
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert page.count("<script") == 0  # the job page has no script at all
    status, headers, front = board.request("/")
    nonce = re.search(r"'nonce-([^']+)'", headers["Content-Security-Policy"]).group(1)
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert front.decode().count("<script") == front.decode().count(f'<script nonce="{nonce}">') == 1


def test_files_text_csv_image_directory_and_download(board, built):
    text = board.html("/job/upper-1/file/upper.txt")
    assert "HELLO" in text
    status, headers, body = board.request("/job/upper-1/file/upper.txt?raw=1")
    assert (status, body) == (200, b"HELLO\n") and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff" and "sandbox" in headers["Content-Security-Policy"]
    assert '<table id="csv">' in board.html("/results/count.csv")
    assert board.json("/results/count.csv")["rows"] == [["slice", "value"], ["0", "0"], ["1", "1"]]
    assert '<img class="preview"' in board.html("/results/plot.png")
    status, headers, body = board.request("/results/plot.png?raw=1")
    assert headers["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    listing = board.json("/job/count-1/file/deps")
    assert listing["kind"] == "directory" and [e["name"] for e in listing["entries"]] == ["upper"]
    assert {e["name"] for e in board.json("/results/")["entries"]} == {"count.csv", "plot.png"}


def test_a_big_binary_file_is_a_streamed_download(board, built):
    status, headers, body = board.request("/job/big-1/file/big.bin")
    expected = (built.root / "work/big-1/big.bin").read_bytes()
    assert status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
    assert headers["Content-Length"] == str(len(expected))
    assert headers["Content-Disposition"] == "attachment; filename*=UTF-8''big.bin"
    assert headers["Content-Type"] == "application/octet-stream"
    head = board.request("/job/big-1/file/big.bin", method="HEAD")
    assert head[0] == 200 and head[2] == b"" and head[1]["Content-Length"] == str(len(expected))


TRAVERSALS = [
    "/job/upper-1/file/../../../../../../etc/passwd",
    "/job/upper-1/file/../../Exmakefile",
    "/job/upper-1/file/%2e%2e/%2e%2e/Exmakefile",
    "/job/upper-1/file/%2E%2E/%2E%2E/a.txt",
    "/job/upper-1/file/..%2f..%2fExmakefile",
    "/job/upper-1/file/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/job/upper-1/file/%2e%2e%2f%2e%2e%2fa.txt",
    "/job/upper-1/file//etc/passwd",
    "/job/upper-1/file/%2fetc%2fpasswd",
    "/job/upper-1/file/inputs/text/a.txt",          # the job's own view link, to the recipe's directory
    "/job/upper-1/file/outside",                    # a symlink to /etc/passwd
    "/job/upper-1/file/outdir/passwd",              # through a symlinked directory
    "/job/upper-1/file/..",
    "/job/upper-1/file/%00",
    "/job/upper-1/file/upper.txt%00.png",
    "/job/..%2f..%2fetc/file/passwd",
    "/job/%2e%2e/file/Exmakefile",
    "/job/upper-1/file/../../.exmake/lmdb/data.mdb",
    "/job/upper-1/file/deps/../../.exmake/lmdb/data.mdb",
    "/results/../Exmakefile",
    "/results/%2e%2e/Exmakefile",
    "/results/..%2fa.txt",
    "/results//etc/passwd",
    "/results/%2fetc%2fpasswd",
    "/results/outside",
    "/results/%252e%252e/Exmakefile",              # encoded twice: a name that does not exist
]


def test_paths_outside_the_workdir_and_results_are_404(built):
    os.symlink("/etc/passwd", built.root / "work/upper-1/outside")
    os.symlink("/etc", built.root / "work/upper-1/outdir")
    os.symlink(built.root / "a.txt", built.root / "results/outside")
    board = Board(built)
    try:
        for path in TRAVERSALS:
            for accept in ("text/html", "application/json"):
                status, _, body = board.request(path, accept=accept)
                assert status == 404, (path, status, body[:200])
                assert b"root:" not in body and b"HELLO" not in body and b"jobs:" not in body, path
            assert board.request(path + "?raw=1")[0] == 404, path
        # the same file by a path that stays inside is served
        assert board.request("/job/count-1/file/deps/upper/upper.txt?raw=1")[2] == b"HELLO\n"
    finally:
        board.stop()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"])
def test_only_get_and_head_are_allowed(board, built, method):
    status, headers, body = board.request("/job/upper-1", method=method)
    assert status == 405 and headers["Allow"] == "GET, HEAD" and b"read-only" in body
    assert (built.root / "work/upper-1").is_dir()


def test_bad_requests_get_one_clear_error(board):
    status, _, body = board.request("/?page=abc", accept="application/json")
    assert status == 400 and "?page=abc: a page number is a whole number from 1" in json.loads(body)["error"]
    assert board.request("/?page=0")[0] == 400
    assert board.request("/?page=99999999999999999999")[0] == 400
    assert board.request("/job/nosuch-1")[0] == 404
    assert board.request("/job/upper-1/nothing")[0] == 404
    assert board.request("/job/upper-1/file/no-such-file")[0] == 404
    assert board.request("/elsewhere")[0] == 404
    assert board.request("/%ff")[0] == 400


def test_pages_and_filters_split_many_jobs(project):
    lines = ["jobs:"] + [f"  j{n:03}:\n    run: \"echo {n} > out\"" for n in range(450)]
    project.recipe("\n".join(lines) + "\n")
    project.run("-j", "2", expect=0)
    board = Board(project)
    try:
        first, third = board.json("/"), board.json("/?page=3")
        assert (first["pages"], first["total"], len(first["jobs"]), len(third["jobs"])) == (3, 450, 200, 50)
        assert third["jobs"][-1]["name"] == "j449"
        assert board.json("/?state=failed")["total"] == 0
        assert 'href="?page=2"' in board.html("/")
    finally:
        board.stop()


def test_host_other_than_localhost_warns(built):
    proc = built.popen("board", "--port", "0", "--host", "0.0.0.0", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        warning = proc.stderr.readline()
        assert "warning: --host 0.0.0.0 lets anyone who can reach this machine read the workdir" in warning
        assert "http://0.0.0.0:" in proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


def test_a_bad_recipe_or_port_is_exit_2_and_writes_nothing(project):
    project.recipe("jobs:\n  a:\n    run: 1\n    nonsense: 2\n")
    result = project.run("board", "--port", "0", expect=2)
    assert "Exmakefile:" in result.err and not (project.root / "work").exists()
    make_project(project)
    assert "--port 70000" in project.run("board", "--port", "70000", expect=2).err


def test_states_update_while_a_build_runs(project):
    go = project.root / "go"   # the job runs in a building directory: an absolute path
    project.recipe(f"""\
jobs:
  first:
    run: "echo one > one.txt"
  waits:
    run: "while [ ! -e {go} ]; do sleep 0.05; done; echo done > done.txt"
    deps: {{first: first}}
""")
    board = Board(project)
    build = project.popen("-q", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert {j["name"]: j["state"] for j in board.json("/")["jobs"]}["waits"] in ("never built", "stale")
        doc = wait_for(lambda: (lambda d: d if d["running"].get("waits") else None)(board.json("/")), timeout=60)
        assert doc["running"] == {"waits": "waits-1"} and 'state run">waits-1' in board.html("/")
        job = board.json("/job/waits-1")   # jobs run in place: its page is there while it runs
        assert job["running"] and job["post"] is None and job["banner"] == "being built now"
        go.write_text("")
        assert build.wait(timeout=60) == 0
        done = wait_for(lambda: (lambda d: d if d["jobs"][1]["state"] == "fresh" else None)(board.json("/")),
                        timeout=60)
        assert done["jobs"][1]["jobid"] == "waits-1" and not done["running"]
        assert done["log"][0]["status"] == "SUCCESS"
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        board.stop()


def test_ctrl_c_stops_the_board_with_status_0(built):
    import signal
    board = Board(built)
    assert board.request("/")[0] == 200
    board.proc.send_signal(signal.SIGINT)
    assert board.proc.wait(timeout=30) == 0
    assert "exmake board: stopped" in board.proc.stderr.read()
    board.stop()
