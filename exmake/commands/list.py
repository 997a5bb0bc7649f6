"""List the recipe's jobs and families, one a line, with their `doc:` descriptions.

A family (a job with `foreach:`) is one line, `NAME@{VALUE,...}`, with the
number of its jobs; `exmake NAME` builds all of them. In recipe order.
"""

from exmake.report import family_label


def add_arguments(parser):
    pass


def main(args):
    from exmake.recipe import load_recipe
    recipe = load_recipe(args.file)
    rows, seen = [], set()
    for name, job in recipe.jobs.items():
        if job.family is None:
            rows.append((name, job.doc))
        elif job.family not in seen:
            seen.add(job.family)
            rows.append(_family_row(job.family, recipe.families[job.family], job.doc))
    for family, instances in recipe.families.items():  # an empty family has no job to stand for it
        if family not in seen:
            rows.append(_family_row(family, instances, None))
    width = min(max(len(label) for label, _ in rows), 40)
    for label, doc in rows:
        print(f"{label:<{width}}  {doc}".rstrip() if doc else label)
    return 0


def _family_row(family, instances, doc):
    count = f"{len(instances):,} job{'s' if len(instances) != 1 else ''}"
    label = family_label(instances) if instances else f"{family}@{{}}"
    return label, f"{doc} ({count})" if doc else f"({count})"
