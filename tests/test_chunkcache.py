"""exmake.chunkcache: entries written crash-safely, checked on read, evicted least recently used first."""

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from exmake import chunkcache
from exmake.chunkcache import ChunkCache, base_key, cap_bytes, chunk_key

from conftest import REPO, wait_for

KEY = "ab" + "0" * 62


def test_an_entry_round_trips(tmp_path):
    cache = ChunkCache(str(tmp_path / "chunks"))
    assert cache.load(KEY) == (False, None)
    cache.store(KEY, pickle.dumps(Counter(a=2, b=1)))
    assert cache.load(KEY) == (True, Counter(a=2, b=1))
    assert os.path.isfile(tmp_path / "chunks" / "ab" / KEY)


def test_a_sound_entry_that_no_longer_unpickles_is_a_miss(tmp_path):
    """Review of issue 16: a class moved or renamed since (a library upgraded)
    made every build fail; the entry is a miss, and goes."""
    cache = ChunkCache(str(tmp_path / "chunks"))
    payload = pickle.dumps(Counter(a=1)).replace(b"collections", b"gone_module")  # names a module that is not there
    cache.store(KEY, payload)
    assert cache.load(KEY) == (False, None)
    assert not os.path.exists(tmp_path / "chunks" / "ab" / KEY)


@pytest.mark.parametrize("damage", ["truncate", "flip", "other key", "no header"])
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path, damage):
    cache = ChunkCache(str(tmp_path / "chunks"))
    cache.store(KEY, pickle.dumps(list(range(1000))))
    path = cache.path(KEY)
    data = open(path, "rb").read()
    if damage == "truncate":
        data = data[:-10]
    elif damage == "flip":
        data = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
    elif damage == "other key":
        other = "cd" + "1" * 62
        cache.store(other, pickle.dumps(1))
        data = open(cache.path(other), "rb").read()
    else:
        data = pickle.dumps(list(range(1000)))
    with open(path, "wb") as f:
        f.write(data)
    assert cache.load(KEY) == (False, None)
    assert not os.path.exists(path)


WRITER = """
import pickle, sys
from exmake.chunkcache import ChunkCache
cache = ChunkCache(sys.argv[1])
payload = pickle.dumps(b"x" * (64 << 20))
n = 0
while True:
    cache.store("%02x" % (n % 256) + "%062x" % n, payload)
    n += 1
"""


def test_a_writer_killed_mid_write_leaves_no_entry_that_is_read(tmp_path):
    """SIGKILL a real process while it writes 64 MiB entries: what it left
    under final names is whole, its temporary file is never read, gc removes it."""
    directory = tmp_path / "chunks"
    for attempt in range(20):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(directory)],
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            wait_for(lambda: any(n.startswith(chunkcache.TMP_PREFIX) for d in _subdirs(directory)
                                 for n in os.listdir(d)), timeout=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        tmp = [os.path.join(d, n) for d in _subdirs(directory) for n in os.listdir(d)
               if n.startswith(chunkcache.TMP_PREFIX)]
        if tmp:
            break
    assert tmp, "the kill never landed during a write"
    cache = ChunkCache(str(directory))
    finals = [p for _, _, p in cache.entries()]
    for path in finals:
        found, value = cache.load(os.path.basename(path))
        assert found and value == b"x" * (64 << 20)
    # The torn temporary file, even renamed to an entry's name (a power cut's
    # worst case), is never taken for a result.
    torn = tmp[0]
    key = "ee" + "f" * 62
    os.makedirs(os.path.dirname(cache.path(key)), exist_ok=True)
    os.rename(torn, cache.path(key))
    assert cache.load(key) == (False, None)
    # gc, alone on the workdir, removes what the killed writer left.
    cache.evict(1 << 40, all_tmp=True)
    assert not [n for d in _subdirs(directory) for n in os.listdir(d) if n.startswith(chunkcache.TMP_PREFIX)]


def _subdirs(directory):
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, d) for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))]


