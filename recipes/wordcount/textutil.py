"""Word splitting shared by the word-count job scripts (a local module: editing
it re-runs the jobs that import it)."""

import re

WORD_RE = re.compile(rb"[A-Za-z]+")


def words(line):
    """The words of a line of bytes, lower-cased, as `tr -cs A-Za-z '\\n' | tr A-Z a-z` makes them."""
    return [w.lower() for w in WORD_RE.findall(line)]
