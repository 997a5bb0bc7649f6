"""Count every word of the input text, one slice of it per worker.

Each analysis(sliceno) reads only its own line-aligned share of the text and
returns a Counter; synthesis merges them in slice order and writes
counts.txt in the format of `sort | uniq -c` (byte order, count in seven
columns), so the result can be checked against the Unix pipeline.
"""

from collections import Counter

from exmake.slicer.merge import merge
from textutil import words

options = {"min_count": 1}


def analysis(sliceno, job):
    counts = Counter()
    for line in job.input_lines("text", encoding=None):
        counts.update(words(line))
    return counts


def synthesis(analysis_res, job, options):
    counts = merge(analysis_res)
    with job.open("counts.txt", "wb") as f:
        for word in sorted(counts):
            if counts[word] >= options["min_count"]:
                f.write(b"%7d %s\n" % (counts[word], word))
    return counts
