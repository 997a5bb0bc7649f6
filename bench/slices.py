"""Sliced job scripts: the speed-up of 2 slices over 1, and the cost of starting slices.

1. A CPU-bound job script (pure-Python arithmetic, a fixed total of work
   split evenly over the slices) built with `slices: 1` and `slices: 2`;
   the job's own duration (post.json) is compared.
2. A 4-slice job whose prepare, analysis and synthesis do nothing: its
   duration in post.json is exmake's overhead for forking the job process
   and four slice workers, collecting their results and saving the job's.

Each figure is the median of REPEAT forced builds (`exmake -B`).
usage: python3 bench/slices.py [--repeat 9] [--work 20000000]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

# Measure exmake as installed for use: with its bytecode cached. (Some
# sandboxes set PYTHONDONTWRITEBYTECODE, which makes every run compile
# every module again.)
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

CPU_SCRIPT = '''\
options = {"work": 0}


def analysis(sliceno, slices, options):
    n = options["work"] // slices
    total = 0
    for i in range(sliceno * n, (sliceno + 1) * n):
        total += i * i % 7
    return total


def synthesis(analysis_res):
    return sum(analysis_res)
'''

NOTHING_SCRIPT = '''\
def prepare():
    pass


def analysis(sliceno):
    pass


def synthesis(analysis_res):
    pass
'''


def job_seconds(root, job, repeat):
    durations = []
    for _ in range(repeat):
        subprocess.run([sys.executable, "-m", "exmake", "-B", "-q", job], cwd=root, check=True,
                       stdout=subprocess.DEVNULL, env=BENCH_ENV)
        jobid = os.readlink(os.path.join(root, "work", f"{job}-LATEST"))
        with open(os.path.join(root, "work", jobid, "post.json")) as f:
            durations.append(json.load(f)["duration"])
    return statistics.median(durations)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--work", type=int, default=20_000_000, help="loop iterations in all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="exmake-bench-slices-") as root:
        with open(os.path.join(root, "cpu.py"), "w") as f:
            f.write(CPU_SCRIPT)
        with open(os.path.join(root, "nothing.py"), "w") as f:
            f.write(NOTHING_SCRIPT)
        with open(os.path.join(root, "Exmakefile"), "w") as f:
            f.write("jobs:\n"
                    f"  one: {{method: cpu.py, slices: 1, options: {{work: {args.work}}}}}\n"
                    f"  two: {{method: cpu.py, slices: 2, options: {{work: {args.work}}}}}\n"
                    "  empty: {method: nothing.py, slices: 4}\n")
        one = job_seconds(root, "one", args.repeat)
        two = job_seconds(root, "two", args.repeat)
        empty = job_seconds(root, "empty", args.repeat * 3)
    print(f"sliced job scripts, median of {args.repeat} forced builds, {os.cpu_count()} CPUs")
    print(f"  CPU-bound, 1 slice     {one * 1000:8.1f} ms")
    print(f"  CPU-bound, 2 slices    {two * 1000:8.1f} ms   speed-up {one / two:.2f}x")
    print(f"  4 slices doing nothing {empty * 1000:8.2f} ms   (fork job + 4 workers, results, save)")


if __name__ == "__main__":
    main()
