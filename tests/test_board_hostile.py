"""`exmake board` against what a job (or a page of another site) can do to it: the findings of
issue 15's review, each over real HTTP to a real `exmake board` on 127.0.0.1.

A job writes in its own directory while the board serves it: it can swap a
checked file for a link, grow or shrink a file being downloaded, leave a
FIFO or a socket, write records of the right shape with nonsense inside. A
web page can reach the board through a DNS name of its own, or hold
connections open. None of it may leak a file from outside, hang a request,
confuse the next answer on a connection or go without an answer.
"""

import http.client
import json
import os
import socket
import threading

import pytest

from conftest import wait_for
from test_board import Board, make_project


@pytest.fixture
def built(project):
    return make_project(project)


@pytest.fixture
def board(built):
    running = Board(built)
    yield running
    running.stop()


def connect(board, timeout=60):
    return http.client.HTTPConnection("127.0.0.1", board.port, timeout=timeout)


def raw_exchange(board, data):
    """Send `data` as is and read until the board closes the connection."""
    with socket.create_connection(("127.0.0.1", board.port), timeout=60) as sock:
        sock.sendall(data)
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


# -- 1. a link swapped in after the check ------------------------------------------------

def test_a_checked_path_swapped_for_a_link_is_not_opened(built):
    """The check and the open are apart in time; the open walks the checked real path
    from its root with O_NOFOLLOW, so a link put there since fails it."""
    from exmake.boarddata import BoardData
    data = BoardData(str(built.root / "Exmakefile"))
    job = built.root / "work/upper-1"
    (job / "sub").mkdir()
    (job / "sub/f.txt").write_text("harmless\n")
    (job / "race.txt").write_text("harmless\n")
    file_real = data.safe_path(str(job), "race.txt")
    dir_real = data.safe_path(str(job), "sub/f.txt")
    assert file_real and dir_real
    fd = data.open_inside(file_real)   # unswapped: opens, and is that file
    assert os.read(fd, 100) == b"harmless\n"
    os.close(fd)
    os.unlink(job / "race.txt")
    os.symlink("/etc/passwd", job / "race.txt")
    (job / "sub").rename(job / "sub.old")
    os.symlink("/etc", job / "sub")
    os.symlink("/etc/passwd", job / "sub.old/f2")
    for real in (file_real, dir_real):
        with pytest.raises(OSError):
            os.close(data.open_inside(real))


def test_a_job_swapping_a_file_for_a_link_never_gets_it_served(board, built):
    job = built.root / "work/upper-1"
    stop = threading.Event()

    def swapper():
        n = 0
        while not stop.is_set():
            tmp = job / f".swap{n % 2}"
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()
            if n % 2:
                os.symlink("/etc/passwd", tmp)
            else:
                tmp.write_text("harmless\n")
            os.replace(tmp, job / "race.txt")
            n += 1
    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    statuses = {}
    try:
        conn = connect(board)
        for _ in range(1500):
            conn.request("GET", "/job/upper-1/file/race.txt?raw=1")
            response = conn.getresponse()
            body = response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1
            assert b"root:" not in body
        conn.close()
    finally:
        stop.set()
        thread.join()
    assert set(statuses) <= {200, 404} and statuses.get(200), statuses


# -- 2. a download's length -----------------------------------------------------------------

SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 30\r\n\r\n<script>alert('smuggled')</script>"


def test_a_file_growing_while_it_is_downloaded_is_cut_at_its_content_length(board, built):
    path = built.root / "work/big-1/grow.bin"
    with open(path, "wb") as f:
        f.truncate(32 << 20)   # zeros: binary, streamed; far more than the socket buffers hold
    conn = connect(board)
    conn.request("GET", "/job/big-1/file/grow.bin?raw=1")
    response = conn.getresponse()   # the headers: the board is now writing the body
    length = int(response.getheader("Content-Length"))
    with open(path, "ab") as f:
        f.write(SMUGGLED * 1000)
    body = response.read()
    assert length == 32 << 20 and len(body) == length
    conn.request("GET", "/job/upper-1/file/upper.txt?raw=1")   # the same connection
    second = conn.getresponse()
    assert (second.status, second.read()) == (200, b"HELLO\n")
    conn.close()


