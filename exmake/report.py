"""What a build shows: job lines, a progress bar on a terminal, colours, CI annotations.

On a terminal (or `--progress always`) a tqdm bar counts the build's jobs
(built / reused / failed, ETA) with a bar per running sliced job; only jobs
that ran or failed get a line above it. Elsewhere (CI logs, pipes) there is
no bar and no carriage return: one line per job. Failures always show the
path of their log and its last lines. Colour follows the terminal, NO_COLOR
(off) and FORCE_COLOR (on). Under GitHub Actions a failed job is also an
`::error` annotation pointing at its line in the recipe.

Quiet (`-q`, as `make -s`): a build that succeeds prints nothing at all;
a failed job still gets its line, its log's tail and the summary. Only
`Reporter.write` is silenced, so every note a build writes (waits, notes,
unpublished results, submissions) goes with it.
"""

import os
import sys
import time

STATE_WORDS = {"built": "built", "reused": "reused", "failed": "FAILED", "skipped": "skipped",
               "fresh": "fresh", "stale": "stale", "submitted": "submit", "cancelled": "cancel"}
COLOURS = {"built": "32", "failed": "1;31", "skipped": "33", "reused": "2", "fresh": "2",
           "stale": "33", "cancelled": "33"}
PROGRESS_MODES = ("auto", "always", "never")


def show_path(path):
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _terminal_size(stream):
    try:
        return tuple(os.get_terminal_size(stream.fileno()))
    except (OSError, ValueError, AttributeError):
        return (0, 0)


def colour_enabled(stream, environ=os.environ):
    if environ.get("NO_COLOR"):
        return False
    if environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


class Reporter:
    """Prints to `stream` (stdout). `quiet`: failed jobs and, when any failed, the summary."""

    def __init__(self, stream=None, quiet=False, verbose=False, enabled=True, progress="auto",
                 job_lines=None, hide_reused=False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.verbose = verbose
        self.enabled = enabled
        tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar_mode = enabled and not quiet and (progress == "always" or (progress == "auto" and tty))
        self.colour = enabled and colour_enabled(self.stream)
        self.github = os.environ.get("GITHUB_ACTIONS") == "true"
        self.job_lines = job_lines or {}     # name -> (recipe path, line), for annotations
        self.hide_reused = hide_reused
        self.bar = None
        self.slice_bars = {}
        self.counts = {}

    def write(self, text):
        """A line of the build's story: silent under -q (see `_emit`)."""
        if not self.quiet:
            self._emit(text)

    def _emit(self, text):
        """A line that -q does not silence: a failure and what explains it."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    # -- the build's life ----------------------------------------------------

    def start(self, total):
        if self.bar_mode and total:
            from tqdm import tqdm  # 50 ms to import: only when a bar is drawn
            # A terminal that reports no size (a bare pty) still gets an 80x24 display:
            # tqdm would otherwise draw nothing at all.
            sized = _terminal_size(self.stream) != (0, 0)
            self.bar = tqdm(total=total, file=self.stream, unit="job", dynamic_ncols=sized,
                            ncols=None if sized else 80, nrows=None if sized else 24, leave=False,
                            bar_format="exmake {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} jobs "
                                       "[{elapsed}<{remaining}] {postfix}")

    def job_started(self, name, jobid):
        if self.verbose and not self.bar_mode:
            self.write(f"  start   {jobid}")

    def job_done(self, name, outcome):
        self.counts[outcome.state] = self.counts.get(outcome.state, 0) + 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in self.counts.items()), refresh=False)
            self._close_slice_bar(name)
        quiet_line = outcome.state in ("reused", "fresh") and (
            self.hide_reused or (self.bar_mode and not self.verbose))
        if outcome.state == "failed":
            self._emit(job_line(name, outcome, self.verbose, self.colour))
        elif not quiet_line:
            self.write(job_line(name, outcome, self.verbose, self.colour))
        if outcome.state == "failed":
            self._failure_details(name, outcome)

    def tick(self, running):
        """Refresh the per-job slice bars from running tasks' progress()."""
        if self.bar is None:
            return
        from tqdm import tqdm
        for name, task in running.items():
            progress = task.progress() if hasattr(task, "progress") else None
            if progress is None:
                continue
            done, total, *unit = progress  # a chunked job counts chunks
            unit = unit[0] if unit else "slices"
            bar = self.slice_bars.get(name)
            if bar is None:
                bar = self.slice_bars[name] = tqdm(
                    total=total, file=self.stream, leave=False, position=len(self.slice_bars) + 1,
                    ncols=self.bar.ncols, nrows=self.bar.nrows, unit=unit,
                    bar_format="  {desc} {n_fmt}/{total_fmt} {unit} |{bar}| {elapsed}", desc=name)
            if (bar.total, bar.unit) != (total, unit):  # its chunks are known: count them now
                bar.reset(total=total)
                bar.unit = unit
            bar.update(done - bar.n)
        self.bar.refresh()

    def _close_slice_bar(self, name):
        bar = self.slice_bars.pop(name, None)
        if bar is not None:
            bar.close()

    def close(self):
        for name in list(self.slice_bars):
            self._close_slice_bar(name)
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _failure_details(self, name, outcome):
        detail = outcome.detail
        if detail.get("log"):
            self._emit(f"          log: {show_path(detail['log'])}")
        for line in detail.get("stderr_tail", [])[-10:]:
            self._emit(f"          | {line}")
        if self.github and self.enabled:
            self._emit(github_error(name, outcome, self.job_lines.get(name)))

    def summary(self, outcomes, elapsed):
        self.close()
        if any(o.state == "failed" for o in outcomes.values()):
            self._emit(summary_line(outcomes, elapsed))
        else:
            self.write(summary_line(outcomes, elapsed))


def job_line(name, outcome, verbose=False, colour=False):
    word = STATE_WORDS[outcome.state]
    label = outcome.jobid or name
    padded = f"{word:<7}"
    if colour and outcome.state in COLOURS:
        padded = f"\033[{COLOURS[outcome.state]}m{word}\033[0m" + " " * (7 - len(word))
    parts = [f"  {padded} {label:<20}"]
    if outcome.state == "built":
        parts.append(f"{outcome.duration:7.2f}s")
    if outcome.state == "failed" and outcome.detail.get("reason"):
        parts.append(outcome.detail["reason"])
    if outcome.detail.get("workdir"):  # reused in place from another workdir (`reuse_from:`)
        parts.append(f"from {show_path(outcome.detail['workdir'])}")
    reasons = outcome.reasons if (verbose or outcome.state not in ("reused", "fresh")) else []
    if reasons:
        parts.append("(" + "; ".join(reasons) + ")")
    return " ".join(parts).rstrip()


def github_error(name, outcome, where):
    """A GitHub Actions `::error` workflow command for a failed job."""
    def escape(text, data=True):
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text if data else text.replace(":", "%3A").replace(",", "%2C")
    message = outcome.detail.get("reason") or "failed"
    tail = outcome.detail.get("stderr_tail") or []
    body = escape("\n".join([message, *tail[-10:]]))
    location = f"file={escape(show_path(where[0]), False)},line={where[1]}," if where else ""
    return f"::error {location}title={escape(f'exmake: job {name} failed', False)}::{body}"


def state_counts(outcomes):
    """`1 built, 2 reused`: how many jobs ended in each state, in a fixed order."""
    counts = {}
    for outcome in outcomes.values():
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
    order = ("built", "reused", "fresh", "stale", "submitted", "failed", "skipped", "cancelled")
    return ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))


