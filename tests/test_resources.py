"""exmake.resources: memory sizes (-> MiB) and durations (-> seconds).

Equal requests written differently must normalise to the same value, bad
ones raise ValueError, and format_time round-trips through parse_time_s.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exmake.resources import MAX_TIME_S, format_time, normalise, parse_mem_mib, parse_time_s


@pytest.mark.parametrize("text, mib", [
    ("4G", 4096), ("4096M", 4096), ("4GB", 4096), ("4GiB", 4096), ("4 g", 4096),
    ("512MB", 512), ("1.5G", 1536), ("1T", 1024 * 1024), ("1K", 1), ("1536K", 2),
    (100, 100),
])
def test_mem_sizes(text, mib):
    assert parse_mem_mib(text) == mib


@pytest.mark.parametrize("bad", ["abc", "", "4", "4X", "G", "-1G", "0G", "1.5.G", 0, -5, True, 1.5])
def test_bad_mem_raises(bad):
    with pytest.raises(ValueError):
        parse_mem_mib(bad)


@pytest.mark.parametrize("text, seconds", [
    ("90m", 5400), ("1h30m", 5400), ("01:30:00", 5400), ("1:30:00", 5400), (90, 5400),
    ("45s", 45), ("2d", 172800), ("1d2h3m4s", 93784), ("1-00:00:00", 86400),
    ("2-01:00:00", 176400), ("05:30", 330), (" 90M ", 5400),
])
def test_durations(text, seconds):
    assert parse_time_s(text) == seconds


@pytest.mark.parametrize("bad", [
    "1h70", "abc", "", "25:61:00", "01:60:00", "m", "1:2:3:4", "00:00", "0s",
    0, -1, True, False,
])
def test_bad_durations_raise(bad):
    with pytest.raises(ValueError):
        parse_time_s(bad)


def test_days_hours_minutes_is_read_as_slurm_does_or_rejected():
    try:
        seconds = parse_time_s("1-10:30")
    except ValueError:
        return
    assert seconds == (24 + 10) * 3600 + 30 * 60


def test_normalise_dispatches_per_key():
    assert normalise("mem", "2G") == 2048
    assert normalise("time", "1h") == 3600
    assert normalise("cores", 4) == 4
    assert normalise("extra", "--exclusive") == ["--exclusive"]
    with pytest.raises(ValueError):
        normalise("cores", 0)


@pytest.mark.parametrize("seconds, text", [
    (45, "00:00:45"), (5400, "01:30:00"), (86399, "23:59:59"), (86400, "1-00:00:00"),
    (176461, "2-01:01:01"),
])
def test_format_time(seconds, text):
    assert format_time(seconds) == text
    assert parse_time_s(text) == seconds


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=MAX_TIME_S))  # past it: refused (test_hostile_input)
def test_format_time_round_trips(seconds):
    text = format_time(seconds)
    assert parse_time_s(text) == seconds
    assert format_time(parse_time_s(text)) == text
