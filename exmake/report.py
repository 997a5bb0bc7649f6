"""What a build prints: one line per job that ran or was reused, then a summary.

Failures show the path of their log and its last lines. Paths are shown
relative to the current directory when they are inside it.
"""

import os
import sys

STATE_WORDS = {"built": "built", "reused": "reused", "failed": "FAILED", "skipped": "skipped",
               "fresh": "fresh", "stale": "stale", "submitted": "submit"}


def show_path(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


class Reporter:
    """Prints job lines to `stream` (stdout); `quiet` keeps only failures and the summary."""

    def __init__(self, stream=None, quiet=False, verbose=False, enabled=True):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.verbose = verbose
        self.enabled = enabled

    def write(self, text):
        if self.enabled:
            self.stream.write(text + "\n")
            self.stream.flush()

    def job_started(self, name, jobid):
        if self.verbose:
            self.write(f"  start   {jobid}")

    def job_done(self, name, outcome):
        if self.quiet and outcome.state != "failed":
            return
        self.write(job_line(name, outcome, self.verbose))
        if outcome.state == "failed":
            self._failure_details(outcome)

    def _failure_details(self, outcome):
        detail = outcome.detail
        if detail.get("log"):
            self.write(f"          log: {show_path(detail['log'])}")
        for line in detail.get("stderr_tail", [])[-10:]:
            self.write(f"          | {line}")

    def summary(self, outcomes, elapsed):
        self.write(summary_line(outcomes, elapsed))


def job_line(name, outcome, verbose=False):
    word = STATE_WORDS[outcome.state]
    label = outcome.jobid or name
    parts = [f"  {word:<7} {label:<20}"]
    if outcome.state == "built":
        parts.append(f"{outcome.duration:7.2f}s")
    if outcome.state == "failed" and outcome.detail.get("reason"):
        parts.append(outcome.detail["reason"])
    reasons = outcome.reasons if (verbose or outcome.state != "reused") else []
    if reasons:
        parts.append("(" + "; ".join(reasons) + ")")
    return " ".join(parts).rstrip()


def summary_line(outcomes, elapsed):
    counts = {}
    for outcome in outcomes.values():
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    order = ("built", "reused", "fresh", "stale", "submitted", "failed", "skipped")
    parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    total = len(outcomes)
    return f"exmake: {total} job{'s' if total != 1 else ''}: {', '.join(parts)} in {elapsed:.2f}s"
