"""The chunk cache: a word count over a big text, from scratch, after a 1% append, after a 1% insert.

The input is generated from the shipped King James Bible (recipes/data/kjv):
numbered lines, each a verse drawn at random (seeded), SIZE MB in all, so no
two chunks are alike. Two jobs count its words, lower-cased, in 2 slices:

  chunked   `chunks: text` (analysis_chunk per chunk, the cache)
  sliced    the same count as `analysis(sliceno)` over line-aligned slices,
            as before chunks: every build reads everything

Measured, wall time of the whole `exmake` command (start-up, hashing the
input for the key, the job), each step once, in order:
  1. full build, empty workdir
  2. append 1% of the size at the end, rebuild
  3. insert 1% of the size in the middle (at a line start), rebuild
and, for the chunked job, how many chunks each rebuild computed (post.json).

usage: python3 bench/chunks.py [--size 100] [--chunk-size 1M] [--keep DIR]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KJV = os.path.join(REPO, "recipes", "data", "kjv")
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BENCH_ENV["PYTHONPATH"] = REPO + os.pathsep + BENCH_ENV.get("PYTHONPATH", "")

SCRIPT = '''\
import re
from collections import Counter

WORD = re.compile(r"[A-Za-z]+")


def {analysis}:
    counts = Counter()
    for line in {lines}:
        counts.update(w.lower() for w in WORD.findall(line))
    return counts


def synthesis({results}, job):
    total = Counter()
    for counts in {results}:
        total.update(counts)
    job.json_save(dict(total.most_common(20)), "top.json")
    return total
'''
CHUNKED = SCRIPT.format(analysis="analysis_chunk(lines)", lines="lines", results="chunk_res")
SLICED = SCRIPT.format(analysis="analysis(sliceno, job)", lines='job.input_lines("text")', results="analysis_res")


def verses():
    found = []
    for name in sorted(os.listdir(KJV)):
        if name.endswith(".txt"):
            with open(os.path.join(KJV, name)) as f:
                found += [line.split(" ", 1)[1] for line in f if " " in line]
    return found


def text(rng, pool, size, first):
    """About `size` bytes of numbered lines, each a random verse."""
    lines, total, n = [], 0, first
    while total < size:
        line = f"{n:010d} {rng.choice(pool)}"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)


def timed_build(root, job):
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "exmake", "-q", job], cwd=root, check=True, env=BENCH_ENV)
    seconds = time.monotonic() - started
    with open(os.path.join(root, "work", f"{job}-LATEST", "post.json")) as f:
        return seconds, json.load(f).get("chunks")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100, help="input size in MB (default 100)")
    parser.add_argument("--chunk-size", default=None, help="chunk_size: (default: exmake's)")
    parser.add_argument("--keep", help="build in this directory and leave it")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="exmake-bench-chunks-")
    os.makedirs(root, exist_ok=True)
    rng, pool = random.Random(16), verses()
    size = args.size * 1_000_000
    path = os.path.join(root, "big.txt")
    with open(path, "w") as f:
        f.write(text(rng, pool, size, 0))
    with open(os.path.join(root, "chunked.py"), "w") as f:
        f.write(CHUNKED)
    with open(os.path.join(root, "sliced.py"), "w") as f:
        f.write(SLICED)
    size_line = f"    chunk_size: {args.chunk_size}\n" if args.chunk_size else ""
    with open(os.path.join(root, "Exmakefile"), "w") as f:
        f.write("slices: 2\njobs:\n"
                "  chunked:\n    method: chunked.py\n    inputs: {text: big.txt}\n    chunks: text\n" + size_line +
                "  sliced:\n    method: sliced.py\n    inputs: {text: big.txt}\n")
    rows = []
    for job in ("chunked", "sliced"):
        rows.append((job, "full build", *timed_build(root, job)))
    with open(path, "a") as f:
        f.write(text(rng, pool, size // 100, 10**9))
    for job in ("chunked", "sliced"):
        rows.append((job, "append 1%", *timed_build(root, job)))
    with open(path) as f:
        data = f.read()
    middle = data.index("\n", len(data) // 2) + 1
    with open(path, "w") as f:
        f.write(data[:middle] + text(rng, pool, size // 100, 2 * 10**9) + data[middle:])
    for job in ("chunked", "sliced"):
        rows.append((job, "insert 1%", *timed_build(root, job)))
    full = {job: seconds for job, step, seconds, _ in rows if step == "full build"}
    print(f"input {args.size} MB ({os.path.getsize(path):,} bytes at the end), 2 slices, "
          f"chunk_size {args.chunk_size or 'default'}")
    print(f"{'job':<8} {'step':<11} {'seconds':>8} {'of full':>8}  chunks computed/total")
    for job, step, seconds, chunks in rows:
        counts = f"{chunks['computed']}/{chunks['total']}" if chunks else ""
        print(f"{job:<8} {step:<11} {seconds:8.2f} {seconds / full[job]:8.1%}  {counts}")
    if not args.keep:
        import shutil
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
