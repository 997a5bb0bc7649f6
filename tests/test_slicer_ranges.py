"""slicer.ranges: line-aligned byte ranges (slice_ranges) and streaming them (iter_lines).

The contract: n contiguous ranges from 0 to the file size, each boundary just
after a newline, so that every line lands whole in exactly one range; and
iter_lines reads a range in constant memory, bar the longest line.
"""

import os
import tempfile
import tracemalloc
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exmake.slicer import ranges
from exmake.slicer.ranges import READ_BLOCK_BYTES, SliceRange, iter_lines, slice_ranges

NO_NEWLINE = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))
CONTENTS = st.one_of(
    st.just(b""),
    st.integers(1, 30).map(lambda k: b"\n" * k),  # only newlines
    st.builds(
        lambda lines, final: b"\n".join(lines) + (b"\n" if final else b""),
        st.lists(NO_NEWLINE, max_size=30), st.booleans()),
)
# Small read blocks make lines straddle blocks; the real size is in there too.
BLOCKS = st.sampled_from([1, 2, 3, 7, 64, READ_BLOCK_BYTES])
PROPERTY = settings(max_examples=200, deadline=None)


def lines_of(data):
    """The file's lines, split on b"\\n" only (bytes.splitlines also splits on \\r)."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def write_temp(data):
    fd, path = tempfile.mkstemp(prefix="exmake-ranges-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def sliced(data, n, block=READ_BLOCK_BYTES):
    """(ranges, lines per range) for `data` cut into n slices."""
    path = write_temp(data)
    try:
        with mock.patch.object(ranges, "READ_BLOCK_BYTES", block):
            rngs = slice_ranges(path, n)
            return rngs, [list(iter_lines(path, r)) for r in rngs]
    finally:
        os.unlink(path)


@PROPERTY
@given(CONTENTS, st.integers(1, 40), BLOCKS)
def test_ranges_are_contiguous_and_cover_the_file(data, n, block):
    rngs, _ = sliced(data, n, block)
    assert len(rngs) == n
    assert rngs[0].start == 0 and rngs[-1].end == len(data)
    for before, after in zip(rngs, rngs[1:]):
        assert before.end == after.start
    assert all(len(r) >= 0 for r in rngs)


@PROPERTY
@given(CONTENTS, st.integers(1, 40), BLOCKS)
def test_boundaries_fall_just_after_a_newline(data, n, block):
    rngs, _ = sliced(data, n, block)
    for r in rngs:
        assert r.start in (0, len(data)) or data[r.start - 1:r.start] == b"\n"


@PROPERTY
@given(CONTENTS, st.integers(1, 40), BLOCKS)
def test_iter_lines_over_all_ranges_gives_back_the_file(data, n, block):
    _, per_range = sliced(data, n, block)
    assert b"".join(line for lines in per_range for line in lines) == data


@PROPERTY
@given(CONTENTS, st.integers(1, 40), BLOCKS)
def test_every_line_is_in_exactly_one_range_and_whole(data, n, block):
    _, per_range = sliced(data, n, block)
    assert [line for lines in per_range for line in lines] == lines_of(data)


def test_more_slices_than_lines_gives_empty_ranges(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a\nb\n")
    rngs = slice_ranges(path, 5)
    assert [list(iter_lines(path, r)) for r in rngs if len(r)] == [[b"a\n"], [b"b\n"]]
    assert sum(1 for r in rngs if len(r) == 0) == 3


def test_iter_lines_with_encoding_yields_str(tmp_path):
    path = tmp_path / "f"
    path.write_bytes("åäö\nnaïve\nlast".encode("utf-8"))
    (rng,) = slice_ranges(path, 1)
    assert list(iter_lines(path, rng, encoding="utf-8")) == ["åäö\n", "naïve\n", "last"]


@pytest.mark.parametrize("final", [b"\n", b""])
def test_a_line_longer_than_a_read_block_is_kept_whole(tmp_path, final):
    long_line = b"x" * (300 * 1024) + b"\n"
    data = b"short\n" * 50 + long_line + b"tail\n" * 50 + b"end" + final
    path = tmp_path / "f"
    path.write_bytes(data)
    rngs = slice_ranges(path, 8)
    per_range = [list(iter_lines(path, r)) for r in rngs]
    assert [line for lines in per_range for line in lines] == lines_of(data)
    assert sum(lines.count(long_line) for lines in per_range) == 1


@pytest.mark.parametrize("n", [0, -1])
def test_fewer_than_one_slice_is_refused(tmp_path, n):
    path = tmp_path / "f"
    path.write_bytes(b"a\n")
    with pytest.raises(ValueError):
        slice_ranges(path, n)


def test_slice_range_length_and_equality():
    assert len(SliceRange(3, 10)) == 7
    assert SliceRange(3, 10) == SliceRange(3, 10) != SliceRange(3, 11)


def test_iter_lines_reads_in_constant_memory(tmp_path):
    path = tmp_path / "big"
    line = b"%0999d\n" % 7  # 1000-byte lines
    with open(path, "wb") as f:
        for _ in range(30):
            f.write(line * 1000)  # ~30 MB in total
    rng = SliceRange(0, os.path.getsize(path))
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_lines(path, rng))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 30_000
    assert peak < 3 * 1024 * 1024
