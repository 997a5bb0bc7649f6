"""Which jobs of a cluster build go to the scheduler together as one job array,
and how each submission depends on the ones before it.

A family's instances (`foreach:`) that ask for the same resources are one
array of up to `max_tasks` jobs (task i runs `names[i]`); every other job is
a submission of its own. Nothing here decides whether a job must run (the
rebuilder did) or talks to a scheduler (cluster.py and the backends do):
`plan` is a pure function of names, dependencies, families and shapes.

How a submission U waits for an earlier one V (`Unit.deps[V.label]`):

- CORR (Slurm's `aftercorr`): both arrays of one size, task i of U needs
  task i of V and nothing else of V. A failed task stops only its partner.
  Instances of a family fed one-to-one by another family's instances are
  put in the feeding family's order, so this fits as often as it can.
- ALL (`afterok` on V): every job of U needs every job of V (a fan-in, or
  any dependency on a single job).
- TASKS (`afterok` on V's task ids): U is a single job that needs some of
  V's tasks.
- ANY (`afterany` on V): any other shape. Each task then checks on its node
  that its own dependencies finished (exec-job), so a failed task of V fails
  only the tasks of U that need it.

A family whose instances depend on each other, or units whose dependencies
would form a cycle, are submitted job by job instead.
"""

CORR, ALL, TASKS, ANY = "corr", "all", "tasks", "any"
ARRAY_MAX_TASKS = 1000   # jobs per array: one sbatch per thousand, as the issue asks


class Unit:
    """One submission: a single job, or an array whose task i runs names[i].

    deps: {label of an earlier unit: (kind, {(task index here, task index there)})}.
    """

    __slots__ = ("label", "names", "array", "family", "deps")

    def __init__(self, label, names, array, family=None):
        self.label, self.names, self.array, self.family = label, names, array, family
        self.deps = {}

    def __repr__(self):
        return f"Unit({self.label!r}, {len(self.names)} job{'s' if len(self.names) != 1 else ''})"


def plan(names, deps_of, family_of, shape_of, max_tasks=ARRAY_MAX_TASKS):
    """[Unit] for `names` (in build order), each after every unit it depends on.

    deps_of(name) -> dependency names; family_of(name) -> family or None;
    shape_of(name) -> a hashable value equal for jobs one batch script can run
    (their directives)."""
    inside = set(names)
    deps = {name: [d for d in deps_of(name) if d in inside] for name in names}
    groups = _groups(names, deps, family_of, shape_of) if max_tasks > 1 else [[n] for n in names]
    units = _units(groups, family_of, max(max_tasks, 1))
    ordered = _link(units, deps)
    if ordered is None:  # families that feed each other both ways: no order of arrays exists
        return plan(names, deps_of, family_of, shape_of, max_tasks=1)
    return ordered


def _groups(names, deps, family_of, shape_of):
    """Lists of names that may share an array, in order of first appearance; a
    group fed one-to-one by an earlier group is put in that group's order."""
    by_key = {}
    for name in names:
        family = family_of(name)
        key = (family, shape_of(name)) if family is not None else (None, name)
        by_key.setdefault(key, []).append(name)
    groups = []
    for members in by_key.values():
        member_set = set(members)
        if len(members) > 1 and any(d in member_set for m in members for d in deps[m]):
            groups.extend([m] for m in members)  # a task may not wait for its own array
        else:
            groups.append(members)
    position = {}
    for group in groups:
        group[:] = _aligned(group, groups, deps, position)
        for index, name in enumerate(group):
            position[name] = (id(group), index)
    return groups


def _aligned(group, groups, deps, position):
    """`group` in the order of an earlier group of its size that feeds it one to
    one (each member needs exactly one of its jobs, each a different one), if any."""
    if len(group) < 2:
        return group
    for feeder in groups:
        if feeder is group or len(feeder) != len(group) or feeder[0] not in position:
            continue
        feeder_id = id(feeder)
        partner = {}
        for name in group:
            inside = [position[d][1] for d in deps[name] if d in position and position[d][0] == feeder_id]
            if len(inside) != 1:
                break
            partner[name] = inside[0]
        else:
            if len(set(partner.values())) == len(group):
                return sorted(group, key=partner.get)
    return group


def _units(groups, family_of, max_tasks):
    units, count = [], {}
    for group in groups:
        if len(group) == 1:
            units.append(Unit(group[0], group, array=False))
            continue
        family = family_of(group[0])
        for start in range(0, len(group), max_tasks):
            chunk = group[start:start + max_tasks]
            number = count[family] = count.get(family, -1) + 1
            if len(chunk) == 1:
                units.append(Unit(chunk[0], chunk, array=False))
            else:
                units.append(Unit(f"{family}.array{number}", chunk, array=True, family=family))
    return units


def _link(units, deps):
    """Fill in each unit's deps; the units in an order that puts every unit after
    those it depends on, or None if there is none."""
    owner = {name: (unit, index) for unit in units for index, name in enumerate(unit.names)}
    for unit in units:
        pairs = {}
        for index, name in enumerate(unit.names):
            for dep in deps[name]:
                other, there = owner[dep]
                pairs.setdefault(other.label, (other, set()))[1].add((index, there))
        unit.deps = {label: (_kind(unit, other, found), found) for label, (other, found) in pairs.items()}
    return _topological(units)


def _kind(unit, other, pairs):
    if unit.array and other.array and len(unit.names) == len(other.names) \
            and pairs == {(i, i) for i in range(len(unit.names))}:
        return CORR
    if len(pairs) == len(unit.names) * len(other.names):
        return ALL
    return ANY if unit.array else TASKS


def _topological(units):
    by_label = {unit.label: unit for unit in units}
    waiting = {unit.label: len(unit.deps) for unit in units}
    users = {}
    for unit in units:
        for label in unit.deps:
            users.setdefault(label, []).append(unit)
    ready = [unit for unit in units if not unit.deps]
    ordered = []
    while ready:
        unit = ready.pop(0)
        ordered.append(unit)
        for user in users.get(unit.label, ()):
            waiting[user.label] -= 1
            if not waiting[user.label]:
                ready.append(user)
    return ordered if len(ordered) == len(by_label) else None


def index_ranges(indices):
    """Sorted task indices as an array spec: [0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    parts, start, prev = [], None, None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev > start else str(start))
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)
