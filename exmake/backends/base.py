"""What every cluster backend shares: the Backend interface, job states, errors.

exmake.backends picks a backend by name; exmake.backends.slurm and
exmake.backends.torque implement this interface. Kept apart from the
package's __init__ so that the implementations import nothing that imports
them (no import cycle).
"""

import re

from exmake.errors import ExmakeError

# A directive value made only of these is written as it is (shlex's safe set
# less `%`, which sbatch's file name patterns give a meaning); others are quoted.
PLAIN_VALUE_RE = re.compile(r"^[\w@+=:,./-]+$")
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
                "PREEMPTED", "BOOT_FAIL", "DEADLINE", "NEVER_RUNS")


class SchedulerError(ExmakeError):
    """The scheduler refused a command (submission, query, cancel)."""

    exit_code = 1


class JobState:
    """What the scheduler says of one job: state (Slurm's words), reason, exit code."""

    __slots__ = ("state", "reason", "exit_code")

    def __init__(self, state, reason="", exit_code=None):
        self.state, self.reason, self.exit_code = state, reason, exit_code

    @property
    def final(self):
        return self.state in FINAL_STATES

    def __repr__(self):
        return f"JobState({self.state!r}, {self.reason!r}, {self.exit_code!r})"


class Backend:
    """Base class: subclasses set `name`, `directive_prefix` and implement the rest."""

    name = None
    command = None        # the program whose answer means "this scheduler is here"
    arrays = False        # whether it submits job arrays

    def __init__(self):
        self.queries = 0  # scheduler status queries made, for tests and -v

    def _run(self, argv, check=True, cwd=None):
        import subprocess
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
        except FileNotFoundError:
            raise SchedulerError(f"{argv[0]} not found: is the {self.name} client installed?") from None
        except subprocess.TimeoutExpired:
            raise SchedulerError(f"{' '.join(argv[:2])} did not answer in 120 s") from None
        if check and proc.returncode != 0:
            raise SchedulerError(f"{' '.join(argv)} failed (exit {proc.returncode}): "
                                 f"{(proc.stderr or proc.stdout).strip()}")
        return proc

    def directive_value(self, value):
        """`value` as one word of a directive line, quoted if it must be (a
        project path with a space is an ordinary thing)."""
        value = str(value)
        if PLAIN_VALUE_RE.match(value):
            return value
        if any(c in value for c in "\n\r\0"):
            raise SchedulerError(f"{value!r} cannot be written in a {self.prefix} directive: it holds a line break")
        return self._quote(value)

    def path_problem(self, path):
        """Why the scheduler could not write a job's logs under `path`, or None."""
        if any(c in path for c in "\n\r\0"):
            return "a path with a line break cannot be written in a batch script directive"
        return None

    def submit_line(self, script, deps, ids_array):
        """The shell line submit.sh uses: the same argv as `submit`, each word
        quoted, with `"${ARRAY[dep]}"` where a dependency's scheduler id goes.
        `deps`: [(kind, label, suffix)], kind as in `submit`; the id is the
        label's with `suffix` after it (an array's task: "_7")."""
        import shlex
        marks = [(kind, f"\0{i}\0{suffix}") for i, (kind, _, suffix) in enumerate(deps)]  # no argv word holds a NUL
        words = []
        for arg in self.submit_argv(script, marks):
            pieces = re.split("\0(\\d+)\0", arg)  # literal, index, literal, ...
            word = "".join(f'"${{{ids_array}[{shlex.quote(deps[int(p)][1])}]}}"' if i % 2 else shlex.quote(p) if p else ""
                           for i, p in enumerate(pieces))
            words.append(word or "''")
        return " ".join(words)

    def limits(self):
        """What the site allows: Limits(max_tasks per array, max_submit jobs in
        the queue at once, or None). Without arrays, max_tasks is 1."""
        return Limits(1, None)

    # subclasses: _quote(value) -> str (a word of a directive line),
    # directives(resources, cores, job_name, out, err, workdir, array=None) -> [str],
    # submit_argv(script, deps, array=None), submit(script, deps, array=None) -> id, where deps is
    # [(kind, scheduler id)] with kind "afterok", "aftercorr" or "afterany" (arrays.py says when),
    # query(ids) -> {id: JobState} (an array task's id is "ARRAY_TASK"), cancel(ids)


class Limits:
    """A site's limits on submissions."""

    __slots__ = ("max_tasks", "max_submit")

    def __init__(self, max_tasks, max_submit):
        self.max_tasks, self.max_submit = max_tasks, max_submit

    def __repr__(self):
        return f"Limits(max_tasks={self.max_tasks!r}, max_submit={self.max_submit!r})"


def available(command):
    """Whether a scheduler client is installed and answers."""
    import shutil
    import subprocess
    if not shutil.which(command):
        return False
    try:
        return subprocess.run([command, "--version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
