"""Full, incremental and no-op builds of one layered DAG, side by side with make and ninja.

The same work for every tool (issue 13's benchmark): W = N/10 input files of
distinct small content; 10 layers of W jobs; job (l, j) runs `cksum` on the
outputs of jobs (l-1, j) and (l-1, (j+1) mod W) (layer 0: on inputs j and
j+1 mod W); one final job runs `cksum` on all W leaves. Changing input 0
dirties 66 jobs at any N (the cone widens by one per layer: 2+3+...+11, and
the final job). The Makefile has one explicit rule per job; build.ninja one
build statement per job; the Exmakefile one job per job (doit and snakemake
are timed too when installed, with one task/rule per job).

Each tool gets fresh copies of the inputs in its own directory. For each
tool: the full build from nothing (REPEAT times, from a fresh copy each
time), the incremental build after input 0's content changes (REPEAT
changes), then the no-op build on the settled tree (REPEAT times); medians
and the ratio to make printed. Everything runs at -j 2 (`--parallel`).

usage: python3 bench/dag.py [--jobs 1000] [--repeat 5] [--parallel 2] [--tools exmake,make,ninja]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LAYERS = 10
# exmake as installed for use: its bytecode cached (some sandboxes set this).
BENCH_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BENCH_ENV["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shape(n):
    """(W, [(name, [input or job names it reads])...]) for an N-job DAG."""
    width = max(2, n // LAYERS)
    jobs = []
    for layer in range(LAYERS):
        for j in range(width):
            a, b = j, (j + 1) % width
            reads = [f"in{a}", f"in{b}"] if layer == 0 else [f"l{layer - 1}_{a}", f"l{layer - 1}_{b}"]
            jobs.append((f"l{layer}_{j}", reads))
    jobs.append(("final", [f"l{LAYERS - 1}_{j}" for j in range(width)]))
    return width, jobs


def write_inputs(root, width):
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    for j in range(width):
        with open(os.path.join(root, "in", f"{j}.txt"), "w") as f:
            f.write(f"input {j} {j * 7919 % 1000003}\n")


def exmakefile(jobs):
    lines = ["jobs:"]
    for name, reads in jobs:
        if reads[0].startswith("in"):
            lines += [f"  {name}:", "    run: \"cksum {inputs.a} {inputs.b} > out\"",
                      f"    inputs: {{a: in/{reads[0][2:]}.txt, b: in/{reads[1][2:]}.txt}}"]
        else:
            locals_ = {f"d{i}": dep for i, dep in enumerate(reads)}
            words = " ".join(f"{{deps.{local}}}/out" for local in locals_)
            deps = ", ".join(f"{local}: {dep}" for local, dep in locals_.items())
            lines += [f"  {name}:", f"    run: \"cksum {words} > out\"", f"    deps: {{{deps}}}"]
    return "\n".join(lines) + "\n"


def _sources(reads):
    return [f"in/{r[2:]}.txt" if r.startswith("in") else f"out/{r}" for r in reads]


def makefile(jobs):
    lines = ["all: out/final", "", "out:", "\tmkdir -p out", ""]
    for name, reads in jobs:
        lines += [f"out/{name}: {' '.join(_sources(reads))} | out", "\tcksum $^ > $@"]
    return "\n".join(lines) + "\n"


def ninjafile(jobs):
    lines = ["rule cksum", "  command = cksum $in > $out", ""]
    lines += [f"build out/{name}: cksum {' '.join(_sources(reads))}" for name, reads in jobs]
    return "\n".join(lines) + "\n"


def dodofile(jobs):
    lines = ["DOIT_CONFIG = {'verbosity': 0}", "", "def task_all():"]
    for name, reads in jobs:
        srcs = _sources(reads)
        lines += [f"    yield {{'name': {name!r}, 'file_dep': {srcs!r}, 'targets': ['out/{name}'],",
                  f"           'actions': ['mkdir -p out && cksum {' '.join(srcs)} > out/{name}']}}"]
    return "\n".join(lines) + "\n"


def snakefile(jobs):
    lines = ["rule all:", "    input: 'out/final'", ""]
    for name, reads in jobs:
        lines += [f"rule {name}:", f"    input: {', '.join(repr(s) for s in _sources(reads))}",
                  f"    output: 'out/{name}'", "    shell: 'cksum {input} > {output}'", ""]
    return "\n".join(lines) + "\n"


def tools(parallel, wanted):
    """name -> (argv, the file it reads, a writer of that file)."""
    found = {
        "exmake": ([sys.executable, "-m", "exmake", "-q", "-j", str(parallel)], "Exmakefile", exmakefile),
        "make": (["make", "-s", "-r", f"-j{parallel}"], "Makefile", makefile),
        "ninja": (["ninja", f"-j{parallel}"], "build.ninja", ninjafile),
        "doit": (["doit", "-n", str(parallel)], "dodo.py", dodofile),
        "snakemake": (["snakemake", "-q", "--cores", str(parallel)], "Snakefile", snakefile),
    }
    return {name: tool for name, tool in found.items()
            if name in wanted and (name == "exmake" or shutil.which(tool[0][0]))}


def run(argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=BENCH_ENV)


def timed(argv, cwd):
    started = time.perf_counter()
    run(argv, cwd)
    return time.perf_counter() - started


def measure(name, argv, recipe, width, jobs, root, repeat):
    """{"full": s, "one input changed": s, "no-op": s} medians for one tool."""
    pristine = os.path.join(root, f"{name}-pristine")
    write_inputs(pristine, width)
    with open(os.path.join(pristine, recipe[0]), "w") as f:
        f.write(recipe[1](jobs))
    where = os.path.join(root, name)
    full = []
    for _ in range(repeat):
        shutil.rmtree(where, ignore_errors=True)
        shutil.copytree(pristine, where)
        full.append(timed(argv, where))
    time.sleep(2.1)  # exmake trusts no hash of a file younger than its racy window; settle all alike
    run(argv, where)
    changed = []
    first = os.path.join(where, "in", "0.txt")
    for i in range(repeat):
        with open(first, "w") as f:
            f.write(f"input 0 changed {i}\n")
        changed.append(timed(argv, where))
    # The no-op on a settled tree: a file changed within the racy window is
    # not trusted by exmake's stamp (its mtime could still be the same after
    # another write), so right after a change exmake checks every key.
    time.sleep(2.1)
    run(argv, where)
    noop = [timed(argv, where) for _ in range(repeat)]
    return {"full": statistics.median(full), "one input changed": statistics.median(changed),
            "no-op": statistics.median(noop)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="about this many jobs (10 layers of N/10, +1)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--tools", default="exmake,make,ninja,doit,snakemake")
    args = parser.parse_args()
    width, jobs = shape(args.jobs)
    chosen = tools(args.parallel, args.tools.split(","))
    root = tempfile.mkdtemp(prefix="exmake-dag-")
    try:
        results = {name: measure(name, argv, (recipe, writer), width, jobs, root, args.repeat)
                   for name, (argv, recipe, writer) in chosen.items()}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{len(jobs)} jobs ({LAYERS} layers of {width}, cksum), -j {args.parallel}, "
          f"median of {args.repeat}, {os.cpu_count()} CPUs")
    base = results.get("make")
    print(f"  {'tool':<10} {'full':>10} {'1 changed':>10} {'no-op':>10}" + ("   ratios to make" if base else ""))
    for name, r in results.items():
        cells = " ".join(f"{r[k]:9.3f}s" for k in ("full", "one input changed", "no-op"))
        ratios = "  ".join(f"{r[k] / base[k]:5.2f}x" for k in r) if base else ""
        print(f"  {name:<10} {cells}   {ratios}")


if __name__ == "__main__":
    main()