def summary_line(outcomes, elapsed):
    total = len(outcomes)
    return f"exmake: {total} job{'s' if total != 1 else ''}: {state_counts(outcomes)} in {elapsed:.2f}s"


def status_tree(running, started, done, total, now=None):
    """The lines SIGUSR1 prints: each running job (and its slices) with elapsed time."""
    now = now or time.monotonic()
    lines = [f"exmake: {now - started:.1f}s into the build, {done} of {total} jobs done, "
             f"{len(running)} running"]
    for name, task in running.items():
        lines.extend(task.describe(now) if hasattr(task, "describe") else [f"  {name}"])
    return lines


GROUP_SHOWN_VALUES = 8   # a family line names this many values, then "..."


def grouped_lines(names, family_of, agreement, line_for):
    """Lines for a human view where a family's jobs that agree share one line.

    `family_of(name)` is the job's family or None; `agreement(name)` is what
    must be equal for jobs to share a line (state and reasons, say);
    `line_for(label, names)` renders one line for a label such as
    `map@{A,B,C}` (or a plain job name) and the jobs it stands for. A group
    stands where its first job would; jobs that disagree get lines of their own.
    """
    groups, index = [], {}
    for name in names:
        family = family_of(name)
        key = (family, agreement(name)) if family else None
        if key is not None and key in index:
            groups[index[key]].append(name)
        else:
            if key is not None:
                index[key] = len(groups)
            groups.append([name])
    return [line_for(family_label(group) if len(group) > 1 else group[0], group) for group in groups]


def family_of(name):
    """The family of a job name: `map` for the instance `map@A`, else None."""
    return name.split("@", 1)[0] if "@" in name else None


def family_label(names):
    """`map@{A,B,C}` for instances of one family (`train@{cnn,0.1 xgb,0.1}` with
    several variables), the values cut short after GROUP_SHOWN_VALUES."""
    family = names[0].split("@", 1)[0]
    values = [name.split("@", 1)[1] for name in names]
    separator = " " if any("," in v for v in values) else ","
    shown = separator.join(values[:GROUP_SHOWN_VALUES])
    more = f"{separator}..." if len(values) > GROUP_SHOWN_VALUES else ""
    return f"{family}@{{{shown}{more}}}"
