"""Run one job's command locally: expand placeholders, start, watch, stop.

A job's processes get their own session (process group), so exmake can kill
everything a job started, and a Ctrl-C in the terminal reaches exmake alone,
which then stops the jobs itself. Commands with no shell syntax are executed
directly, as make does, saving a shell start per job; the rest run under
`bash -e -o pipefail -c`.
"""

import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time

from exmake.recipe import PLACEHOLDER_RE
from exmake.slicer.workers import pidfd_or_none

# Any of these means the shell must interpret the command.
SHELL_SYNTAX_RE = re.compile(r"[|&;<>()$`\\\"'*?\[\]#~{}\n!%]|^\s*\w+=")
# Words only a shell understands: a command starting with one goes to bash
# even without shell syntax (`exit 4`, `cd x`, `set -x`).
SHELL_WORDS = frozenset("""
    . : alias bg bind break builtin caller case cd command compgen complete continue declare dirs
    disown do done elif else enable esac eval exec exit export false fc fg fi for function getopts
    hash help history if jobs let local logout mapfile popd printf pushd pwd read readarray readonly
    return select set shift shopt source suspend test then time times trap true type typeset ulimit
    umask unalias unset until wait while [ [[ { }
""".split())
KILL_GRACE_S = 2.0   # SIGTERM first; SIGKILL if the group is still there after this


def expand(template, values, quote=True):
    """Fill `{inputs.x}`-style placeholders; `values` maps the placeholder text to a value or list."""
    def fill(match):
        value = values[match.group(0)]
        items = value if isinstance(value, list) else [value]
        return " ".join(shlex.quote(str(v)) if quote else str(v) for v in items)
    return PLACEHOLDER_RE.sub(fill, template)


def command_argv(template, values):
    """argv for a command: direct exec when it has no shell syntax, else bash."""
    words = template.split()
    bare = PLACEHOLDER_RE.sub("", template)  # placeholders are ours, not shell syntax
    if words and words[0] not in SHELL_WORDS and not SHELL_SYNTAX_RE.search(bare):
        argv = []
        for word in words:
            if PLACEHOLDER_RE.fullmatch(word) and isinstance(values[word], list):
                argv.extend(str(v) for v in values[word])  # a glob input: one argument per file
            else:
                argv.append(expand(word, values, quote=False))
        return argv
    return ["bash", "-e", "-o", "pipefail", "-c", expand(template, values)]


class Process:
    """One running child of a job, leader of its own process group.

    Made by `spawn` (a command, through subprocess) or `fork` (a Python
    callable in a forked copy of exmake: job scripts, where starting a new
    interpreter would cost more than the job).
    """

    def __init__(self, pid, start_error=None):
        self.pid = pid
        self.started = time.monotonic()
        self.returncode = 127 if pid is None else None
        self.start_error = start_error
        self.killed_for = None
        self.label = "command"
        self.ended = None if pid else self.started
        self.pidfd = pidfd_or_none(pid) if pid else None

    @classmethod
    def spawn(cls, argv, cwd, env, stdout_path, stderr_path, pass_fds=(), mem_mib=None):
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            try:
                popen = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, pass_fds=pass_fds,
                    preexec_fn=_address_space_limit(mem_mib) if mem_mib else None)
            except OSError as exc:  # command not found, not executable
                err.write(f"exmake: cannot run {argv[0]}: {exc.strerror}\n".encode())
                return cls(None, exc)
        popen.returncode = 0  # we reap it ourselves; keep Popen from trying later
        return cls(popen.pid)

    @classmethod
    def fork(cls, target):
        """Run `target()` in a forked child in its own session; its return value
        is the exit status. The child never returns into exmake's code."""
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or what is buffered would be written twice
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                os.setsid()
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                status = target()
            except BaseException:  # noqa: BLE001 - a child must end here, whatever happened
                import traceback
                traceback.print_exc()
            finally:
                os._exit(status or 0)
        return cls(pid)

    def poll(self):
        """The exit status once finished (negative: killed by that signal), else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._ended(status)
        return self.returncode

    def _ended(self, status):
        self.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        self.ended = time.monotonic()

    def kill(self, reason):
        """Stop the whole process group: SIGTERM now, SIGKILL via `reap`."""
        if self.poll() is not None:
            return
        self.killed_for = self.killed_for or reason
        _signal_group(self.pid, signal.SIGTERM)

    def reap(self, grace_s=KILL_GRACE_S):
        """Wait for a killed process, escalating to SIGKILL; never leaves a zombie."""
        if self.pid is None:
            return
        deadline = time.monotonic() + grace_s
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        # Children of the command may outlive it; the group goes with the job.
        _signal_group(self.pid, signal.SIGKILL)
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self._ended(status)
        self.close()

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _address_space_limit(mem_mib):
    limit = mem_mib * 1024 * 1024

    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def describe_exit(status, killed_for=None):
    """(exit_code, signal name, reason) for a finished process's status."""
    if killed_for:
        return None, "SIGTERM", killed_for
    if status is not None and status < 0:
        name = signal.Signals(-status).name
        return None, name, f"killed by {name}"
    if status:
        return status, None, f"exit status {status}"
    return 0, None, None
