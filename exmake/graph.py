"""The job graph: which jobs a build needs, in which order, and cycles.

The recipe names every dependency up front, so the graph is static: this
module only orders it. It knows nothing of keys, files or processes.
"""

from exmake.errors import RecipeError, UsageError
from exmake.recipe import suggest


def check_acyclic(recipe):
    """Raise RecipeError naming the whole cycle if the jobs' deps loop."""
    state = {}  # name -> 1 while on the current path, 2 when done
    for start in recipe.jobs:
        if state.get(start) == 2:
            continue
        path, stack = [], [(start, iter(_dep_names(recipe, start)))]
        state[start] = 1
        path.append(start)
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[name] = 2
            elif state.get(child) == 1:
                _raise_cycle(recipe, path[path.index(child):] + [child])
            elif state.get(child) is None:
                state[child] = 1
                path.append(child)
                stack.append((child, iter(_dep_names(recipe, child))))


def _dep_names(recipe, name):
    return list(recipe.jobs[name].deps.values())


def _raise_cycle(recipe, cycle):
    last, first = recipe.jobs[cycle[-2]], cycle[-1]
    local = next(k for k, v in last.deps.items() if v == first)
    raise RecipeError(recipe.path, last.dep_lines[local], f"jobs.{last.name}.deps.{local}",
                      "dependency cycle: " + " -> ".join(cycle))


def select_targets(recipe, names):
    """The jobs asked for: `names` (a family's name stands for all its jobs),
    else the recipe's `default:`."""
    targets = []
    for name in names:
        if name in recipe.families:
            targets += recipe.families[name]
        elif name in recipe.jobs:
            targets.append(name)
        else:
            raise UsageError(f"no job named {name!r} in {recipe.path}"
                             f"{suggest(name, [*recipe.jobs, *recipe.families])}")
    return targets if names else list(recipe.default)


def build_order(recipe, targets):
    """Every job the targets need, dependencies before dependents, recipe order kept where free.
    Worked out once per recipe and targets (a build asks twice: a recipe is not changed once loaded)."""
    memo = recipe.__dict__.setdefault("_build_orders", {})
    asked = tuple(targets)
    if asked not in memo:
        memo[asked] = _build_order(recipe, asked)
    return list(memo[asked])


def _build_order(recipe, targets):
    needed = set()
    todo = list(targets)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(_dep_names(recipe, name))
    order, done = [], set()
    for root in recipe.jobs:  # recipe order, so output reads like the file
        if root not in needed or root in done:
            continue
        # Iterative post-order: a chain of thousands of jobs must not hit
        # Python's recursion limit.
        done.add(root)
        stack = [(root, iter(_dep_names(recipe, root)))]
        while stack:
            name, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(name)
            elif child not in done:
                done.add(child)
                stack.append((child, iter(_dep_names(recipe, child))))
    return order


def dependents(recipe, order):
    """name -> names that depend on it, within `order`."""
    result = {name: [] for name in order}
    for name in order:
        for dep in _dep_names(recipe, name):
            if dep in result:
                result[dep].append(name)
    return result
