"""slicer.merge: folding per-slice analysis results into one, strictly.

Numbers add, lists and tuples extend in slice order, sets unite, Counters add
(keeping zero and negative counts), dicts merge key by key, equal plain values
stay; anything else is a MergeConflict naming where, unless allowed.
"""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exmake.slicer.merge import MergeConflict, merge


def test_numbers_add():
    assert merge([1, 2, 3.5]) == 6.5


def test_lists_and_tuples_extend_in_slice_order():
    assert merge([[1, 2], [3], (4, 5)]) == [1, 2, 3, 4, 5]
    assert merge([(1,), [2], (3,)]) == (1, 2, 3)


def test_sets_unite():
    assert merge([{1, 2}, frozenset({2, 3}), {4}]) == {1, 2, 3, 4}


def test_counters_add_keeping_zero_and_negative_counts():
    result = merge([Counter(a=1, b=2), Counter(a=-1, b=1, c=-3)])
    assert isinstance(result, Counter)
    assert dict(result) == {"a": 0, "b": 3, "c": -3}


def test_dicts_merge_recursively():
    result = merge([{"n": 1, "sub": {"words": [1], "seen": {"x"}}},
                    {"n": 2, "sub": {"words": [2], "seen": {"y"}}, "only": "b"}])
    assert result == {"n": 3, "sub": {"words": [1, 2], "seen": {"x", "y"}}, "only": "b"}


@pytest.mark.parametrize("value", ["same", True, False, None])
def test_equal_plain_values_stay(value):
    assert merge([{"k": value}, {"k": value}, {"k": value}]) == {"k": value}


def test_none_entries_are_skipped():
    assert merge([None, [1], None, [2], None]) == [1, 2]
    assert merge([None, None]) is None
    assert merge([]) is None


@pytest.mark.parametrize("a, b", [("x", "y"), (True, False), (1, [1]), (1, True), ("1", 1)])
def test_conflicting_values_raise(a, b):
    with pytest.raises(MergeConflict):
        merge([a, b])


def test_conflict_names_the_key_path():
    with pytest.raises(MergeConflict, match=r"\ba/b\b"):
        merge([{"a": {"b": "x", "c": 1}}, {"a": {"b": "y", "c": 2}}])


def test_allow_conflict_keeps_the_first():
    result = merge([{"a": {"b": "x"}, "n": 1}, {"a": {"b": "y"}, "n": 2}, {"a": {"b": "z"}}],
                   allow_conflict=True)
    assert result == {"a": {"b": "x"}, "n": 3}


def test_inputs_are_left_unchanged():
    first, second = {"l": [1], "d": {"n": 1}}, {"l": [2], "d": {"n": 2}}
    merge([first, second])
    assert first == {"l": [1], "d": {"n": 1}} and second == {"l": [2], "d": {"n": 2}}


WORDS = st.lists(st.sampled_from("abcdefgh"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=8))
def test_per_slice_counters_merge_to_the_counter_of_everything(slices):
    everything = [word for words in slices for word in words]
    assert merge([Counter(words) for words in slices]) == Counter(everything)
