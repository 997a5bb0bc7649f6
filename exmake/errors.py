"""The ExmakeError hierarchy: every error exmake reports on purpose.

Each class carries its exit status; only `cli.main` turns one into an exit.
Exit statuses: 0 success, 1 a job failed, 2 usage or recipe error,
130 interrupted.
"""


class ExmakeError(Exception):
    """An error with a message meant for the user and an exit status."""

    exit_code = 2

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class UsageError(ExmakeError):
    """Bad command-line arguments or a bad job reference."""


class RecipeError(ExmakeError):
    """A recipe that cannot be used; names the file, the line and the key."""

    def __init__(self, path, line, key, problem):
        where = f"{path}:{line}" if line else str(path)
        what = f"{key}: {problem}" if key else problem
        super().__init__(f"{where}: {what}")
        self.path, self.line, self.key, self.problem = path, line, key, problem


class JobFailed(ExmakeError):
    """One or more jobs failed; their reports were already printed."""

    exit_code = 1


class StaleJob(ExmakeError):
    """A job was asked for by name but its current result is not built."""

    exit_code = 1


class Interrupted(ExmakeError):
    """SIGINT or SIGTERM stopped the build."""

    exit_code = 130
