"""A 2,000-instance family of trivial jobs built on the local Slurm cluster as job arrays.

Issue 13 ("Cluster at scale"): the family goes to Slurm as arrays of up to
1,000 tasks, so the whole build takes at most 3 `sbatch` calls (two arrays
and the fan-in job that reads every instance) and one scheduler query per
poll. Counted, not assumed: shims in front of `sbatch`, `squeue`, `sacct`
and `scontrol` append a line to a log and exec the real program, so every
call is a real call to the real cluster. Prints the wall time of the build,
the number of each call, the polls exmake made (its -v count) and the
queries per poll.

Needs the local cluster (scripts/local-slurm-start).

usage: python3 bench/cluster_array.py [--instances 2000] [--keep]
"""

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTED = ("sbatch", "squeue", "sacct", "scontrol")


def recipe(instances_file):
    return (f"jobs:\n"
            f"  t:\n"
            f"    foreach: {{v: {{lines: {instances_file}}}}}\n"
            f"    run: \"echo {{each.v}} > out\"\n"
            f"  summary:\n"
            f"    run: \"for d in {{deps.all}}; do cat $d/out; done | wc -l > count\"\n"
            f"    deps: {{all: \"t@*\"}}\n")


def shims(where, log):
    """A directory of counting shims, one per scheduler command."""
    os.makedirs(where)
    for name in COUNTED:
        real = shutil.which(name)
        if not real:
            sys.exit(f"{name} is not installed: start the cluster with scripts/local-slurm-start")
        path = os.path.join(where, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\necho {name} >> '{log}'\nexec '{real}' \"$@\"\n")
        os.chmod(path, stat.S_IRWXU)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the project directory")
    args = parser.parse_args()
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if "UP" not in ping.stdout:
        sys.exit("slurmctld does not answer: start the cluster with scripts/local-slurm-start")
    root = tempfile.mkdtemp(prefix="exmake-cluster-array-")
    try:
        project = os.path.join(root, "project")
        os.makedirs(project)
        with open(os.path.join(project, "values.txt"), "w") as f:
            f.write("".join(f"v{i}\n" for i in range(args.instances)))
        with open(os.path.join(project, "Exmakefile"), "w") as f:
            f.write(recipe("values.txt"))
        log = os.path.join(root, "calls.log")
        shims(os.path.join(root, "bin"), log)
        env = dict(os.environ, PYTHONPATH=REPO, PATH=os.path.join(root, "bin") + os.pathsep + os.environ["PATH"])
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "exmake", "--backend", "slurm", "-v"], cwd=project,
                              env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            sys.exit(f"the build failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        with open(os.path.join(project, "work/summary-1/count")) as f:
            count = int(f.read())
        with open(log) as f:
            calls = f.read().split()
        polls = next(int(line.split()[1]) for line in proc.stdout.splitlines()
                     if line.startswith("exmake: ") and line.endswith("slurm status queries"))
        counts = {name: calls.count(name) for name in COUNTED}
        submits = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  submit  ")]
        print(f"{args.instances:,} instances + 1 fan-in job on the local Slurm cluster "
              f"({os.cpu_count()} CPUs), all built; the fan-in counted {count:,} outputs")
        for line in submits:
            print(f"  {line}")
        print(f"wall time (exmake start to exit): {elapsed:.1f} s")
        print(f"sbatch calls: {counts['sbatch']}")
        print(f"polls: {polls}; squeue calls: {counts['squeue']}, sacct calls: {counts['sacct']} "
              f"-> {(counts['squeue'] + counts['sacct']) / max(polls, 1):.2f} queries per poll")
        print(f"scontrol calls (limits, once a build): {counts['scontrol']}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