def test_a_file_shrinking_while_it_is_downloaded_ends_the_connection(board, built):
    path = built.root / "work/big-1/shrink.bin"
    with open(path, "wb") as f:
        f.truncate(32 << 20)
    conn = connect(board)
    conn.request("GET", "/job/big-1/file/shrink.bin?raw=1")
    response = conn.getresponse()
    os.truncate(path, 0)
    with pytest.raises(http.client.IncompleteRead):   # not a wait for bytes that never come
        response.read()
    conn.close()


# -- 3. DNS rebinding ------------------------------------------------------------------------------

def host_status(board, host):
    conn = connect(board)
    try:
        conn.putrequest("GET", "/", skip_host=True)
        conn.putheader("Host", host)
        conn.putheader("Accept", "application/json")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_only_the_boards_own_address_is_answered(board):
    port = board.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert host_status(board, host)[0] == 200, host
    for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1:{port + 1}", f"localhost.evil:{port}",
                 f"127.0.0.1:{port}x", ""):
        status, doc = host_status(board, host)
        assert status in (400, 421), host
        if status == 421:
            assert f"is not this board's address; open http://127.0.0.1:{port}/" in doc["error"]


def test_the_address_given_with_host_is_answered_too(built):
    import subprocess
    from urllib.parse import urlsplit
    proc = built.popen("board", "--port", "0", "--host", "127.0.0.2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = urlsplit(proc.stdout.readline().split()[-1]).port
        conn = http.client.HTTPConnection("127.0.0.2", port, timeout=60)
        conn.request("GET", "/", headers={"Accept": "application/json"})   # Host: 127.0.0.2:port
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["jobs"]
        conn.request("GET", "/", headers={"Accept": "application/json", "Host": f"evil.example:{port}"})
        response = conn.getresponse()
        assert response.status == 421 and f"open http://127.0.0.2:{port}/" in json.loads(response.read())["error"]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()


# -- 4, 5, 6. what a job leaves in its directory ------------------------------------------------------

def test_fifos_sockets_and_links_are_never_read(board, built):
    job = built.root / "work/upper-1"
    os.mkfifo(job / "pipe.txt")
    os.mkfifo(job / "stdout.9.txt")   # where a log would be: the job page must not read it either
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(job / "sock"))
    (job / "links").mkdir()
    os.symlink("/etc/passwd", job / "links/passwd")
    try:
        for path in ("/job/upper-1/file/pipe.txt", "/job/upper-1/file/pipe.txt?raw=1",
                     "/job/upper-1/file/sock", "/job/upper-1/file/sock?raw=1"):
            status, _, body = board.request(path)   # before: the FIFO hung the request for good
            assert status == 404, (path, status, body[:200])
        files = {f["path"]: f for f in board.json("/job/upper-1")["files"]}
        assert files["pipe.txt"]["kind"] == "special" and files["pipe.txt"]["size"] is None
        listing = board.json("/job/upper-1/file/links")
        assert listing["entries"] == [{"name": "passwd", "kind": "link", "size": None}]   # not 1394 bytes
        assert "<td>link</td>" in board.html("/job/upper-1/file/links")
    finally:
        sock.close()


def test_records_and_files_that_cannot_be_shown_as_such_still_get_a_page(board, built):
    job = built.root / "work/count-1"
    (job / "wide.csv").write_text("a,b\n" + "x" * 200_000 + ",1\n")   # a field over csv's limit
    (job / "nul.csv").write_bytes(b"a,b\n" + b"1,2\n" * 3000 + b"3,\0\n")   # a NUL past the sniff
    doc = board.json("/job/count-1/file/wide.csv")
    assert doc["kind"] == "text" and doc["text"].startswith("a,b\n") and "rows" not in doc
    assert "a,b" in board.html("/job/count-1/file/wide.csv")
    for name in ("nul.csv", "wide.csv?raw=1"):   # a table or text, as this Python's csv takes it: an answer
        status, _, body = board.request(f"/job/count-1/file/{name}")
        assert status == 200 and (b"a,b" in body or b">a</th>" in body), body[-300:]
    post = json.loads((job / "post.json").read_text())
    post["usage"] = {"peak_rss_bytes": "lots", "cores": "many", "slices": ["x", {"wall_s": "long"}]}
    post["timings"] = {"analysis": "slow", "slices": "none"}
    post["duration"] = "forever"
    (job / "post.json").write_text(json.dumps(post))
    page = board.html("/job/count-1")
    assert "<h2>Resources used</h2>" in page and "lots" in page


