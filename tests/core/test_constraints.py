"""The one validator's kinds: what each allows, what it reads a value as, and its exact words.

Every expectation is written out by hand: the values a rule gives back, and the message a bad
value gets (``<owner>: must be <words>, got <value>``, or the bad item's own owner).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from caviar.core.constraints import (
    FRACTION,
    TEXT,
    Alias,
    AnyOf,
    Constraint,
    ListOf,
    Record,
    Scalar,
    TableOf,
    any_of,
    integer,
    number,
    one_of,
    optional,
)
from caviar.core.errors import InvalidValue

COUNT = integer(1)


def refused(rule: Constraint, value: Any, message: str) -> None:
    with pytest.raises(InvalidValue, match="^" + re.escape(message) + "$"):
        rule.check(value, "k")
    assert not rule.allows(value)


def test_every_rule_is_a_constraint_of_a_kind() -> None:
    rules = {
        "integer": COUNT,
        "number": number(0.0, 1.0),
        "boolean": Scalar("boolean"),
        "text": TEXT,
        "choice": one_of("a", "b"),
        "list": ListOf(COUNT),
        "table": TableOf(COUNT),
        "record": Record({"a": COUNT}),
        "any": any_of(COUNT, TEXT),
        "alias": Alias("auto", None),
    }
    for kind, rule in rules.items():
        assert isinstance(rule, Constraint) and rule.kind == kind


def test_a_scalar_kind_must_be_known() -> None:
    with pytest.raises(InvalidValue, match=re.escape("Scalar: kind must be one of ['integer',")):
        Scalar("float")


# -- a list of ------------------------------------------------------------------------------------
def test_a_list_is_read_as_a_tuple_of_its_checked_items() -> None:
    rule = ListOf(number(0.0))
    assert rule.check([1, 2.5], "k") == (1.0, 2.5)  # each item read by the item's rule
    assert type(rule.check([1], "k")[0]) is float
    assert rule.check((3.0,), "k") == (3.0,)


@pytest.mark.parametrize(
    ("min_len", "words"),
    [
        (0, "a list, each an integer in [1, inf)"),
        (1, "a non-empty list, each an integer in [1, inf)"),
        (2, "a list of 2 or more, each an integer in [1, inf)"),
    ],
)
def test_a_list_says_how_long_it_must_be(min_len: int, words: str) -> None:
    assert ListOf(COUNT, min_len=min_len).describe() == words


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (3, "k: must be a non-empty list, each an integer in [1, inf), got 3"),
        ([], "k: must be a non-empty list, each an integer in [1, inf), got []"),
        ("1,2", "k: must be a non-empty list, each an integer in [1, inf), got '1,2'"),
        ({"a": 1}, "k: must be a non-empty list, each an integer in [1, inf), got {'a': 1}"),
        ([1, 0], "k[1]: must be an integer in [1, inf), got 0"),
        ([2, True], "k[1]: must be an integer in [1, inf), got True"),
    ],
)
def test_a_bad_list_or_item_is_named(value: Any, message: str) -> None:
    refused(ListOf(COUNT), value, message)


def test_a_list_with_a_separator_reads_one_text_as_its_parts() -> None:
    rule = ListOf(TEXT, min_len=0, sep=",")
    assert rule.check("a, b ,c", "k") == ("a", "b", "c")
    assert rule.check("  ", "k") == ()
    assert rule.check(["a"], "k") == ("a",)
    refused(rule, "a,,b", "k[1]: must be a non-empty string, got ''")


def test_a_list_fits_lists_and_with_a_separator_texts() -> None:
    assert ListOf(COUNT).fits([0]) and ListOf(COUNT).fits(())
    assert not ListOf(COUNT).fits("1") and not ListOf(COUNT).fits(1)
    assert ListOf(COUNT, sep=",").fits("1")


def test_a_list_with_words_of_its_own() -> None:
    rule = ListOf(COUNT, words="trial counts, one per round")
    refused(rule, 5, "k: must be trial counts, one per round, got 5")


# -- a table of -----------------------------------------------------------------------------------
def test_a_table_is_read_as_a_dict_of_its_checked_values() -> None:
    rule = TableOf(number(0.0))
    assert rule.check({"x": 1, "y": 0.5}, "k") == {"x": 1.0, "y": 0.5}
    assert type(rule.check({"x": 1}, "k")["x"]) is float
    assert rule.describe() == "a table of names, each to a number in [0, inf)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1], "k: must be a table of names, each to an integer in [1, inf), got [1]"),
        ("x=1", "k: must be a table of names, each to an integer in [1, inf), got 'x=1'"),
        ({"x": 3, "y": 0}, "k.y: must be an integer in [1, inf), got 0"),
    ],
)
def test_a_bad_table_or_value_is_named(value: Any, message: str) -> None:
    refused(TableOf(COUNT), value, message)


def test_a_table_without_a_value_rule_leaves_the_values_to_its_reader() -> None:
    rule = TableOf(words="an object of changes")
    assert rule.check({"lr": [0.1], "x": None}, "k") == {"lr": [0.1], "x": None}
    refused(rule, [["lr", 0.1]], "k: must be an object of changes, got [['lr', 0.1]]")
    assert TableOf().describe() == "a table of names to values"


# -- a record (a table of known keys) -------------------------------------------------------------
RANGE = Record({"low": integer(0), "high": integer(0)}, defaults={"high": 9})


def test_a_record_fills_defaults_and_keeps_the_order_of_its_keys() -> None:
    assert RANGE.check({"low": 1}, "cfg.range") == {"low": 1, "high": 9}
    assert RANGE.check({}, "cfg.range") == {"high": 9}  # no default for low: it stays out
    read = RANGE.check({"high": 2, "low": 1}, "cfg.range")
    assert list(read.items()) == [("low", 1), ("high", 2)]


@pytest.mark.parametrize(
    ("value", "owner", "message"),
    [
        (
            {"lo": 1},
            "cfg.range.lo",
            "unknown key; range takes ['high', 'low']; did you mean 'low'?",
        ),
        ({"low": 1, "b": 0, "a": 0}, "cfg.range.a", "unknown key; range takes ['high', 'low']"),
        ({"low": -1}, "cfg.range.low", "must be an integer in [0, inf), got -1"),
        (5, "cfg.range", "must be a table of the keys ['high', 'low'], got 5"),
    ],
)
def test_a_record_names_an_unknown_key_or_a_bad_value(value: Any, owner: str, message: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        RANGE.check(value, "cfg.range")
    assert (caught.value.owner, caught.value.reason) == (owner, message)


# -- any of ---------------------------------------------------------------------------------------
AUTO_OR_COUNT = any_of(Alias("auto", None), COUNT)


def test_any_of_reads_a_value_by_the_first_rule_that_allows_it() -> None:
    assert AUTO_OR_COUNT.describe() == "'auto' or an integer in [1, inf)"
    assert AUTO_OR_COUNT.check("auto", "k") is None
    assert AUTO_OR_COUNT.check(None, "k") is None  # what 'auto' stands for reads back
    assert AUTO_OR_COUNT.check(4, "k") == 4
    count_or_share = any_of(COUNT, FRACTION)
    assert type(count_or_share.check(2, "k")) is int  # the count, not widened by FRACTION
    assert count_or_share.check(0.25, "k") == 0.25


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "k: must be 'auto' or an integer in [1, inf), got 0"),
        ("4", "k: must be 'auto' or an integer in [1, inf), got '4'"),
        ([4], "k: must be 'auto' or an integer in [1, inf), got [4]"),
    ],
)
def test_a_plain_value_any_of_refuses_gets_the_words_of_the_whole(value: Any, message: str) -> None:
    refused(AUTO_OR_COUNT, value, message)


def test_a_list_or_table_any_of_refuses_is_named_by_its_bad_item() -> None:
    rule = any_of(COUNT, ListOf(COUNT), TableOf(COUNT))
    refused(rule, [1, 0], "k[1]: must be an integer in [1, inf), got 0")
    refused(rule, {"x": 0}, "k.x: must be an integer in [1, inf), got 0")
    refused(
        rule,
        "x",
        "k: must be an integer in [1, inf) or a non-empty list, each an integer in [1, inf) or "
        "a table of names, each to an integer in [1, inf), got 'x'",
    )


def test_any_of_with_words_of_its_own() -> None:
    rule = any_of(COUNT, FRACTION, words="a count or a share")
    refused(rule, 1.5, "k: must be a count or a share, got 1.5")


def test_optional_is_a_rule_or_nothing_described_by_the_rule() -> None:
    rule = optional(ListOf(COUNT))
    assert rule.check(None, "k") is None
    assert rule.check([2], "k") == (2,)
    assert rule.describe() == "a non-empty list, each an integer in [1, inf)"
    refused(rule, [0], "k[0]: must be an integer in [1, inf), got 0")
    assert not AnyOf((COUNT,)).allows(None)


# -- an alias -------------------------------------------------------------------------------------
def test_an_alias_reads_its_word_or_its_meaning_as_the_meaning() -> None:
    devices = Alias("auto", ("auto",))
    assert devices.check("auto", "k") == ("auto",)
    assert devices.check(" auto ", "k") == ("auto",)
    assert devices.check(["auto"], "k") == ("auto",)  # a stored config holds a list
    assert devices.describe() == "'auto'"
    refused(devices, "AUTO", "k: must be 'auto', got 'AUTO'")
    refused(devices, ["auto", "cpu"], "k: must be 'auto', got ['auto', 'cpu']")


def test_an_alias_compares_with_the_type() -> None:
    refused(Alias(1, "one"), True, "k: must be 1, got True")
    refused(Alias(True, "on"), 1, "k: must be true, got 1")
    assert Alias(False, None).describe() == "false"


def test_an_alias_gives_a_fresh_copy_of_its_meaning() -> None:
    rule = Alias(True, {"eta": 3})
    first = rule.check(True, "k")
    first["eta"] = 9
    assert rule.check(True, "k") == {"eta": 3}
