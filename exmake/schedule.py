"""Order and parallelism: which job starts next, and waiting for jobs to end.

The scheduler knows nothing of keys, files or commands. It walks a static
DAG, asks the build to `begin` each job whose dependencies succeeded, and
waits for them with one `select` over their pidfds (or a short poll where
pidfds do not exist).

How many run at once is a matter of slots (`Slots`): each resource (cores,
MiB of memory) has a capacity, each job needs some of each (`needs(name)`,
at most the capacity: the build caps it), and a job starts only when what it
needs is free. The policy, which the README states for users:

- Ready jobs are looked at in build order; each that fits starts.
- The first one that does not fit becomes the *head*. Every core and MiB a
  finished job frees from then on is held for the head, until it has all
  it needs and starts. Only what was already free when it began waiting
  (and what it does not need) is open to the jobs behind it, which
  backfill beside it.
- So the head waits at most until the jobs running when it began waiting,
  and those that backfilled then, have ended: no stream of small jobs can
  starve it. Jobs behind the head that do not fit wait their turn as head.

A task that `begin` returns must offer:
    fds()      descriptors that become readable when it may have progressed
    wake_at()  a monotonic time to look at it again regardless (or None)
    advance()  None while still going, else its final Outcome
    cancel()   stop at once (interrupt); must leave nothing looking finished
and may offer:
    stop(reason)  ask its processes to end (SIGTERM) without waiting; called on
               every task before any `cancel`, so their grace periods overlap

`begin` runs, and its task is registered, with SIGINT/SIGTERM held (see
exmake.signals): a task is never started without being in `running`.
"""

import bisect
import selectors
import time

from exmake import signals
from exmake.outcome import Outcome
from exmake.signals import held

POLL_FALLBACK_S = 0.01   # where no pidfd exists, look this often
# The longest single wait: epoll takes its timeout in int milliseconds (at
# most ~24.8 days), and a `time: 30d` limit is normal on clusters. Waking
# once an hour costs nothing; the deadline is recomputed each time.
MAX_WAIT_S = 3600.0
SUCCESS_STATES = ("built", "reused")


