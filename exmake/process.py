"""The life of every process exmake starts for a job: start, watch, stop, reap.

Shell commands (`spawn`), job-script runners (`fork`) and slice workers
(`fork_child`, used by exmake.slicer.workers) all start here, and every rule
below is one a defect once broke:

- A job's process leads its own session and process group, so exmake can
  kill everything the job started, and a Ctrl-C in the terminal reaches
  exmake alone, which then stops the jobs itself.
- The group leader is not reaped until its group has been killed. `poll`
  looks at its exit with WNOWAIT, leaving a zombie: while the zombie exists
  the kernel hands its pid to no new process or group, so `killpg(pid)`
  reaches the job's own group and nobody else's. Once reaped (`release`), a
  process is never signalled again: its pid may belong to a stranger by
  then, and SIGKILLing a stranger's group is the worst thing exmake can do.
- Stopping is SIGTERM to the group, then SIGKILL to the group KILL_GRACE_S
  later. The owner is told when the SIGKILL is due (`wake_at`) and waits in
  select until then: nothing sleeps in a loop, nothing spins.
- A forked child closes every descriptor but 0, 1, 2 and those it is told to
  keep: a job-script runner must not hold other jobs' key locks (a second
  build of a failed key would wait for an unrelated script to end), a slice
  not its siblings' pipes. Its stdin is /dev/null. `spawn` gets the same
  from subprocess (close_fds, pass_fds).
- A job's memory is limited by what it uses, not by its address space
  (RLIMIT_AS stops a JVM from starting): the owner passes `in_child`, run in
  the child before the job's code (joining a memory cgroup), and samples
  what it uses (exmake.usage). The owner may `kill` a job over its limit at
  once: memory does not wait out a grace period.
- Reaping uses wait4, so the owner learns what the process and everything it
  reaped used (`rusage`: CPU seconds, peak resident memory).
- A job's environment is set in the child only: exmake's own os.environ is
  never changed for a job (a later job, or a later watch rebuild, must see
  the outer value).

A leaf module: it imports nothing from exmake, so slicer/ may use it.
"""

import functools
import gc
import os
import shutil
import selectors
import signal
import subprocess
import sys
import time

KILL_GRACE_S = 2.0    # after SIGTERM, SIGKILL the group if its leader has not ended by then
POLL_S = 0.01         # where pidfds do not exist, look for ended processes this often