def test_a_failing_page_is_a_500_with_one_log_line(built):
    # a build log entry that is not JSON: the front page cannot be made
    from exmake.fs.store import Store
    store = Store(str(built.root / "work/.exmake/lmdb"))
    try:
        store.put_many([("urd", b"default\0zz-broken", b"{not json")])
    finally:
        store.close()
    board = Board(built)
    try:
        status, headers, body = board.request("/", accept="application/json")
        assert status == 500 and "the board failed on GET /" in json.loads(body)["error"]
        status, headers, body = board.request("/")
        assert status == 500 and headers["Content-Type"].startswith("text/html") and b"<h1>500</h1>" in body
        assert board.request("/job/upper-1/file/upper.txt?raw=1")[2] == b"HELLO\n"   # the rest still answers
    finally:
        board.proc.terminate()
        board.proc.wait(timeout=30)
        err = board.proc.stderr.read()
        board.stop()
    failures = [line for line in err.splitlines() if line.startswith("exmake board: 500 GET /: ")]
    assert len(failures) == 2 and "Traceback" not in err, err


# -- 7. idle connections ---------------------------------------------------------------------------------

def test_connections_beyond_the_limit_are_closed_not_given_a_thread_each(board):
    from exmake.board import MAX_CONNECTIONS
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS + 20):
            sock = socket.create_connection(("127.0.0.1", board.port), timeout=60)
            sock.sendall(b"GET / HTTP/1.1\r\n")   # half a request, and then nothing
            idle.append(sock)
        closed = 0
        for sock in idle[MAX_CONNECTIONS:]:
            try:
                closed += sock.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == 20
        threads = int(next(line.split()[1] for line in open(f"/proc/{board.proc.pid}/status")
                           if line.startswith("Threads:")))
        assert threads <= MAX_CONNECTIONS + 4   # main, the warmer, and the handlers
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: answers(board), timeout=60)   # the slots come back


def answers(board):
    try:
        return board.request("/")[0] == 200
    except (http.client.HTTPException, OSError):
        return False


def test_an_idle_connection_is_closed_by_the_board(board):
    from exmake.board import CONNECTION_TIMEOUT_S
    with socket.create_connection(("127.0.0.1", board.port), timeout=CONNECTION_TIMEOUT_S * 4) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")   # half a request, and then nothing
        assert sock.recv(1) == b""   # before: no timeout at all, this waited for good (socket.timeout here)


# -- 10. a body on GET -------------------------------------------------------------------------------------

def test_a_get_with_a_body_is_400_and_the_body_is_never_a_request(board):
    inner = f"GET /job/upper-1 HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\n\r\n".encode()
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\nContent-Length: {len(inner)}\r\n\r\n").encode()
    answer = raw_exchange(board, request + inner)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1
    assert b"has no body" in answer
    chunked = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{board.port}\r\nTransfer-Encoding: chunked\r\n\r\n"
               f"{len(inner):x}\r\n").encode() + inner + b"\r\n0\r\n\r\n"
    answer = raw_exchange(board, chunked)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1


def test_a_file_name_that_is_not_utf8_is_listed_linked_and_served(board, built):
    """A job writing b"\\xff.txt" made its job page and its directory page fail."""
    with open(os.fsencode(built.root / "work/upper-1") + b"/\xff.txt", "wb") as f:
        f.write(b"bytes\n")
    page = board.html("/job/upper-1")
    assert 'href="/job/upper-1/file/%FF.txt"' in page and "\ufffd.txt" in page
    assert any(f["path"] == "\udcff.txt" for f in board.json("/job/upper-1")["files"])   # JSON's \udcff
    assert board.request("/job/upper-1/file/%FF.txt?raw=1")[2] == b"bytes\n"
    assert "bytes" in board.html("/job/upper-1/file/%FF.txt")
    assert 'href="/job/upper-1/file/%FF.txt"' in board.html("/job/upper-1/file/")
    assert board.request("/%ff")[0] == 400 and board.request("/job/%ff")[0] == 400
