"""exmake.fs.hashing and exmake.fs.hashcache: content digests and their stat-keyed cache.

A cached digest is trusted only when the stat signature (dev, ino, size,
mtime_ns) is unchanged and the mtime was older than RACY_WINDOW_NS when the
file was hashed. Trust is proven by rewriting a file in place with the same
size and mtime: a trusted cache must return the OLD digest.
"""

import os
import time

import blake3
import pytest

from exmake.fs.hashcache import RACY_WINDOW_NS, HashCache
from exmake.fs.hashing import THREADED_FROM_BYTES, hash_bytes, hash_file
from exmake.fs.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "lmdb"))
    yield s
    s.close()


def write(path, data, mtime_ns=None):
    """Rewrite `path` in place (same inode) and optionally set its mtime."""
    mode = "r+b" if path.exists() else "wb"
    with open(path, mode) as f:
        f.write(data)
        f.truncate()
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def old_ns():
    return time.time_ns() - 5 * RACY_WINDOW_NS


def hash_and_flush(store, path):
    cache = HashCache(lambda: store)
    digest = cache.digest(str(path))
    cache.flush()
    return digest


def test_digest_is_blake3_with_prefix(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"hello world\n")
    expected = "b3:" + blake3.blake3(b"hello world\n").hexdigest()
    assert hash_bytes(b"hello world\n") == expected
    assert hash_file(str(path)) == expected
    assert HashCache().digest(str(path)) == expected


def test_empty_file(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert hash_file(str(path), 0) == hash_bytes(b"")


def test_large_file_threaded_hash_equals_bytes_hash(tmp_path):
    data = os.urandom(1 << 20) * 40  # 40 MiB, above THREADED_FROM_BYTES
    assert len(data) > THREADED_FROM_BYTES
    path = tmp_path / "big"
    path.write_bytes(data)
    assert hash_file(str(path), len(data)) == hash_bytes(data)
    assert hash_file(str(path)) == hash_bytes(data)


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        HashCache().digest(str(tmp_path / "nope"))


def test_unchanged_old_signature_is_trusted(tmp_path, store):
    path = tmp_path / "f"
    write(path, b"old content", old_ns())
    old = hash_and_flush(store, path)
    cache = HashCache(lambda: store)
    assert cache.digest(str(path)) == old
    assert cache.pending == []  # taken from the store, not hashed again


def test_same_size_rewrite_with_the_mtime_restored_is_seen_through_the_ctime(tmp_path, store):
    """Issue 10, defect 10: same inode, size and mtime (`rsync --inplace -t`);
    only the ctime, which the kernel sets, tells."""
    path = tmp_path / "f"
    mtime = old_ns()
    write(path, b"old content", mtime)
    hash_and_flush(store, path)
    time.sleep(0.01)
    write(path, b"new content", mtime)
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"new content")


def test_racy_mtime_is_not_trusted(tmp_path, store):
    path = tmp_path / "f"
    mtime = time.time_ns()  # within RACY_WINDOW_NS of the hash time
    write(path, b"old content", mtime)
    hash_and_flush(store, path)
    write(path, b"new content", mtime)
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"new content")


def test_changed_size_rehashes(tmp_path, store):
    path = tmp_path / "f"
    mtime = old_ns()
    write(path, b"old", mtime)
    hash_and_flush(store, path)
    write(path, b"longer content", mtime)
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"longer content")


def test_changed_mtime_rehashes(tmp_path, store):
    path = tmp_path / "f"
    mtime = old_ns()
    write(path, b"old content", mtime)
    hash_and_flush(store, path)
    write(path, b"new content", mtime + 1)
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"new content")


def test_trusted_hit_writes_no_new_record(tmp_path, store):
    path = tmp_path / "f"
    write(path, b"x", old_ns())
    hash_and_flush(store, path)
    cache = HashCache(lambda: store)
    cache.digest(str(path))
    assert cache.pending == []


def test_records_survive_flush_and_reopen(tmp_path):
    path = tmp_path / "f"
    mtime = old_ns()
    write(path, b"old content", mtime)
    lmdb_dir = str(tmp_path / "lmdb")
    first = Store(lmdb_dir)
    old = hash_and_flush(first, path)
    first.close()

    reopened = Store(lmdb_dir)
    try:
        record = reopened.get("hashes", str(path).encode()).decode().split(" ")
        assert len(record) == 7 and record[6] == old
        assert HashCache(lambda: reopened).digest(str(path)) == old
    finally:
        reopened.close()


def test_flush_without_store_drops_rows(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    cache = HashCache()
    cache.digest(str(path))
    cache.flush()
    assert cache.pending == []


@pytest.mark.parametrize("record", [b"", b"garbage", b"1 2 3", b"a b c d e f g", b"1 2 3 4 5 6 7 8",
                                    b"1 2 3 4 5 6 b3:" + b"0" * 64])
def test_corrupt_record_is_ignored(tmp_path, store, record):
    path = tmp_path / "f"
    write(path, b"content", old_ns())
    store.put_many([("hashes", str(path).encode(), record)])
    cache = HashCache(lambda: store)
    assert cache.digest(str(path)) == hash_bytes(b"content")
    assert len(cache.pending) == 1  # the bad record gets replaced


def test_non_utf8_record_is_ignored(tmp_path, store):
    path = tmp_path / "f"
    write(path, b"content", old_ns())
    store.put_many([("hashes", str(path).encode(), b"\xff\xfe 1 2 3 4 5")])
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"content")


def test_record_with_malformed_digest_is_ignored(tmp_path, store):
    path = tmp_path / "f"
    write(path, b"content", old_ns())
    st = os.stat(path)
    row = f"{st.st_dev} {st.st_ino} {st.st_size} {st.st_mtime_ns} {time.time_ns()} not-a-digest"
    store.put_many([("hashes", str(path).encode(), row.encode())])
    assert HashCache(lambda: store).digest(str(path)) == hash_bytes(b"content")
