"""How long the board's front page takes on a workdir of many jobs (issue 15: 10,000 in under a second).

Makes (once, then reuses) bench/dag.py's layered DAG of N jobs in DIR,
builds it, starts `exmake board --port 0` on 127.0.0.1, and times GET /
(HTML and JSON) REPEAT times: the first request (states not yet known to
the server) and the rest (states from its snapshot), medians printed.
Also times one job page, and the front page while the board surveys every
job again after the recipe was touched (the no-op stamp then no longer
answers). Traffic goes to 127.0.0.1 only, and a bounded
number of requests.

usage: python3 bench/board.py [--jobs 10000] [--repeat 5] [--dir /tmp/exmake-board-bench]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dag import BENCH_ENV, exmakefile, shape, write_inputs  # noqa: E402


def prepare(root, n):
    """A built workdir of `n` jobs in `root` (kept for the next run)."""
    if os.path.exists(os.path.join(root, "built")):
        return
    os.makedirs(root, exist_ok=True)
    width, jobs = shape(n)
    write_inputs(root, width)
    with open(os.path.join(root, "Exmakefile"), "w") as f:
        f.write(exmakefile(jobs))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "exmake", "-q", "-j", "2"], cwd=root, check=True, env=BENCH_ENV)
    print(f"built {len(jobs):,} jobs in {time.perf_counter() - started:.1f}s", flush=True)
    open(os.path.join(root, "built"), "w").close()


def get(url, accept="text/html"):
    started = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}), timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", default="/tmp/exmake-board-bench")
    args = parser.parse_args()
    root = os.path.join(args.dir, str(args.jobs))
    prepare(root, args.jobs)
    board = subprocess.Popen([sys.executable, "-m", "exmake", "board", "--port", "0"], cwd=root,
                             env=BENCH_ENV, stdout=subprocess.PIPE, text=True)
    try:
        url = board.stdout.readline().split()[-1].rstrip("/")
        first, size = get(url + "/")
        print(f"GET / (first, {size:,} bytes): {first:.3f}s")
        for accept in ("text/html", "application/json"):
            times = [get(url + "/", accept)[0] for _ in range(args.repeat)]
            print(f"GET / {accept}: median {statistics.median(times):.3f}s  max {max(times):.3f}s")
        times = [get(url + "/job/final-1")[0] for _ in range(args.repeat)]
        print(f"GET /job/final-1: median {statistics.median(times):.3f}s")
        # The no-op stamp no longer holds: the board surveys every job again
        # (seconds at 10,000 jobs) in its background thread; pages must not wait.
        os.utime(os.path.join(root, "Exmakefile"))
        time.sleep(1.5)  # the background thread sees the change within WARM_INTERVAL_S
        times = [get(url + "/")[0] for _ in range(args.repeat)]
        print(f"GET / while the board re-surveys: median {statistics.median(times):.3f}s  max {max(times):.3f}s")
    finally:
        board.terminate()
        board.wait()


if __name__ == "__main__":
    main()