def pidfd_or_none(pid):
    """A descriptor that becomes readable when `pid` exits (Linux 5.3+), else None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class Process:
    """One running child of a job, leader of its own process group."""

    def __init__(self, pid, label="command", start_error=None):
        self.pid = pid
        self.label = label
        self.started = time.monotonic()
        self.start_error = start_error
        self.killed_for = None     # why exmake stopped it, if it did
        self.term_at = None        # when SIGTERM was sent
        self.kill_sent = False
        self.reaped = pid is None
        self.returncode = 127 if pid is None else None
        self.ended = self.started if pid is None else None
        self.pidfd = pidfd_or_none(pid) if pid else None
        self.rusage = None         # wait4's, once reaped

    @classmethod
    def spawn(cls, argv, cwd, env, stdout_path, stderr_path, pass_fds=(), in_child=None, label="command"):
        """Start `argv` in a new session with output to two log files;
        `in_child()` runs in the child before the exec."""
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            try:
                popen = subprocess.Popen(
                    argv, executable=resolve(argv[0], env.get("PATH", os.defpath)),
                    cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, close_fds=True, pass_fds=pass_fds,
                    preexec_fn=in_child)
            except OSError as exc:  # command not found, not executable
                err.write(f"exmake: cannot run {argv[0]}: {exc.strerror}\n".encode())
                return cls(None, label, exc)
            except subprocess.SubprocessError as exc:  # in_child failed (a cgroup it could not join)
                err.write(f"exmake: cannot start {argv[0]}: {exc}\n".encode())
                return cls(None, label, exc)
        popen.returncode = 0  # we reap it ourselves; keep Popen from trying later
        return cls(popen.pid, label)

    @classmethod
    def fork(cls, target, env=None, keep_fds=(), label="job script", in_child=None):
        """Run `target()` in a forked child leading a new session (after
        `in_child()`); its return value is the exit status. The child never
        returns into exmake's code."""
        def body():
            if in_child:
                in_child()
            return target()
        return cls(fork_child(body, env=env, keep_fds=keep_fds, new_session=True), label)

    def fd(self):
        """The pidfd while the leader runs (readable once it ended), else None."""
        return self.pidfd if self.returncode is None else None

    def poll(self):
        """The exit status once the leader ended (negative: killed by that
        signal), else None. Never reaps: see the module docstring."""
        if self.returncode is None:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None and info.si_pid:
                self.returncode = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
                self.ended = time.monotonic()
        return self.returncode

    def terminate(self, reason):
        """SIGTERM the group of a still-running leader; `escalate` SIGKILLs it
        after the grace. A leader that has already ended is left be."""
        if self.reaped or self.poll() is not None or self.term_at is not None:
            return
        self.killed_for = reason
        self.term_at = time.monotonic()
        _signal_group(self.pid, signal.SIGTERM)

    def kill(self, reason):
        """SIGKILL the group of a still-running leader now (a job over its memory limit)."""
        if self.reaped or self.poll() is not None or self.kill_sent:
            return
        self.killed_for = reason
        _signal_group(self.pid, signal.SIGKILL)
        self.kill_sent = True

    def wake_at(self):
        """The monotonic time the SIGKILL is due, if one is."""
        if self.term_at is None or self.kill_sent or self.returncode is not None:
            return None
        return self.term_at + KILL_GRACE_S

    def escalate(self, now=None):
        """SIGKILL the group if SIGTERM went unheeded for the grace period."""
        due = self.wake_at()
        if due is not None and (now or time.monotonic()) >= due and self.poll() is None:
            _signal_group(self.pid, signal.SIGKILL)
            self.kill_sent = True

    def release(self):
        """Kill what is left of the group, then reap the leader (waiting for it
        if it still runs). After this the process is never signalled again."""
        if self.reaped:
            return
        # Children of the command may outlive it; the group goes with the job.
        # The leader is still unreaped here, so its pgid is still the job's.
        _signal_group(self.pid, signal.SIGKILL)
        try:
            _, status, self.rusage = os.wait4(self.pid, 0)
        except ChildProcessError:  # reaped already (an interrupt cut in after the wait4)
            status = None
        if self.returncode is None:
            self.returncode = (-signal.SIGKILL if status is None else
                               -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
            self.ended = time.monotonic()
        self.reaped = True
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def stop_all(processes, reason, grace_s=KILL_GRACE_S):
    """Stop and reap `processes` together: SIGTERM every group, wait (in
    select, not a sleep loop) until every leader ended or the one shared
    grace is over, then SIGKILL and reap them all."""
    for p in processes:
        p.terminate(reason)
    deadline = time.monotonic() + grace_s
    with selectors.DefaultSelector() as selector:
        for p in processes:
            if p.fd() is not None:
                selector.register(p.fd(), selectors.EVENT_READ, p)
        while True:
            running = [p for p in processes if not p.reaped and p.poll() is None]
            left = deadline - time.monotonic()
            if not running or left <= 0:
                break
            if all(p.pidfd is not None for p in running):
                for key, _ in selector.select(left):
                    selector.unregister(key.fd)
            else:
                time.sleep(min(left, POLL_S))
    for p in processes:
        p.release()


def fork_child(body, env=None, keep_fds=(), new_session=False):
    """Fork; in the child run `body()` and exit with its return value as status.

    Returns the child's pid in the parent. In the child: a new session if
    asked, SIGINT/SIGTERM back to their defaults, stdin from /dev/null,
    every descriptor but 0-2 and `keep_fds` closed, `env` added to
    os.environ. The child never returns into its caller.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or what is buffered would be written twice
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        if new_session:
            os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        # The parent's objects are never finalised here: one holding a
        # descriptor closed below would close whatever reuses its number.
        gc.freeze()
        close_other_fds(keep_fds)
        if env:
            os.environ.update(env)
        status = body()
    except BaseException:  # noqa: BLE001 - a child must end here, whatever happened
        try:
            import traceback
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(status if isinstance(status, int) else 1)


def close_other_fds(keep_fds):
    """Close every descriptor above 2 except `keep_fds`."""
    low = 3
    for fd in sorted(fd for fd in set(keep_fds) if fd is not None and fd >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _max_fd())


def _max_fd():
    try:
        return max(os.sysconf("SC_OPEN_MAX"), 256)
    except (ValueError, OSError):
        return 65536


def describe_exit(status, killed_for=None):
    """(exit_code, signal name, reason) for a finished process's status;
    `killed_for` (why exmake stopped it) is the reason when given."""
    exit_code, sig = status, None
    if status is not None and status < 0:
        exit_code, sig = None, signal.Signals(-status).name
    if killed_for:
        reason = killed_for
    elif sig:
        reason = f"killed by {sig}"
    elif status:
        reason = f"exit status {status}"
    else:
        reason = None
    return exit_code, sig, reason


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@functools.lru_cache(maxsize=256)
def resolve(name, search_path):
    """The file `name` executes as, searched once per build (Build.run clears
    the cache: watch mode lives for hours) on `search_path` (a
    job's PATH): execvp would try each PATH directory again for every job
    (a dozen failed execve a job on a usual PATH). None for a name with a
    slash, or one not found (then Popen searches, and says what is wrong)."""
    if os.sep in name:
        return None
    return shutil.which(name, path=search_path)
