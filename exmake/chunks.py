"""Content-defined chunks of one file, each ending at a line end.

`chunk_file(path, size, hints)` cuts a file into chunks whose boundaries
depend on the bytes around them, not on their offsets, so an insert in the
middle changes only the chunks around it and an append only the last ones
(a fixed-size or a slice-count split shifts every boundary after an edit).

The cut points: a 32-bit gear hash (FastCDC's rolling hash: `h = (h << 1)
+ GEAR[byte]`, so the top bits depend on the last 32 bytes only) marks a
position a *candidate* when its top bits are zero. From a chunk's start,
the first `min` bytes are skipped; up to the target size a candidate needs
`bits + 2` zero bits, after it `bits - 2` (FastCDC's normalised chunking,
level 2: sizes bunch around the target; 2^bits is half the target, which
with the skipped minimum makes chunks average about the target); with no candidate by `max` bytes the chunk
is cut there. Each cut is then moved to the next line end (just after a
`\\n`), so a chunk is always whole lines; a last line without a `\\n` ends
the last chunk. A file with no line end in it is one chunk.

Sizes for a target `size` (recipe `chunk_size`): min = size/4, max =
size*4. The gear is computed with numpy, 32 bytes at a time by doubling
(five vector steps per block instead of one Python step per byte): about
0.5 s per 100 MB on one core here, imported only when a chunked job runs.

Hints make a rebuild cheap: the chunks of the previous run of the same job
(offsets and content digests). A chunk's end is a function of its own bytes
and its start alone (its candidates lie at least `min` >= 32 bytes past its
start, so their windows are inside it, and the line end after them too), so
where a hinted chunk's bytes are found again at a true cut, hashing them
(blake3, GB/s) proves the next cut without scanning. Hints are tried where
the file is unchanged (same offset) and where everything moved by the
file's growth (an insert or append of that many bytes); anything else is
scanned. A hint is only ever a shortcut to the cut a scan would make:
wrong or stale hints cost time, never a different chunking. The file's old
last chunk is never a hint (EOF cut it, not its content).

CHUNK_SCHEME names this exact algorithm (gear table, masks, sizes, the move
to line ends); anything that changes where cuts fall must change it, as
cached chunk results and hints are keyed on it.
"""

import hashlib
import os
import re

from exmake.fs.hashing import hash_bytes

