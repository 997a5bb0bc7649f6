"""exmake.chunks: content-defined chunks cut at line ends, and hints that skip the scan."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exmake.chunks import DEFAULT_CHUNK_BYTES, Sizes, _Chunker, chunk_file, chunk_lines, parse_size
from exmake.fs.hashing import hash_bytes

SIZE = 4096  # small target chunks: many chunks in a small file


def text_bytes(lines, seed=0):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    return b"".join(f"{n} {' '.join(rng.choice(words) for _ in range(rng.randint(0, 14)))}\n".encode()
                    for n in range(lines))


def write(tmp_path, data, name="f.txt"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def chunks_of(tmp_path, data, hints=None, size=SIZE):
    return chunk_file(write(tmp_path, data), size, hints)


def hints_of(data, chunks):
    return {"size": len(data), "chunks": [c.as_list() for c in chunks]}


def spans(chunks):
    return [(c.start, c.end) for c in chunks]


def test_chunks_cover_the_file_and_end_at_line_ends(tmp_path):
    data = text_bytes(5000)
    chunks = chunks_of(tmp_path, data)
    assert len(chunks) > 20
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
        assert data[a.end - 1:a.end] == b"\n"
    for c in chunks:
        assert c.digest == hash_bytes(data[c.start:c.end])
    sizes = Sizes(SIZE)
    assert all(len(c) >= sizes.min for c in chunks[:-1])


def test_an_empty_file_has_no_chunks_and_a_file_without_newline_is_one(tmp_path):
    assert chunks_of(tmp_path, b"") == []
    blob = b"x" * (SIZE * 10)
    assert spans(chunks_of(tmp_path, blob)) == [(0, len(blob))]


def test_a_last_line_without_newline_ends_the_last_chunk(tmp_path):
    data = text_bytes(3000) + b"no newline at the end"
    chunks = chunks_of(tmp_path, data)
    assert chunks[-1].end == len(data)
    assert chunk_lines(data[chunks[-1].start:])[-1] == "no newline at the end"


def test_an_append_changes_only_the_last_chunk(tmp_path):
    data = text_bytes(5000)
    before = spans(chunks_of(tmp_path, data))
    after = spans(chunks_of(tmp_path, data + text_bytes(50, seed=1)))
    assert after[:len(before) - 1] == before[:-1]


def test_an_insert_in_the_middle_changes_only_the_chunks_around_it(tmp_path):
    data = text_bytes(8000)
    middle = data.index(b"\n", len(data) // 2) + 1
    insert = text_bytes(20, seed=7)
    before = chunks_of(tmp_path, data)
    after = chunks_of(tmp_path, data[:middle] + insert + data[middle:])
    old = {c.digest for c in before}
    changed = [c for c in after if c.digest not in old]
    assert 1 <= len(changed) <= 3, changed
    assert len(after) - len(changed) >= len(before) - 3


def test_hints_give_the_same_chunks_as_a_scan_and_skip_it(tmp_path):
    data = text_bytes(8000)
    first = chunks_of(tmp_path, data)
    grown = data + text_bytes(100, seed=3)
    path = write(tmp_path, grown, "g.txt")
    scanned = chunk_file(path, SIZE)
    with open(path, "rb") as f:
        chunker = _Chunker(f.fileno(), len(grown), Sizes(SIZE), hints_of(data, first))
        hinted = chunker.run()
    assert spans(hinted) == spans(scanned)
    assert chunker.scanned_bytes < len(grown) / 4  # only the old last chunk and what was added


def test_stale_hints_change_nothing(tmp_path):
    """Hints are exmake's own record of an earlier run; one of another file
    (or of this one before a rewrite) must give the chunks a scan gives."""
    data = text_bytes(6000)
    scanned = chunks_of(tmp_path, data)
    other = text_bytes(6000, seed=9)
    stale = hints_of(other, chunks_of(tmp_path, other))
    assert spans(chunks_of(tmp_path, data, stale)) == spans(scanned)
    wrong_digests = {"size": len(data) + 1, "chunks": [[c.start, c.end, "b3:00"] for c in scanned]}
    assert spans(chunks_of(tmp_path, data, wrong_digests)) == spans(scanned)


edits = st.lists(st.tuples(st.sampled_from(["append", "insert", "delete", "rewrite"]),
                           st.floats(0, 1), st.integers(1, 60), st.integers(0, 10_000)),
                 min_size=1, max_size=4)


def apply_edits(data, plan):
    lines = data.split(b"\n")[:-1]
    for kind, where, count, seed in plan:
        at = int(where * len(lines))
        new = text_bytes(count, seed).split(b"\n")[:-1]
        if kind == "append":
            lines += new
        elif kind == "insert":
            lines[at:at] = new
        elif kind == "delete":
            del lines[at:at + count]
        else:
            lines[at:at + count] = new
    return b"".join(line + b"\n" for line in lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=edits)
def test_hinted_chunks_equal_scanned_chunks_whatever_the_edit(tmp_path, plan):
    """The property behind the cache's "always right": hints from the old
    file never change where the new file is cut."""
    data = text_bytes(3000)
    old = chunks_of(tmp_path, data)
    new = apply_edits(data, plan)
    assert spans(chunks_of(tmp_path, new, hints_of(data, old))) == spans(chunks_of(tmp_path, new))


@pytest.mark.parametrize("text, expected", [("4M", 4 << 20), ("512K", 512 << 10), ("65536", 65536),
                                            ("1G", 1 << 30), ("2MiB", 2 << 20)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "12", "2G", "4T", True, "-1M", "1.5M"])
def test_parse_size_refuses(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_default_chunk_size_is_one_mebibyte():
    assert DEFAULT_CHUNK_BYTES == 1 << 20


def test_chunk_lines_keep_their_newlines():
    assert chunk_lines(b"a b\nc\n") == ["a b\n", "c\n"]
    assert chunk_lines(b"a\n\nb") == ["a\n", "\n", "b"]
    assert chunk_lines("ünï\n".encode()) == ["ünï\n"]
