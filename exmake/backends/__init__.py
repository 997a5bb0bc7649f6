"""Cluster backends: render batch scripts, submit them with dependencies, poll, cancel.

One interface (`Backend`) with two implementations, Slurm and Torque/PBS.
Every call to a scheduler goes through a backend's `_run`, so the number of
scheduler queries can be counted and bounded. `select_backend` picks one by
name; `auto` asks `sbatch` first, then `qsub`, else builds locally.
"""

from exmake.backends.base import FINAL_STATES, Backend, JobState, SchedulerError, available
from exmake.errors import UsageError

__all__ = ["FINAL_STATES", "Backend", "JobState", "SchedulerError", "available", "select_backend", "NAMES"]
NAMES = ("local", "slurm", "torque", "auto")


def select_backend(name):
    """A Backend for `name`, or None for a local build."""
    if name not in NAMES:
        raise UsageError(f"--backend {name}: choose one of {', '.join(NAMES)}")
    if name == "auto":
        name = "slurm" if available("sbatch") else "torque" if available("qsub") else "local"
    if name == "slurm":
        from exmake.backends.slurm import SlurmBackend
        return SlurmBackend()
    if name == "torque":
        from exmake.backends.torque import TorqueBackend
        return TorqueBackend()
    return None
