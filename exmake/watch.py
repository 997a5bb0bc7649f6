"""The watch loop: build, then build again whenever something the build reads changes.

Watched (watchdog: inotify where the OS has it, polling with --poll): the
recipe, every input file, directory and glob, every job script and the
local modules and depend_extra files it uses. Events inside the workdir and
the results directory are ignored, so a build never triggers itself.
Changes are debounced (DEBOUNCE_S of quiet), then one build runs; the
build itself decides what is stale, so only affected jobs run. A change
that arrives *during* a build cancels the running jobs it affects (and
keeps them from starting), and the next build re-plans at once. A recipe
that no longer loads prints its error and the watch goes on.
"""

import fnmatch
import os
import queue
import selectors
import time
from datetime import datetime

from exmake.errors import ExmakeError, Interrupted, RecipeError
from exmake.report import state_counts
from exmake.signals import SignalGuard

DEBOUNCE_S = 0.2      # quiet needed after the last change before building
MAX_DEBOUNCE_S = 2.0  # build anyway after this long of continuous changes
# watchdog event types that may mean new content ("closed" is close-after-write)
CONTENT_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})


class WatchSet:
    """What one recipe reads: exact files, directories watched whole, glob
    patterns, and directories whose listing decides a job script's imports.

    A job script's files and import directories come from
    exmake.method.code_identity, the same answer the job key and the no-op
    stamp use, so the three never disagree about what a script depends on.
    """

    def __init__(self, recipe):
        from exmake.inputs import glob_base, glob_matcher
        from exmake.method import MethodError, code_identity
        self.recipe = recipe
        self.excluded = [os.path.realpath(recipe.workdir), os.path.realpath(recipe.results)]
        self.files = {p: None for p in (recipe.path, os.path.realpath(recipe.path))}  # path -> jobs (None: all)
        self.trees = {}                                     # dir -> jobs (anything under it)
        self.globs = {}                                     # (base, deep, matcher) -> jobs
        self.absent = {}                                    # path -> jobs (a module that would shadow one)
        self.listings = set()                               # dirs whose entries decide families
        self.replan_paths = set()                           # files (and missing dirs) that decide them
        # What decided the families: a change there re-plans (the next build
        # adds or drops instances) but cancels no running job.
        for path, sig in recipe.family_sources:
            if sig is None:  # not there yet: its appearance, or an ancestor's, counts
                while path != os.path.dirname(path) and not os.path.exists(path):
                    self.replan_paths.add(path)
                    path = os.path.dirname(path)
                self.listings.add(os.path.realpath(path))
            elif os.path.isdir(path):
                self.listings.add(os.path.realpath(path))
            else:
                self.replan_paths.update({os.path.abspath(path), os.path.realpath(path)})
        for name, job in recipe.jobs.items():
            for spec in job.inputs.values():
                if spec.kind == "file":
                    self._add_file(spec.path, name)
                elif spec.kind == "dir":
                    self.trees.setdefault(os.path.realpath(spec.path), set()).add(name)
                else:
                    key = (*glob_base(spec.root, spec.pattern), glob_matcher(spec.root, spec.pattern))
                    self.globs.setdefault(key, set()).add(name)
            if job.method:
                try:
                    code = code_identity(job.method)
                    files, absent = [p for p, _ in code.files], code.absent
                except MethodError as exc:  # the build says so; watch where a fix would land
                    files, absent = [exc.path or job.method.path], []
                for path in files:
                    self._add_file(path, name)
                for path in absent:
                    self.absent.setdefault(path, set()).add(name)

    def _add_file(self, path, name):
        """Watch a file both where it is named and where it really is: a symlink
        pointed elsewhere changes the first, an edit of its target the second.
        `name` None: every job (the file decides the recipe's jobs)."""
        for where in {os.path.abspath(path), os.path.realpath(path)}:
            if name is None:
                self.files[where] = None
            elif self.files.get(where, set()) is not None:
                self.files.setdefault(where, set()).add(name)

    def directories(self):
        """{directory: recursive?} to give the observer."""
        dirs = {}
        for path in self.files:
            dirs.setdefault(os.path.dirname(path), False)
        for path in self.absent:
            dirs.setdefault(os.path.dirname(path), False)
        for path in self.listings:
            dirs.setdefault(path, False)
        for path in self.replan_paths:
            dirs.setdefault(os.path.dirname(path), False)
        for path in self.trees:
            dirs[path] = True
        for base, deep, _ in self.globs:
            dirs[base] = dirs.get(base, False) or deep
        return {d: r for d, r in dirs.items() if os.path.isdir(d)}

    def jobs_for(self, path):
        """The jobs a change at `path` concerns: a set, None for all, or empty if none."""
        real = os.path.realpath(path)
        if any(real == x or real.startswith(x + os.sep) for x in self.excluded):
            return set()
        named = os.path.abspath(path)
        if named in self.files or real in self.files:
            return _union(self.files.get(named, set()), self.files.get(real, set()))
        jobs = set()
        jobs |= self.absent.get(path, set()) | self.absent.get(real, set())
        for tree, names in self.trees.items():
            if real.startswith(tree + os.sep) or real == tree:
                jobs |= names
        for (_, _, pattern), names in self.globs.items():
            if fnmatch.fnmatch(named, pattern) or fnmatch.fnmatch(real, pattern):
                jobs |= names
        return jobs

    def replans(self, path):
        """Whether a change at `path` may add or drop family instances: worth a
        new build, but no reason to cancel a running job."""
        real, named = os.path.realpath(path), os.path.abspath(path)
        return (named in self.replan_paths or real in self.replan_paths
                or os.path.dirname(real) in self.listings or os.path.dirname(named) in self.listings)

    def with_dependents(self, names):
        """`names` and every job that depends on them, transitively."""
        if names is None:
            return set(self.recipe.jobs)
        result, grew = set(names), True
        while grew:
            grew = False
            for name, job in self.recipe.jobs.items():
                if name not in result and result & set(job.deps.values()):
                    result.add(name)
                    grew = True
        return result


