"""No-op rebuild of a 1,000-job DAG: exmake against make (and ninja when installed).

Generates, in a scratch directory, N input files and a DAG of N jobs (job i
reads input i and the output of job i // 2, so the graph is a tree of depth
log2 N), written once as an Exmakefile, once as a Makefile and once as a
build.ninja with the same commands. Each tool builds once, then the no-op
rebuild is timed REPEAT times; medians and the ratio to make are printed.

usage: python3 bench/noop.py [--jobs 1000] [--repeat 15] [--keep DIR]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

# Measure exmake as installed for use: with its bytecode cached. (Some
# sandboxes set PYTHONDONTWRITEBYTECODE, which makes every run compile
# every module again.)
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
import time


def write_project(root, n):
    os.makedirs(os.path.join(root, "in"))
    os.makedirs(os.path.join(root, "out"))
    for i in range(n):
        with open(os.path.join(root, "in", f"{i}.txt"), "w") as f:
            f.write(f"input {i}\n")
    recipe = ["jobs:"]
    make = ["all: " + " ".join(f"out/{i}.txt" for i in range(n)), ""]
    ninja = ["rule cat", "  command = cat $in > $out", ""]
    for i in range(n):
        if i == 0:
            recipe += [f"  j{i}:", f"    run: \"cat {{inputs.src}} > out.txt\"",
                       f"    inputs: {{src: in/{i}.txt}}", "    outputs: [out.txt]"]
            prereqs = f"in/{i}.txt"
        else:
            recipe += [f"  j{i}:", f"    run: \"cat {{inputs.src}} {{deps.up}}/out.txt > out.txt\"",
                       f"    inputs: {{src: in/{i}.txt}}", f"    deps: {{up: j{i // 2}}}",
                       "    outputs: [out.txt]"]
            prereqs = f"in/{i}.txt out/{i // 2}.txt"
        make += [f"out/{i}.txt: {prereqs}", "\tcat $^ > $@"]
        ninja += [f"build out/{i}.txt: cat {prereqs}"]
    for name, lines in (("Exmakefile", recipe), ("Makefile", make), ("build.ninja", ninja)):
        with open(os.path.join(root, name), "w") as f:
            f.write("\n".join(lines) + "\n")


def timed(argv, cwd, repeat, before=None):
    samples = []
    for _ in range(repeat):
        if before:
            before()
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=BENCH_ENV)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--keep", metavar="DIR", help="build in DIR and keep it")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="exmake-bench-")
    if os.path.exists(root) and os.listdir(root):
        shutil.rmtree(root)
    write_project(root, args.jobs)
    exmake = [sys.executable, "-m", "exmake", "-q", "-j", "2"]
    # `make -r` turns off make's built-in implicit rules, which otherwise make
    # it try dozens of candidate files per target (RCS, SCCS, %.c ...); a
    # tuned Makefile does this, a plain one does not, so both are shown.
    tools = {"exmake": exmake, "make": ["make", "-s", "-j2"], "make -r": ["make", "-s", "-r", "-j2"]}
    if shutil.which("ninja"):
        tools["ninja"] = ["ninja", "-j2"]
    results = {}
    for name, argv in tools.items():
        subprocess.run(argv, cwd=root, check=True, stdout=subprocess.DEVNULL, env=BENCH_ENV)  # the full build
        # Files written less than a timestamp tick before a hash are not
        # trusted by exmake's hash cache (the racy case); a second build
        # settles them, as on any real project that is not brand new.
        if name == "exmake":
            time.sleep(2.1)
            subprocess.run(argv, cwd=root, check=True, stdout=subprocess.DEVNULL, env=BENCH_ENV)
        results[name] = timed(argv, root, args.repeat)
    # The per-job path: touching the recipe voids the whole-build stamp, so
    # exmake parses the recipe and checks every job's key in the index.
    recipe = os.path.join(root, "Exmakefile")
    results["exmake, recipe touched"] = timed(exmake, root, args.repeat, lambda: os.utime(recipe))
    results["python -c pass"] = timed([sys.executable, "-c", "pass"], root, args.repeat)
    base = results["make -r"]
    print(f"no-op rebuild, {args.jobs} jobs, median of {args.repeat} runs, {os.cpu_count()} CPUs")
    for name, seconds in results.items():
        print(f"  {name:<22} {seconds * 1000:8.1f} ms   {seconds / base:6.2f}x make -r")
    if not args.keep:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
