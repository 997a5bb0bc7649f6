"""List the resource keys a job or profile may set, with their type and their Slurm
and Torque forms. Profiles come from the recipe's `profiles:` and from
~/.config/exmake/profiles.yaml (the recipe's win)."""

from exmake.resources import RESOURCE_KEYS


def add_arguments(parser):
    pass


def main(args):
    rows = [("key", "type", "meaning", "slurm", "torque")]
    rows += [(key, *spec) for key, spec in RESOURCE_KEYS.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("\nsizes: 4G, 4096M, 512MB (a bare number is MiB); durations: 90m, 1h30m, 45s, 2d,"
          " 01:30:00, 1-12:00:00 (a bare number is minutes)")
    return 0
