"""What the machine and the environment contribute: to job keys, and the
local build's default cores and memory.

A recipe without `slices:` slices its job scripts by the CPUs here, and the
slice count is part of a job's key. The build and the no-op fast path (which
must not import YAML) both ask `key_context()`, so a stamp written on one
machine, or under another EXMAKE_DEFAULT_SLICES, is not trusted on another.
"""

import os


def default_slices():
    """Slices when the recipe sets none: the CPUs here, unless a cluster batch
    script passes the count its submitting exmake used (the count is part of
    the key, and a compute node may have other CPUs than the login node)."""
    given = os.environ.get("EXMAKE_DEFAULT_SLICES", "")
    return int(given) if given.isdigit() and 0 < int(given) <= 1 << 20 else (os.cpu_count() or 1)


def key_context():
    """Everything outside the recipe and its files that can change a job's key."""
    return {"default_slices": default_slices()}


def cpu_count():
    """The CPUs this process may run on (a cpuset or taskset narrows them): `-j`'s default."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def physical_mem_mib():
    """The machine's physical memory in MiB: `--mem`'s default."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (ValueError, OSError):
        return 1 << 20
