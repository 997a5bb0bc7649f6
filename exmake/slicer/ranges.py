"""Line-aligned byte ranges of a file: slice i of N reads only its range.

`slice_ranges(path, n)` cuts a file into n contiguous ranges whose
boundaries fall just after a newline, so no line is lost, split or read
twice; a last line without a newline belongs to the last range that
reaches it; ranges may be empty (more slices than lines, empty file).
`iter_lines(path, rng)` streams the lines of one range in constant memory.
"""

import os

READ_BLOCK_BYTES = 1 << 16


class SliceRange:
    """Bytes [start, end) of a file."""

    __slots__ = ("start", "end")

    def __init__(self, start, end):
        self.start, self.end = start, end

    def __repr__(self):
        return f"SliceRange({self.start}, {self.end})"

    def __eq__(self, other):
        return (self.start, self.end) == (other.start, other.end)

    def __len__(self):
        return self.end - self.start


def slice_ranges(path, n):
    """n line-aligned ranges covering the whole file at `path`, in order."""
    if n < 1:
        raise ValueError("the number of slices must be at least 1")
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as f:
        for i in range(1, n):
            target = max(size * i // n, bounds[-1])
            bounds.append(_line_start_at_or_after(f, target, size))
    bounds.append(size)
    return [SliceRange(a, b) for a, b in zip(bounds, bounds[1:])]


def _line_start_at_or_after(f, offset, size):
    """The first offset >= `offset` at which a line starts (or `size`)."""
    if offset == 0 or offset >= size:
        return min(offset, size)
    f.seek(offset - 1)
    while True:
        block = f.read(READ_BLOCK_BYTES)
        if not block:
            return size
        newline = block.find(b"\n")
        if newline >= 0:
            return f.tell() - len(block) + newline + 1
        # no newline in this block: keep looking (a very long line)


def iter_lines(path, rng, encoding=None):
    """Yield the lines (with their newline) inside `rng` of the file at `path`.

    Bytes unless `encoding` is given. Reads in blocks: memory stays constant
    whatever the range's size, bar the longest line.
    """
    remaining = rng.end - rng.start
    pending = b""
    with open(path, "rb") as f:
        f.seek(rng.start)
        while remaining > 0:
            block = f.read(min(READ_BLOCK_BYTES, remaining))
            if not block:
                break
            remaining -= len(block)
            lines = (pending + block).split(b"\n")
            pending = lines.pop()
            for line in lines:
                line += b"\n"
                yield line.decode(encoding) if encoding else line
    if pending:
        yield pending.decode(encoding) if encoding else pending
