"""Watch mode: the time from saving an input to the start of its rebuild.

Starts `exmake watch` on a small recipe whose job writes the time it
started as its first action, then saves a new version of the input
REPEAT times, each after the previous rebuild has finished, and reports
the median and worst delay from the save (time taken just before the
write) to the job's start. The delay holds the inotify event, the 0.2 s
debounce, loading the recipe, hashing and the job's start.

usage: python3 bench/watch_latency.py [--repeat 15] [--poll]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile

# Measure exmake as installed for use: with its bytecode cached. (Some
# sandboxes set PYTHONDONTWRITEBYTECODE, which makes every run compile
# every module again.)
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
import time

RECIPE = """\
jobs:
  stamp:
    run: "python3 -c 'import time; print(time.time())' > started; cat {inputs.data} > copy"
    inputs: {data: data.txt}
"""


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise RuntimeError("timed out")


def latest_start(root, after):
    path = os.path.join(root, "work", "stamp-LATEST", "started")
    try:
        value = float(open(path).read())
    except (OSError, ValueError):
        return None
    return value if value > after else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--poll", action="store_true", help="measure the polling observer")
    args = parser.parse_args()
    delays = []
    with tempfile.TemporaryDirectory(prefix="exmake-bench-watch-") as root:
        with open(os.path.join(root, "Exmakefile"), "w") as f:
            f.write(RECIPE)
        with open(os.path.join(root, "data.txt"), "w") as f:
            f.write("0\n")
        argv = [sys.executable, "-m", "exmake", "watch"] + (["--poll"] if args.poll else [])
        watch = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BENCH_ENV)
        try:
            wait_for(lambda: latest_start(root, 0))
            for i in range(1, args.repeat + 1):
                time.sleep(0.5)  # let the previous rebuild settle
                saved = time.time()
                with open(os.path.join(root, "data.txt"), "w") as f:
                    f.write(f"{i}\n")
                started = wait_for(lambda: latest_start(root, saved))
                delays.append(started - saved)
        finally:
            watch.send_signal(signal.SIGINT)
            watch.wait(timeout=30)
    delays.sort()
    print(f"watch: save -> rebuild start, {len(delays)} saves, {os.cpu_count()} CPUs"
          f"{' (polling)' if args.poll else ''}")
    print(f"  median {statistics.median(delays) * 1000:6.0f} ms   worst {delays[-1] * 1000:6.0f} ms"
          f"   (of which 200 ms debounce)")


if __name__ == "__main__":
    main()
