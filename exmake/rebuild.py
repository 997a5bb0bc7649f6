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
    for key, label in (("outputs", "declared outputs"), ("slices", "slices")):
        if old_step.get(key) != new_step[key]:
            reasons.append(f"{label} changed")
    reasons += _input_changes(previous.get("inputs", {}), setup["inputs"])
    reasons += _dep_changes(previous.get("deps", {}), setup["deps"])
    # Nothing visible changed, yet no trace matches: the earlier job is gone
    # (deleted by hand or by gc) or failed.
    return reasons or ["no finished job with this key"]


def _dict_changes(label, old, new):
    reasons = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            reasons.append(f"{label} {name} added: {_show(new[name])}")
        elif name not in new:
            reasons.append(f"{label} {name} removed")
        elif old[name] != new[name]:
            reasons.append(f"{label} {name}: {_show(old[name])} -> {_show(new[name])}")
    return reasons


def _code_changes(old, new):
    """Reasons from two {what: digest} code maps (see exmake.method.code_digest)."""
    reasons = []
    for what in sorted(set(old) | set(new)):
        if what not in old:
            reasons.append(f"{what} added")
        elif what not in new:
            reasons.append(f"{what} no longer used")
        elif old[what] != new[what]:
            reasons.append(f"{what} changed")
    return reasons


def _input_changes(old, new):
    reasons = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            reasons.append(f"input {name} added")
            continue
        if name not in new:
            reasons.append(f"input {name} removed")
            continue
        before, after = dict(map(tuple, old[name])), dict(map(tuple, new[name]))
        for path in sorted(set(before) | set(after)):
            if path not in before:
                reasons.append(f"input {path} added")
            elif path not in after:
                reasons.append(f"input {path} removed")
            elif before[path] != after[path]:
                reasons.append(f"input {path} changed")
    return reasons


def _dep_changes(old, new):
    reasons = []
    for local in sorted(set(old) | set(new)):
        if local not in old:
            reasons.append(f"dependency {local} added")
        elif local not in new:
            reasons.append(f"dependency {local} removed")
        elif old[local].get("outputs") != new[local]["outputs"]:
            reasons.append(f"dependency {local} produced new output")
    return reasons


def _show(value):
    text = repr(value) if isinstance(value, str) and (not value or " " in value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
