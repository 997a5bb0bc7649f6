"""What a job used (peak resident memory, CPU seconds, wall time) and the
memory limit on what it uses.

`JobUsage` watches one job while it runs. Every SAMPLE_INTERVAL_S its owner
calls `sample()`, which sums the resident memory of the job's processes:
those in its memory cgroup where it has one (exmake.cgroups), else every
process in the job's sessions, found in /proc (each job process leads its own
session; a slice worker or a command's child stays in it). The sum's
maximum is the job's sampled peak. With a limit, `over()` says when the job
must die:
- in a cgroup the kernel enforces the limit and `over()` reports its OOM
  kills (a job that survives the kill of one child is stopped as a whole);
- without one, `over()` is the sampled sum above the limit, as Slurm's
  `jobacct_gather` does. A job that grows past the limit between two samples
  is seen at the next one.
Either way what counts is memory touched, not address space reserved.

`usage_record` turns a process's wait4 rusage (which covers the process and
every descendant it reaped) into post.json's form:
    {"peak_rss_bytes": int, "user_s": float, "system_s": float, "wall_s": float}
A job's peak is the larger of its sampled sum and its processes' ru_maxrss
(the biggest single process, which catches a job too short to be sampled).

A leaf-side module: it imports only exmake.cgroups.
"""

import os

from exmake.cgroups import MemoryCgroup, memory_parent, sweep

SAMPLE_INTERVAL_S = 0.1     # how often a running job's memory is summed
# EXMAKE_MEMORY_LIMIT=sampling: never make a cgroup, sample /proc (as where
# exmake may not make one; the tests run both ways).
LIMIT_ENV = "EXMAKE_MEMORY_LIMIT"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")   # /proc's CPU times are in these per second
KIB = 1024
MIB = 1024 * 1024


class JobUsage:
    """One running job's use: sampled memory and CPU, and its memory limit if any."""

    def __init__(self, limit_bytes=None, cgroup=None):
        self.limit_bytes = limit_bytes
        self.cgroup = cgroup
        self.sessions = set()
        self.peak_bytes = 0
        self.rss_bytes = 0          # at the last sample
        self.cpu_s = 0.0            # user + system seconds so far, at the last sample
        self.sampled_over = False
        self.samples = 0            # how many samples were taken
        self.counted = []           # the pids the last sample counted

    @staticmethod
    def sweep_left_behind():
        """Remove the empty job cgroups SIGKILLed exmakes left (each build's start)."""
        parent = memory_parent() if os.environ.get(LIMIT_ENV) != "sampling" else None
        if parent is not None:
            sweep(parent)

    @classmethod
    def open(cls, limit_bytes, label):
        """A watch for a new job: with a cgroup when there is a limit and exmake
        may make one, else sampling only."""
        cgroup = None
        if limit_bytes and os.environ.get(LIMIT_ENV) != "sampling":
            parent = memory_parent()
            if parent is not None:
                sweep(parent)
                try:
                    cgroup = MemoryCgroup.create(parent, limit_bytes, label)
                except OSError:
                    cgroup = None  # the hierarchy refused (full, read-only): sample instead
        return cls(limit_bytes, cgroup)

    @property
    def enforced_by(self):
        if not self.limit_bytes:
            return None
        return "cgroup" if self.cgroup else "sampling"

    def join(self):
        """For a job's child, before it execs: enter the cgroup, if there is one."""
        if self.cgroup:
            self.cgroup.join()

    def watch(self, session_id):
        """Count the processes of this session (a job process's pid) as the job's."""
        self.sessions.add(session_id)

    def sample(self):
        """Sum the job's memory now; returns the sum in bytes. Each process counts
        its proportional set size (PSS), not its RSS: pages a forked job script
        still shares with exmake, or its slices with each other, count once
        in all, not once per process (where the kernel has no smaps_rollup,
        RSS it is)."""
        pids = self.cgroup.pids() if self.cgroup else None
        total, ticks, counted = 0, 0, []
        for pid, session, rss, cpu_ticks in _processes(pids):
            if pids is not None or session in self.sessions:
                total += _pss(pid, rss)
                ticks += cpu_ticks
                counted.append(pid)
        self.counted = counted
        self.samples += 1
        self.rss_bytes, self.cpu_s = total, ticks / CLOCK_TICKS
        self.peak_bytes = max(self.peak_bytes, total)
        if self.limit_bytes and not self.cgroup and total > self.limit_bytes:
            self.sampled_over = True
        return total

    def over(self):
        """True once the job went past its limit (the kernel killed for it, or a sample saw it)."""
        if self.cgroup:
            return self.cgroup.oom_kills() > 0
        return self.sampled_over

    def kill_counted(self):
        """SIGKILL every process the last sample counted: a job over its limit may
        have started process groups of its own, which its leader's group signal
        would miss. (A process that left the job's session with setsid is not
        counted, nor killed: only a cgroup holds those.)"""
        for pid in self.counted:
            try:
                os.kill(pid, 9)
            except OSError:
                pass

    def peak(self, rusages=()):
        """The job's peak memory in bytes: from samples when there were any. An
        rusage's ru_maxrss is used only for a job too short to be sampled: the
        kernel carries the high-water mark of the memory a process had before
        it exec'd into it, so a job spawned from exmake reports exmake's size."""
        peaks = [self.peak_bytes] if self.samples else [r.ru_maxrss * KIB for r in rusages if r is not None]
        peaks.append(self.peak_bytes)
        if self.cgroup and self.over():
            peaks.append(self.cgroup.peak_bytes())  # held at the limit: what it reached before dying
        return max(peaks)

    def close(self):
        """Remove the cgroup (killing what the job left in it)."""
        if self.cgroup:
            self.cgroup.remove()
            self.cgroup = None


def usage_record(rusage, wall_s, peak_bytes=None):
    """post.json's usage of one process tree: its rusage (None: unknown) and wall time."""
    record = {"peak_rss_bytes": peak_bytes if peak_bytes is not None else
              (rusage.ru_maxrss * KIB if rusage is not None else 0),
              "user_s": round(rusage.ru_utime, 3) if rusage is not None else None,
              "system_s": round(rusage.ru_stime, 3) if rusage is not None else None,
              "wall_s": round(wall_s, 3)}
    return record


def _processes(pids=None):
    """(session id, resident bytes, CPU ticks) of each process: of `pids`, else
    of all of /proc. The ticks are its own and its reaped children's, user and system."""
    if pids is None:
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                text = f.read()
        except OSError:
            continue  # ended meanwhile
        # The command name may hold spaces and parentheses: fields follow its last ')'.
        fields = text[text.rfind(b")") + 2:].split()
        try:
            yield pid, int(fields[3]), int(fields[21]) * PAGE_BYTES, sum(int(x) for x in fields[11:15])
        except (IndexError, ValueError):
            continue


def _pss(pid, rss):
    """A process's proportional set size in bytes, from /proc/PID/smaps_rollup; `rss` if unknown."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        pass
    return rss