class Scheduler:
    """Runs `order` (dependencies first) with `deps[name]` as the DAG.

    Optional hooks: `wake_fd` (a descriptor that becomes readable when the
    world changed, e.g. a watched file) with `on_wake()` returning the names
    of jobs to cancel; `tick_s` with `on_tick()` for progress displays.
    """

    def __init__(self, order, deps, max_running, keep_going, needs=None, capacity=None):
        self.order = order
        self.deps = deps
        # By default each job needs one of `max_running` slots.
        self.slots = Slots(capacity or {"cores": max(1, max_running)})
        self.needs = needs or (lambda name: {"cores": 1})
        self.held = {}               # name -> what it holds, while it runs
        self._need = {}              # name -> what it will hold, once it is ready
        self.keep_going = keep_going
        self.outcomes = {}
        self.running = {}            # name -> task, while it runs
        self.cancelled = set()       # names cancelled from outside (watch mode)
        self.wake_fd = None
        self.on_wake = None
        self.tick_s = None
        self.on_tick = None
        self.checkpoint = None       # called once outcomes are recorded: a held Ctrl-C lands here
        # Group commit (exmake.ledger): settle_at() says when finished jobs are
        # due to be made durable and indexed; on_settle() does it. Done when
        # due, and at once whenever nothing runs.
        self.settle_at = None
        self.on_settle = None

    def run(self, begin, on_outcome):
        """Drive every job; `begin(name, dep_outcomes)` returns an Outcome or a task."""
        self._index_readiness()
        pending = self._ready
        running = self.running
        stopping = False
        try:
            while self._unstarted or running:
                while not stopping:
                    name = self._next_startable(pending)
                    if name is None:
                        break
                    # Signals are held from the moment a job may reserve its
                    # directory until it is in `running`, where an interrupt
                    # finds it and cancels it; raised just after.
                    with held():
                        result = self._begin_one(name, begin)
                        if not isinstance(result, Outcome):
                            running[name] = result
                    if isinstance(result, Outcome):
                        self._release(name)
                        stopping |= self._record(name, result, on_outcome)
                    self._checkpoint()
                self._settle()
                if stopping and not running:
                    break
                for name, outcome in self._wait(running):
                    del running[name]
                    self._release(name)
                    stopping |= self._record(name, outcome, on_outcome)
                self._checkpoint()
        except BaseException:
            self._cancel_all(list(running.values()))
            raise
        return self.outcomes

    def _settle(self):
        due = self.settle_at() if self.settle_at else None
        if due is not None and (not self.running or time.monotonic() >= due):
            self.on_settle()

    def _checkpoint(self):
        if self.checkpoint:
            self.checkpoint()
        else:
            signals.checkpoint()

    @staticmethod
    def _cancel_all(tasks):
        """Cancel every task, with further signals held: a second Ctrl-C while
        the first is being handled must not leave the remaining jobs running.
        All are asked to stop first, so their grace periods run together."""
        with held() as guard:
            for task in tasks:
                stop = getattr(task, "stop", None)
                if stop:
                    stop("interrupted")
            trouble = None
            for task in tasks:
                try:
                    task.cancel()
                except Exception as exc:  # one task's trouble must not leave the others running
                    trouble = trouble or exc
            if guard:
                guard.discard()  # already interrupting; a second signal adds nothing
            if trouble:
                raise trouble

    def _index_readiness(self):
        """Which jobs are ready (every dependency ended), kept as outcomes come
        in: looking through every pending job at each wake-up cost time
        quadratic in the build's size (a 1,000-job build spent seconds on it)."""
        self._position = {name: i for i, name in enumerate(self.order)}
        self._left, self._dependents = {}, {}
        for name in self.order:
            deps = set(self.deps[name])
            self._left[name] = len(deps)
            for dep in deps:
                self._dependents.setdefault(dep, []).append(name)
        self._ready = [name for name in self.order if not self._left[name]]  # in build order
        self._unstarted = len(self.order)

    def _now_ended(self, name):
        for dependent in self._dependents.get(name, ()):
            self._left[dependent] -= 1
            if not self._left[dependent]:
                bisect.insort(self._ready, dependent, key=self._position.__getitem__)

    def _next_startable(self, pending):
        """Remove and return the first ready job (every dependency ended, in build
        order) whose slots are free (taking them); see the module docstring."""
        for index, name in enumerate(pending):
            need = self._need.get(name)
            if need is None:  # once: a ready job's dependencies have ended for good
                self._need[name] = need = self._need_of(name)
            if name in self.cancelled:
                need = dict.fromkeys(need, 0)
            if self.slots.take(name, need):
                del pending[index]
                self._unstarted -= 1
                self.held[name] = need
                return name
        return None

    def _need_of(self, name):
        """What a ready job holds: more than there is would wait for ever (the
        build caps it, with a note); a job about to be skipped holds nothing."""
        blocked = any(self.outcomes[dep].state in ("failed", "skipped", "cancelled") for dep in self.deps[name])
        return {r: 0 if blocked else min(n, self.slots.capacity[r]) for r, n in self.needs(name).items()}

    def _release(self, name):
        need = self.held.pop(name, None)
        if need is not None:
            self.slots.give_back(need)

    def _begin_one(self, name, begin):
        if name in self.cancelled:
            return Outcome("cancelled", reasons=["an input changed while the build ran"])
        dep_outcomes = {dep: self.outcomes[dep] for dep in self.deps[name]}
        blocked = [dep for dep, o in dep_outcomes.items() if o.state in ("failed", "skipped", "cancelled")]
        if blocked:
            return Outcome("skipped", reasons=[f"dependency {blocked[0]} {dep_outcomes[blocked[0]].state}"])
        return begin(name, dep_outcomes)

    def _record(self, name, outcome, on_outcome):
        self.outcomes[name] = outcome
        self._now_ended(name)
        on_outcome(name, outcome)
        return outcome.state == "failed" and not self.keep_going

    def cancel(self, names):
        """Stop these jobs (running ones at once); they end as "cancelled"."""
        self.cancelled |= set(names)
        finished = []
        with held():  # a cancellation, once begun, finishes
            for name in [n for n in self.running if n in self.cancelled]:
                self.running[name].cancel()
                finished.append((name, Outcome("cancelled", reasons=["an input changed while it ran"])))
        return finished

    def _wait(self, running):
        """Block until at least one task may have moved; return those that finished."""
        if not running:
            return []
        timeout = self._timeout(running)
        fds = [fd for task in running.values() for fd in task.fds()]
        woken = False
        if fds and len(fds) >= len(running):
            with selectors.DefaultSelector() as selector:
                for fd in fds:
                    selector.register(fd, selectors.EVENT_READ)
                if self.wake_fd is not None:
                    selector.register(self.wake_fd, selectors.EVENT_READ)
                woken = any(key.fd == self.wake_fd for key, _ in selector.select(timeout))
        else:
            time.sleep(min(timeout if timeout is not None else POLL_FALLBACK_S, POLL_FALLBACK_S))
        finished = []
        if woken or (self.on_wake and self.wake_fd is None):
            finished += self.cancel(self.on_wake())
        for name, task in list(running.items()):
            if any(name == f for f, _ in finished):
                continue
            outcome = task.advance()
            if outcome is not None:
                finished.append((name, outcome))
        if self.on_tick:
            self.on_tick()
        return finished

    def _timeout(self, running):
        wakes = [w for w in (task.wake_at() for task in running.values()) if w is not None]
        due = self.settle_at() if self.settle_at else None
        if due is not None:
            wakes.append(due)
        if self.tick_s:
            wakes.append(time.monotonic() + self.tick_s)
        if not wakes:
            return None
        return min(MAX_WAIT_S, max(0.0, min(wakes) - time.monotonic()))


class Slots:
    """What is free of each resource, and the head's reservation (see the
    module docstring for the policy)."""

    def __init__(self, capacity):
        self.capacity = dict(capacity)
        self.free = dict(capacity)
        self.head = None           # the first job that did not fit, while it waits
        self.head_need = None
        self.reserved = {}         # what has been held for the head so far

    def take(self, name, need):
        """Take `need` for `name` if it may start now; else, if nobody is the
        head yet, make `name` the head. True when it may start."""
        if self.head is None or self.head == name:
            reserved = self.reserved if self.head == name else {}
            if all(reserved.get(r, 0) + self.free.get(r, 0) >= n for r, n in need.items()):
                for r, n in need.items():
                    self.free[r] -= n - reserved.get(r, 0)
                self.head, self.head_need, self.reserved = None, None, {}
                return True
            if self.head is None:
                self.head, self.head_need, self.reserved = name, dict(need), {r: 0 for r in need}
            return False
        if all(self.free.get(r, 0) >= n for r, n in need.items()):  # backfill beside the head
            for r, n in need.items():
                self.free[r] -= n
            return True
        return False

    def give_back(self, need):
        """A job ended: what it held goes to the head first, the rest is free."""
        for r, n in need.items():
            if self.head is not None and r in self.head_need:
                to_head = min(n, self.head_need[r] - self.reserved[r])
                self.reserved[r] += to_head
                n -= to_head
            self.free[r] += n