def test_eviction_removes_the_least_recently_used_first(tmp_path):
    cache = ChunkCache(str(tmp_path / "chunks"))
    keys = [f"{n:02x}" + f"{n:062x}" for n in range(6)]
    for n, key in enumerate(keys):
        cache.store(key, pickle.dumps(b"y" * 1000))
        os.utime(cache.path(key), ns=(n * 10**9, n * 10**9))  # stored in this order
    assert cache.load(keys[0])[0]  # used now: the most recent
    size = os.path.getsize(cache.path(keys[0]))
    removed, freed, kept, kept_bytes = cache.evict(3 * size)
    assert (removed, kept) == (3, 3)
    assert [cache.load(k)[0] for k in keys] == [True, False, False, False, True, True]
    assert kept_bytes <= 3 * size


def test_a_dry_run_evicts_nothing(tmp_path):
    cache = ChunkCache(str(tmp_path / "chunks"))
    cache.store(KEY, pickle.dumps(1))
    assert cache.evict(0, dry_run=True)[0] == 1
    assert cache.load(KEY)[0]


def test_stale_temporary_files_go_and_live_ones_stay(tmp_path):
    cache = ChunkCache(str(tmp_path / "chunks"))
    cache.store(KEY, pickle.dumps(1))
    old = tmp_path / "chunks" / "ab" / (chunkcache.TMP_PREFIX + "1-old")
    new = tmp_path / "chunks" / "ab" / (chunkcache.TMP_PREFIX + "2-new")
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    past = time.time() - chunkcache.STALE_TMP_S - 10
    os.utime(old, (past, past))
    cache.evict(1 << 30)
    assert not old.exists() and new.exists()


@pytest.mark.parametrize("value, expected", [(None, 2 << 30), ("500M", 500 << 20), ("0", 0), ("1G", 1 << 30), ("100K", 100 << 10), ("4096", 4096)])
def test_the_cap(value, expected):
    environ = {} if value is None else {chunkcache.CAP_ENV: value}
    assert cap_bytes(environ) == expected


def test_a_bad_cap_names_the_variable():
    with pytest.raises(ValueError, match="EXMAKE_CHUNK_CACHE_MAX=lots"):
        cap_bytes({chunkcache.CAP_ENV: "lots"})


SETUP = {"step": {"code": {"job script count.py": "b3:aa"}, "options": {"min": 1}, "env": {}},
         "inputs": {"text": [["big.txt", "b3:11"]], "stop": [["stop.txt", "b3:22"]]},
         "deps": {"words": {"jobid": "words-1", "outputs": [["w.txt", "b3:33"]]}}}


def _with(path, value):
    import copy
    setup = copy.deepcopy(SETUP)
    *parents, last = path
    node = setup
    for name in parents:
        node = node[name]
    node[last] = value
    return setup


@pytest.mark.parametrize("path, value", [
    (("step", "code"), {"job script count.py": "b3:ab"}),     # the script edited
    (("step", "options"), {"min": 2}),                         # an option changed
    (("step", "env"), {"LANG": "C"}),
    (("inputs", "stop"), [["stop.txt", "b3:23"]]),             # another input changed
    (("deps", "words"), {"jobid": "words-2", "outputs": [["w.txt", "b3:34"]]}),
])
def test_the_base_key_changes_with_what_a_chunk_can_see(path, value):
    assert base_key(_with(path, value), "text", 1) != base_key(SETUP, "text", 1)


@pytest.mark.parametrize("path, value", [
    (("inputs", "text"), [["big.txt", "b3:12"]]),                        # the chunked input grew
    (("deps", "words"), {"jobid": "words-2", "outputs": [["w.txt", "b3:33"]]}),  # same output, new job
])
def test_the_base_key_ignores_what_chunks_do_not_see(path, value):
    assert base_key(_with(path, value), "text", 1) == base_key(SETUP, "text", 1)


def test_chunk_keys_differ_by_content_and_scheme():
    base = base_key(SETUP, "text", 1)
    assert chunk_key(base, "b3:01") != chunk_key(base, "b3:02")
    assert base != base_key(SETUP, "text", 2)
