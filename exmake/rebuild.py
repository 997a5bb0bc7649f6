"""The rebuild decision: is a job fresh, and if not, why.

Pure: it reads no file and runs nothing. Given what the job is now (its
setup record), the job the trace index holds for that key, and the setup of
the job of that name that the last build used, it returns a Decision whose
reasons a person can act on.
"""

from dataclasses import dataclass, field


@dataclass
class Decision:
    fresh: bool
    jobid: str = None            # the job to reuse when fresh
    reasons: list = field(default_factory=list)


def decide(setup, trace_jobid, previous, forced=False):
    """Decide one job. `setup`: the would-be setup record (step, inputs, deps);
    `trace_jobid`: the SUCCESS job with the same key, or None;
    `previous`: setup.json of the job the last build used for this name, or None."""
    if forced:
        return Decision(False, None, ["forced (-B)"])
    if trace_jobid:
        return Decision(True, trace_jobid, [])
    return Decision(False, None, explain(previous, setup))


def explain(previous, setup):
    """Why `setup` differs from `previous`, as short sentences."""
    if previous is None:
        return ["no earlier job"]
    reasons = []
    old_step, new_step = previous.get("step", {}), setup["step"]
    if old_step.get("scheme") != new_step["scheme"]:
        reasons.append("key scheme changed")
    if old_step.get("run") != new_step["run"]:
        reasons.append("command changed")
    if old_step.get("method") != new_step.get("method"):
        reasons.append(f"job script changed: {old_step.get('method')} -> {new_step.get('method')}")
    else:
        reasons += _code_changes(old_step.get("code") or {}, new_step.get("code") or {})
    reasons += _dict_changes("option", old_step.get("options", {}), new_step["options"])
    reasons += _dict_changes("env", old_step.get("env", {}), new_step["env"])
    for key, label in (("outputs", "declared outputs"), ("slices", "slices"), ("chunks", "chunks")):
        if old_step.get(key) != new_step.get(key):
            reasons.append(f"{label} changed")
    reasons += _input_changes(previous.get("inputs", {}), setup["inputs"])
    reasons += _dep_changes(previous.get("deps", {}), setup["deps"])
    # Nothing visible changed, yet no trace matches: the earlier job is gone
    # (deleted by hand or by gc) or failed.
    return reasons or ["no finished job with this key"]


def _changes(old, new, added, removed, changed, same=lambda a, b: a == b):
    """One reason per key of two mappings that is added, removed or changed;
    the three callables word them (given the key, and the values)."""
    reasons = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            reasons.append(added(key, new[key]))
        elif key not in new:
            reasons.append(removed(key))
        elif not same(old[key], new[key]):
            reasons.append(changed(key, old[key], new[key]))
    return reasons


def _dict_changes(label, old, new):
    return _changes(old, new, lambda k, v: f"{label} {k} added: {_show(v)}",
                    lambda k: f"{label} {k} removed",
                    lambda k, a, b: f"{label} {k}: {_show(a)} -> {_show(b)}")


def _code_changes(old, new):
    """Reasons from two {what: digest} code maps (see exmake.method.code_digest)."""
    return _changes(old, new, lambda k, v: f"{k} added", lambda k: f"{k} no longer used",
                    lambda k, a, b: f"{k} changed")


def _input_changes(old, new):
    def files(key, before, after):  # an input whose files changed: say which
        return _changes(dict(map(tuple, before)), dict(map(tuple, after)),
                        lambda p, v: f"input {p} added", lambda p: f"input {p} removed",
                        lambda p, a, b: f"input {p} changed")
    nested = _changes(old, new, lambda k, v: [f"input {k} added"], lambda k: [f"input {k} removed"], files)
    return [reason for group in nested for reason in group]


def _dep_changes(old, new):
    return _changes(old, new, lambda k, v: f"dependency {k} added", lambda k: f"dependency {k} removed",
                    lambda k, a, b: f"dependency {k} produced new output",
                    same=lambda a, b: a.get("outputs") == b["outputs"])


def _show(value):
    text = repr(value) if isinstance(value, str) and (not value or " " in value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