def _union(a, b):
    """Two `jobs_for` answers together (None, meaning every job, wins)."""
    return None if a is None or b is None else a | b


class _Changes:
    """Paths reported by the observer's thread, and a pipe that wakes the main thread."""

    def __init__(self):
        self.paths = queue.SimpleQueue()
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def dispatch(self, event):  # watchdog calls this on its own thread
        if event.event_type not in CONTENT_EVENTS:
            return  # opened / closed-without-writing: a job reading its inputs
        if event.is_directory and event.event_type == "modified":
            return  # a directory's mtime: its entries' own events say what changed
        for path in (event.src_path, getattr(event, "dest_path", None)):
            if path:
                self.paths.put(os.fsdecode(path))
        try:
            os.write(self.write_fd, b"x")
        except BlockingIOError:
            pass  # the pipe is full: the main thread has plenty to wake it

    def drain(self):
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        paths = []
        while True:
            try:
                paths.append(self.paths.get_nowait())
            except queue.Empty:
                return paths


class Watcher:
    """Build, watch, rebuild; until interrupted (exit 130)."""

    def __init__(self, recipe_path, targets, make_build, poll=False, out=print):
        self.recipe_path = os.path.abspath(recipe_path)
        self.targets = targets
        self.make_build = make_build      # (ws, targets, scheduler hooks) -> {name: Outcome}
        self.poll = poll
        self.out = out
        self.changes = _Changes()
        self.watch_set = None
        self.pending = []                 # changed paths not yet built
        self.scheduled = None             # {directory: recursive} given to the observer
        self.builds = 0

    def run(self):
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver
        self.observer = (PollingObserver(timeout=0.1) if self.poll else Observer())
        self.observer.start()
        try:
            with SignalGuard():  # SIGTERM, like Ctrl-C, ends the watch with 130
                self._build("first build")
                while True:
                    reason = self._wait_for_changes()
                    self._build(reason)
        finally:
            self.observer.stop()
            self.observer.join(timeout=5)

    def _schedule(self):
        """Watch the directories the current watch set needs. Only when they
        change: while the observer is rescheduled, events can be missed."""
        dirs = self.watch_set.directories() if self.watch_set else {}
        dirs.setdefault(os.path.dirname(self.recipe_path), False)
        if dirs == self.scheduled:
            return
        self.observer.unschedule_all()
        for directory, recursive in dirs.items():
            self.observer.schedule(self, directory, recursive=recursive)
        self.scheduled = dirs

    def dispatch(self, event):
        self.changes.dispatch(event)

    def _relevant(self, paths):
        """The changed paths that concern the build, as (path, jobs or None)."""
        found = []
        for path in paths:
            if os.path.realpath(path) == os.path.realpath(self.recipe_path):
                found.append((path, None))
            elif self.watch_set is not None:
                jobs = self.watch_set.jobs_for(path)
                if jobs is None or jobs:
                    found.append((path, jobs))
                elif self.watch_set.replans(path):
                    found.append((path, set()))  # build again; cancel nothing
        return found

    def _wait_for_changes(self):
        """Block until a relevant change has settled; returns a short reason."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.changes.read_fd, selectors.EVENT_READ)
            first = last = time.monotonic() if self.pending else None
            while True:
                timeout = None if last is None else max(0.0, last + DEBOUNCE_S - time.monotonic())
                if selector.select(timeout):
                    found = [p for p, _ in self._relevant(self.changes.drain())]
                    if found:
                        self.pending += found
                        last = time.monotonic()
                        first = first or last
                if last is None:
                    continue
                now = time.monotonic()
                if now - last >= DEBOUNCE_S or now - first >= MAX_DEBOUNCE_S:
                    break
        changed = sorted(set(self.pending))
        self.pending = []
        shown = ", ".join(os.path.relpath(p) for p in changed[:3])
        return f"{shown}{' and more' if len(changed) > 3 else ''} changed"

    def _on_wake(self):
        """During a build: the jobs a change makes obsolete (to cancel now)."""
        relevant = self._relevant(self.changes.drain())
        self.pending += [p for p, _ in relevant]
        cancel = set()
        for _, jobs in relevant:
            cancel |= self.watch_set.with_dependents(jobs)
        return cancel

    def _build(self, reason):
        from exmake.workspace import Workspace
        started = time.monotonic()
        stamp = datetime.now().strftime("%H:%M:%S")
        try:
            ws = Workspace.load(self.recipe_path)
        except (RecipeError, ExmakeError) as exc:
            self._schedule()
            self.out(f"exmake watch: [{stamp}] {reason}; the recipe does not load, still watching:\n  {exc}")
            return
        try:
            self.watch_set = WatchSet(ws.recipe)
            self._schedule()
            hooks = (self.changes.read_fd, self._on_wake)
            outcomes = self.make_build(ws, self.targets, hooks)
        except Interrupted:
            raise
        except ExmakeError as exc:
            self.out(f"exmake watch: [{stamp}] {reason}: {exc}")
            return
        finally:
            ws.close()
        self.builds += 1
        summary = state_counts(outcomes)
        self.out(f"exmake watch: [{stamp}] {reason}: {summary} in {time.monotonic() - started:.2f}s")
        if self.pending:  # changes arrived during the build: go again now
            self.changes.paths.put(self.pending[0])
            os.write(self.changes.write_fd, b"x")