CHUNK_SCHEME = 1
WINDOW_BYTES = 32              # the gear hash's reach: 32 bits, one shift per byte
SCAN_BLOCK_BYTES = 1 << 16     # hashed per numpy pass: fits a core's cache, 5x faster than 4 MiB
READ_BLOCK_BYTES = 1 << 16
DEFAULT_CHUNK_BYTES = 1 << 20  # see README "Chunk cache": 1 MiB balances reuse and per-chunk cost
MIN_CHUNK_BYTES = 1 << 10      # min chunk (size/4) stays well past the hash window
MAX_CHUNK_BYTES = 1 << 30
_SIZE_RE = re.compile(r"^\s*([0-9]{1,12})\s*([KMG]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

# The gear table: 256 fixed pseudo-random 32-bit words (part of CHUNK_SCHEME).
GEAR = [int.from_bytes(hashlib.blake2b(bytes([i]), digest_size=4, person=b"exmake-gear").digest(), "big")
        for i in range(256)]


def parse_size(value):
    """`4M`, `512K`, `1G`, `65536` -> bytes; ValueError saying what is allowed."""
    match = None if isinstance(value, bool) else _SIZE_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like 4M, 512K or 1048576 (bytes)")
    size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if not MIN_CHUNK_BYTES <= size <= MAX_CHUNK_BYTES:
        raise ValueError(f"{value!r} must be from 1K to 1G")
    return size


class Chunk:
    """Bytes [start, end) of the file, and their content digest."""

    __slots__ = ("start", "end", "digest")

    def __init__(self, start, end, digest):
        self.start, self.end, self.digest = start, end, digest

    def __len__(self):
        return self.end - self.start

    def __repr__(self):
        return f"Chunk({self.start}, {self.end}, {self.digest[:12]})"

    def as_list(self):
        return [self.start, self.end, self.digest]


class Sizes:
    """The cut rules for a target chunk size in bytes."""

    def __init__(self, size):
        self.size = size
        self.min, self.max = size // 4, size * 4
        # FastCDC's normalisation level 2 around 2^(bits): with the min skip,
        # chunks average about 0.96 x size (and the move to a line end adds
        # half a line).
        bits = max(3, round(_log2(size)) - 1)
        self.strict, self.loose = _top_mask(min(bits + 2, 31)), _top_mask(bits - 2)

    def ident(self):
        """What hints must agree on to be usable."""
        return [CHUNK_SCHEME, self.size]


def _log2(n):
    return n.bit_length() - 1 + (n / (1 << (n.bit_length() - 1)) - 1)


def _top_mask(bits):
    return ((1 << bits) - 1) << (32 - bits)


def chunk_file(path, size, hints=None):
    """[Chunk, ...] covering the file at `path` in order (none for an empty
    file). `size`: the target chunk size in bytes; `hints`: {"size": the
    file's earlier size, "chunks": [[start, end, digest], ...]} or None."""
    sizes = Sizes(size)
    with open(path, "rb") as f:
        return _Chunker(f.fileno(), os.fstat(f.fileno()).st_size, sizes, hints).run()


class _Chunker:
    def __init__(self, fd, length, sizes, hints):
        self.fd, self.length, self.sizes = fd, length, sizes
        self.hinted, self.shifts = {}, [0]
        if hints:
            old = hints["size"]
            # An old chunk that ended at the old EOF was cut by the EOF, not its content.
            self.hinted = {start: (end - start, digest) for start, end, digest in hints["chunks"] if end < old}
            if length != old:
                self.shifts.append(length - old)
        self.scanned_bytes = 0

    def run(self):
        chunks, pos = [], 0
        while pos < self.length:
            chunk = self._from_hints(pos) or self._scan(pos)
            chunks.append(chunk)
            pos = chunk.end
        return chunks

    def _from_hints(self, pos):
        for shift in self.shifts:
            hint = self.hinted.get(pos - shift)
            if hint and pos + hint[0] <= self.length:
                digest = self._digest(pos, pos + hint[0])
                if digest == hint[1]:
                    return Chunk(pos, pos + hint[0], digest)
        return None

    def _scan(self, start):
        end = self._line_end_after(self._cut(start))
        return Chunk(start, end, self._digest(start, end))

    def _cut(self, start):
        """Where the rules cut a chunk starting at `start`, before the move to a line end."""
        s = self.sizes
        low, middle, high = start + s.min, start + s.size, min(start + s.max, self.length)
        if low >= self.length:  # no room for a candidate: the rest is the last chunk
            return self.length
        pos = low
        while pos < high:
            stop = min(pos + SCAN_BLOCK_BYTES, high)
            hashes = self._hashes(pos, stop)
            self.scanned_bytes += stop - pos
            found = _first_candidate(hashes, pos, middle, s)
            if found is not None:
                return found + 1  # cut after the candidate byte
            pos = stop
        return self.length if start + s.max >= self.length else start + s.max

    def _hashes(self, start, stop):
        """The gear hash at each position start..stop-1 (a window of the 32
        bytes ending there; start >= 32 past the chunk's start, so inside it)."""
        import numpy as np  # only chunked jobs pay for it
        lo = start - (WINDOW_BYTES - 1)
        data = os.pread(self.fd, stop - lo, lo)
        h = np.take(np.array(GEAR, dtype=np.uint32), np.frombuffer(data, dtype=np.uint8))
        width = 1
        while width < WINDOW_BYTES:  # h_i += h_(i-w) << w: the window doubles each step
            h[width:] += h[:-width] << np.uint32(width)
            width *= 2
        return h[WINDOW_BYTES - 1:]

    def _line_end_after(self, cut):
        """Just past the first `\\n` at or after byte cut-1 (the file's end if none)."""
        if cut >= self.length:
            return self.length
        pos = cut - 1
        while pos < self.length:
            block = os.pread(self.fd, READ_BLOCK_BYTES, pos)
            if not block:
                break
            newline = block.find(b"\n")
            if newline >= 0:
                return pos + newline + 1
            pos += len(block)
        return self.length

    def _digest(self, start, end):
        return hash_bytes(read_range(self.fd, start, end))


def _first_candidate(hashes, pos, middle, sizes):
    """The first position in `hashes` (which start at `pos`) that may end a
    chunk: the strict mask before `middle`, the loose one from there."""
    import numpy as np
    split = max(0, min(len(hashes), middle - pos))
    for part, offset, mask in ((hashes[:split], 0, sizes.strict), (hashes[split:], split, sizes.loose)):
        if len(part):
            hits = np.flatnonzero((part & np.uint32(mask)) == 0)
            if len(hits):
                return pos + offset + int(hits[0])
    return None


def read_range(fd, start, end):
    """Bytes [start, end) of an open file (all of them, or OSError)."""
    parts, pos = [], start
    while pos < end:
        block = os.pread(fd, end - pos, pos)
        if not block:
            raise OSError(f"the file ended at byte {pos}, before {end}: it changed while it was read")
        parts.append(block)
        pos += len(block)
    return b"".join(parts)


def chunk_lines(data):
    """A chunk's bytes as the `lines` analysis_chunk gets: str lines, UTF-8,
    each with its `\\n` (a last line without one as it is)."""
    lines = data.decode("utf-8").split("\n")
    last = lines.pop()
    lines = [line + "\n" for line in lines]
    if last:
        lines.append(last)
    return lines
