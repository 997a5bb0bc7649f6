"""Memory cgroups for jobs: where exmake may make one, and making, joining,
reading and removing it.

A job with `mem:` runs in a memory cgroup of its own, made as a child of the
cgroup exmake itself runs in (so whatever limits the machine or a batch
system put on exmake still hold for the job). The kernel then limits what
the job's processes really use, not their address space: a JVM that
reserves 4 GB and touches 200 MB runs under `mem: 300M`, and a process
that touches more is killed by the kernel's OOM killer, which the cgroup
counts (`oom_kill`).

Where exmake may make one:
- cgroup v1 with the `memory` controller mounted and exmake's own memory
  cgroup writable (as root, typically);
- cgroup v2 where exmake's cgroup has `memory` in `cgroup.subtree_control`
  and is writable (a delegated subtree: `systemd-run --user -p Delegate=yes`).
Anywhere else `memory_parent()` says None and the caller samples /proc
instead (exmake.usage).

Names are `exmake-<pid of the exmake>-<n>`. A cgroup is removed once the
job's processes are reaped; what is still in it then (a daemon that left
the job's session) is SIGKILLed first. When exmake itself is SIGKILLed its
cgroups stay until the next exmake in the same parent cgroup sweeps them
(`sweep`): a cgroup whose exmake is gone and that holds no process.

A leaf module: it imports nothing from exmake.
"""

import errno
import os
import signal
import time

PREFIX = "exmake-"
V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
REMOVE_TRIES = 50          # rmdir after a SIGKILL: the kernel takes a moment to empty the cgroup
REMOVE_PAUSE_S = 0.01      # between those tries


def memory_parent(proc_cgroup="/proc/self/cgroup"):
    """(version, directory) of the cgroup under which exmake may make job
    cgroups, or None where it may not."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            directory = os.path.join(V1_ROOT, path.lstrip("/"))
            if os.access(os.path.join(directory, "cgroup.procs"), os.W_OK) and os.access(directory, os.W_OK):
                return 1, directory
    for line in lines:
        if line.startswith("0::"):
            for root in V2_ROOTS:
                directory = os.path.join(root, line[3:].lstrip("/"))
                if "memory" in _read(os.path.join(directory, "cgroup.subtree_control")).split() \
                        and os.access(directory, os.W_OK):
                    return 2, directory
    return None


class MemoryCgroup:
    """One job's memory cgroup, limited to `limit_bytes`."""

    def __init__(self, version, path):
        self.version, self.path = version, path

    @classmethod
    def create(cls, parent, limit_bytes, label):
        """Make the cgroup `exmake-<pid>-<label>` under `parent` (a `memory_parent()` answer)."""
        version, directory = parent
        path = os.path.join(directory, f"{PREFIX}{os.getpid()}-{label}")
        os.mkdir(path)
        group = cls(version, path)
        try:
            if version == 1:
                _write(os.path.join(path, "memory.limit_in_bytes"), limit_bytes)
                # Swap must not be a way around the limit; where swap accounting is off the file is absent.
                if os.path.exists(os.path.join(path, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(path, "memory.memsw.limit_in_bytes"), limit_bytes)
            else:
                _write(os.path.join(path, "memory.max"), limit_bytes)
                if os.path.exists(os.path.join(path, "memory.swap.max")):
                    _write(os.path.join(path, "memory.swap.max"), 0)
        except OSError:
            group.remove()
            raise
        return group

    def join(self):
        """Move the calling process into the cgroup (run in a job's child, before exec)."""
        _write(os.path.join(self.path, "cgroup.procs"), 0)

    def pids(self):
        return [int(p) for p in _read(os.path.join(self.path, "cgroup.procs")).split()]

    def peak_bytes(self):
        """The most the cgroup has used (page cache included), or 0 where the kernel does not say."""
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        text = _read(os.path.join(self.path, name)).strip()
        return int(text) if text.isdigit() else 0

    def oom_kills(self):
        """How many of its processes the kernel killed for the limit."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in _read(os.path.join(self.path, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self):
        """SIGKILL what is left in it, then remove it. Every process in it is
        the job's: only the job's processes joined, and children inherit it."""
        for _ in range(REMOVE_TRIES):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(REMOVE_PAUSE_S)


def sweep(parent):
    """Remove the empty job cgroups of exmakes that are gone (SIGKILLed ones)."""
    _, directory = parent
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        owner = name[len(PREFIX):].split("-", 1)[0] if name.startswith(PREFIX) else ""
        if not owner.isdigit() or _alive(int(owner)):
            continue
        try:
            os.rmdir(os.path.join(directory, name))
        except OSError:
            pass  # still holds a process the killed build left running; a later sweep takes it


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _write(path, value):
    with open(path, "w") as f:
        f.write(str(value))
