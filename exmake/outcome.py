"""Outcome: how one job of a build (or a dry run) ended; what every layer passes up.

A leaf: the scheduler, the rebuilder, job runs, the cluster build and the
reporters all speak it, and none of them needs another to do so.
"""


class Outcome:
    """How one job of a build ended.

    state: built | reused | failed | skipped | cancelled (a build), fresh | stale (a dry run),
    submitted (a cluster build that did not wait).
    outputs: [[path, digest], ...] for dependents' keys. A plain class, not a
    dataclass: the no-op path imports this and dataclasses cost 5 ms to import.
    """

    __slots__ = ("state", "jobid", "path", "reasons", "duration", "outputs", "detail")

    def __init__(self, state, jobid=None, path=None, reasons=None, duration=0.0, outputs=None,
                 detail=None):
        self.state = state
        self.jobid = jobid
        self.path = path
        self.reasons = reasons or []
        self.duration = duration
        self.outputs = outputs
        self.detail = detail or {}

    def __repr__(self):
        return f"Outcome({self.state!r}, {self.jobid!r}, reasons={self.reasons!r})"
