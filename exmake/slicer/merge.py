"""A strict merge of analysis results, slice by slice.

`merge(results)` folds a list of per-slice results into one: numbers add,
lists and tuples extend, sets unite, Counters add, dicts merge key by key
(recursively), and equal values of other types stay. Two values that cannot be combined (a str and a str, an int
and a list) raise MergeConflict naming the key path, unless
`allow_conflict=True`, which keeps the first value.
"""

from collections import Counter


class MergeConflict(ValueError):
    pass


def merge(results, allow_conflict=False):
    """Merge an iterable of results; None entries are skipped."""
    merged = None
    for value in results:
        if value is None:
            continue
        merged = value if merged is None else _merge(merged, value, allow_conflict, ())
    return merged


def _merge(a, b, allow_conflict, where):
    if isinstance(a, Counter) and isinstance(b, dict):
        result = Counter(a)
        result.update(b)  # adds, and unlike `+` keeps zero and negative counts
        return result
    if isinstance(a, dict) and isinstance(b, dict):
        result = dict(a)
        for key, value in b.items():
            result[key] = _merge(result[key], value, allow_conflict, where + (key,)) if key in result else value
        return result
    if isinstance(a, (set, frozenset)) and isinstance(b, (set, frozenset)):
        return a | b
    if isinstance(a, list) and isinstance(b, (list, tuple)):
        return a + list(b)
    if isinstance(a, tuple) and isinstance(b, (list, tuple)):
        return a + tuple(b)
    if _number(a) and _number(b):
        return a + b
    if type(a) is type(b) and a == b:  # the same str, bool or None from every slice
        return a
    if allow_conflict:
        return a
    path = "/".join(map(str, where)) or "(top)"
    raise MergeConflict(f"cannot merge {type(a).__name__} {a!r} with {type(b).__name__} {b!r} at {path}")


def _number(value):
    return isinstance(value, (int, float, complex)) and not isinstance(value, bool)
