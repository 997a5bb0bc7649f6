"""Count every word of a text, chunk by chunk, with the chunk cache.

analysis_chunk runs once for each chunk exmake has no result for (in the
job's slices, in parallel); synthesis gets every chunk's Counter in text
order and writes counts.txt in the format of `sort | uniq -c` (byte order,
count in seven columns), so it can be checked against the Unix pipeline.
"""

import re
from collections import Counter

from exmake.slicer.merge import merge

WORD = re.compile(r"[A-Za-z]+")


def analysis_chunk(lines):
    counts = Counter()
    for line in lines:
        counts.update(word.lower() for word in WORD.findall(line))
    return counts


def synthesis(chunk_res, job):
    counts = merge(chunk_res) or Counter()
    with job.open("counts.txt", "w") as f:
        for word in sorted(counts):
            f.write("%7d %s\n" % (counts[word], word))
    return counts
