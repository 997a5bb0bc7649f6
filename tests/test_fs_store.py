"""exmake.fs.store: the workdir's LMDB environment, on a real LMDB in tmp_path.

Reads and writes by named database, deletion by a None value, map growth
past INITIAL_MAP_BYTES, read-only opening, and the StoreCorrupt errors that
tell the user how to recover.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from exmake.fs.store import INITIAL_MAP_BYTES, SCHEMA_VERSION, Store, StoreCorrupt


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "lmdb")


@pytest.fixture
def store(path):
    s = Store(path)
    yield s
    s.close()


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)


def test_put_many_then_get(store):
    store.put_many([("trace", b"k1", b"count-1"), ("failed", b"k1", b"count-2")])
    assert store.get("trace", b"k1") == b"count-1"
    assert store.get("failed", b"k1") == b"count-2"  # databases are separate
    assert store.get("trace", b"missing") is None


def test_get_many_returns_present_keys_only(store):
    store.put_many([("trace", b"a", b"1"), ("trace", b"b", b"2")])
    assert store.get_many("trace", [b"a", b"b", b"c"]) == {b"a": b"1", b"b": b"2"}


def test_items_with_prefix(store):
    store.put_many([("hashes", k, b"v") for k in (b"/a/1", b"/a/2", b"/ab", b"/b/1")])
    assert [k for k, _ in store.items("hashes", b"/a/")] == [b"/a/1", b"/a/2"]
    assert [k for k, _ in store.items("hashes", b"/a")] == [b"/a/1", b"/a/2", b"/ab"]
    assert len(store.items("hashes")) == 4
    assert store.items("hashes", b"/z") == []


def test_none_value_deletes(store):
    store.put_many([("trace", b"a", b"1"), ("trace", b"b", b"2")])
    store.put_many([("trace", b"a", None), ("trace", b"never-there", None)])
    assert store.get("trace", b"a") is None
    assert store.get("trace", b"b") == b"2"


def test_commit_writes_rows_and_raises_counters_in_one_transaction(store):
    store.commit([("trace", b"k1", b"count-1")], {"count": 4})
    assert store.get("trace", b"k1") == b"count-1"
    assert store.counters() == {"count": 5}
    store.commit([], {"count": 2})  # a counter never goes down
    assert store.counters() == {"count": 5}


def test_schema_written_and_data_persist_across_reopen(path):
    first = Store(path)
    assert first.created
    first.put_many([("trace", b"k", b"v")])
    first.close()
    again = Store(path)
    try:
        assert not again.created
        assert again.get("meta", b"schema") == SCHEMA_VERSION
        assert again.get("trace", b"k") == b"v"
    finally:
        again.close()


def test_map_grows_past_initial_size(store):
    block = b"x" * (1 << 20)
    for batch in range(10):  # 100 MiB in total, over the 64 MiB initial map
        store.put_many([("urd", b"%03d" % (batch * 10 + i), block) for i in range(10)])
    assert store.env.info()["map_size"] > INITIAL_MAP_BYTES
    rows = store.get_many("urd", [b"%03d" % i for i in range(100)])
    assert len(rows) == 100 and all(v == block for v in rows.values())


def test_readonly_store_reads_but_never_writes(path):
    rw = Store(path)
    rw.put_many([("trace", b"k", b"v")])
    rw.close()
    ro = Store(path, readonly=True)
    try:
        assert ro.get("trace", b"k") == b"v"
        ro.put_many([("trace", b"k2", b"v2"), ("trace", b"k", None)])  # a no-op
        assert ro.get("trace", b"k2") is None
        assert ro.get("trace", b"k") == b"v"
    finally:
        ro.close()


def test_readonly_on_missing_path_raises_and_creates_nothing(path):
    """Workspace checks for data.mdb first; Store itself reports the missing env."""
    with pytest.raises(StoreCorrupt):
        Store(path, readonly=True)
    assert not os.path.exists(path)


def test_schema_mismatch_raises(path):
    s = Store(path)
    s.put_many([("meta", b"schema", b"999")])
    s.close()
    with pytest.raises(StoreCorrupt, match="schema '999'"):
        Store(path)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_data_file_raises_with_recovery_hint(path, damage):
    s = Store(path)
    s.put_many([("trace", b"k%d" % i, b"v" * 1000) for i in range(100)])
    s.close()
    data = os.path.join(path, "data.mdb")
    if damage == "garbage":
        with open(data, "wb") as f:
            f.write(b"\x5a" * 20000)
    else:
        os.truncate(data, 100)
    with pytest.raises(StoreCorrupt) as info:
        Store(path)
    assert f"mv {path} {path}.broken" in str(info.value)


def test_data_file_truncated_after_meta_pages_raises(path):
    s = Store(path)
    s.put_many([("trace", b"k%d" % i, b"v" * 1000) for i in range(1000)])
    s.close()
    os.truncate(os.path.join(path, "data.mdb"), 8192)
    proc = run_python(f"""
        from exmake.fs.store import Store, StoreCorrupt
        try:
            Store({path!r}).items("trace")
        except StoreCorrupt:
            print("StoreCorrupt")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "StoreCorrupt", proc


def test_store_survives_map_growth_by_another_process(store, path):
    store.put_many([("trace", b"mine", b"1")])
    proc = run_python(f"""
        from exmake.fs.store import Store
        s = Store({path!r})
        for i in range(10):
            s.put_many([("urd", b"%d-%d" % (i, j), b"x" * (1 << 20)) for j in range(10)])
        s.close()
    """)
    assert proc.returncode == 0, proc.stderr
    try:
        store.put_many([("trace", b"mine", b"2")])
        found = store.get("trace", b"mine")
    except Exception as exc:  # lmdb.MapResizedError today
        found = repr(exc)
    assert found == b"2"
