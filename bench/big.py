"""Huge recipes: the dry run, the no-op and the first job's start at 100,000 jobs, beside make and ninja.

Two shapes of the same size N (issue 13):
- `dag`: bench/dag.py's layered DAG of `cksum` jobs, written out one job per
  job (W = N/10 inputs, 10 layers, a final fan-in);
- `family`: one family of N instances over a sample sheet of N lines, each
  `cksum` of its own input file; make and ninja get the same N rules written out.

For each shape and tool (`--repeat` times, medians):
- dry run: `exmake -n -q`, `make -n`, `ninja -n`, from nothing built, and
  exmake's dry run again once its parsed-recipe cache exists (after a build
  of one job: the cache is written by builds only); wall time and peak
  resident memory (the child's ru_maxrss);
- first job: from starting `exmake -j 2` to its first job directory
  appearing (polled every ms), then the build is interrupted (SIGINT);
- no-op: after a full build (`--full`, slow at 100k; off by default).

usage: python3 bench/big.py [--jobs 100000] [--repeat 3] [--shapes dag,family] [--full]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dag  # noqa: E402  (the DAG's shape and its make/ninja/exmake texts)

BENCH_ENV = dag.BENCH_ENV


def family_files(root, n):
    """One input per instance, a sample sheet, and the three recipes."""
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    for i in range(n):
        with open(os.path.join(root, "in", f"{i}.txt"), "w") as f:
            f.write(f"input {i}\n")
    with open(os.path.join(root, "ids.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in range(n)))
    with open(os.path.join(root, "Exmakefile"), "w") as f:
        f.write("jobs:\n  each:\n    foreach: {i: {lines: ids.txt}}\n"
                "    run: \"cksum {inputs.x} > out\"\n    inputs: {x: \"in/{each.i}.txt\"}\n")
    with open(os.path.join(root, "Makefile"), "w") as f:
        f.write("all: " + " ".join(f"out/{i}" for i in range(n)) + "\n\nout:\n\tmkdir -p out\n\n")
        f.write("".join(f"out/{i}: in/{i}.txt | out\n\tcksum $^ > $@\n" for i in range(n)))
    with open(os.path.join(root, "build.ninja"), "w") as f:
        f.write("rule cksum\n  command = cksum $in > $out\n\n")
        f.write("".join(f"build out/{i}: cksum in/{i}.txt\n" for i in range(n)))


def dag_files(root, n):
    width, jobs = dag.shape(n)
    dag.write_inputs(root, width)
    for name, writer in (("Exmakefile", dag.exmakefile), ("Makefile", dag.makefile), ("build.ninja", dag.ninjafile)):
        with open(os.path.join(root, name), "w") as f:
            f.write(writer(jobs))
    return jobs[0][0]


def timed(argv, cwd):
    """(seconds, peak RSS in MB) of one run of `argv`."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BENCH_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd} ({proc.returncode})")
    return elapsed, usage.ru_maxrss / 1024


def first_job_s(cwd):
    """Seconds from starting `exmake -j 2` to its first job directory appearing."""
    building = os.path.join(cwd, "work", ".exmake", "building")
    shutil.rmtree(os.path.join(cwd, "work"), ignore_errors=True)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "exmake", "-q", "-j", "2"], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BENCH_ENV)
    seen = None
    while seen is None and proc.poll() is None:
        try:
            if os.listdir(building):
                seen = time.perf_counter() - started
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    proc.send_signal(signal.SIGINT)
    proc.wait()
    return seen


def exmake(*args):
    return [sys.executable, "-m", "exmake", *args]


def measure(shape, n, root, repeat, full):
    cwd = os.path.join(root, shape)
    first = family_files(cwd, n) if shape == "family" else dag_files(cwd, n)
    rows = {}

    def median_of(label, argv):
        runs = [timed(argv, cwd) for _ in range(repeat)]
        rows[label] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))

    median_of("make -n", ["make", "-n", "-r"])
    if shutil.which("ninja"):
        median_of("ninja -n", ["ninja", "-n"])
    median_of("exmake -n", exmake("-n", "-q"))
    target = first or "each@0"
    subprocess.run(exmake("-q", target), cwd=cwd, check=True, env=BENCH_ENV,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    median_of("exmake -n (parsed recipe cached)", exmake("-n", "-q"))
    starts = [first_job_s(cwd) for _ in range(repeat)]
    rows["exmake: first job started"] = (statistics.median(s for s in starts if s is not None), None)
    if full:
        shutil.rmtree(os.path.join(cwd, "work"), ignore_errors=True)
        rows["exmake full build -j 2"] = timed(exmake("-q", "-j", "2"), cwd)
        time.sleep(2.1)  # past the racy window: the no-op stamp trusts only settled files
        subprocess.run(exmake("-q"), cwd=cwd, check=True, env=BENCH_ENV)
        median_of("exmake no-op", exmake("-q"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shapes", default="dag,family")
    parser.add_argument("--full", action="store_true", help="also a full build and the no-op after it")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="exmake-big-")
    try:
        for shape in args.shapes.split(","):
            rows = measure(shape, args.jobs, root, args.repeat, args.full)
            ninja = rows.get("ninja -n", (None,))[0]
            print(f"{shape}: {args.jobs} jobs, median of {args.repeat}, {os.cpu_count()} CPUs")
            for label, (seconds, mb) in rows.items():
                ratio = f"  {seconds / ninja:6.2f}x ninja -n" if ninja and "-n" in label else ""
                memory = f"  peak {mb:7.0f} MB" if mb else ""
                print(f"  {label:<36} {seconds:8.3f}s{memory}{ratio}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
