"""'Did you mean': the nearest allowed word to a typo, and silence where nothing is alike."""

from __future__ import annotations

import pytest

from caviar.core.suggest import did_you_mean, nearest


@pytest.mark.parametrize(
    ("word", "allowed", "expected"),
    [
        ("lrr", ["lr", "epochs", "dropout"], "lr"),
        ("mnsit", ["digits", "fashion-mnist", "mnist"], "mnist"),
        ("--trails", ["--trials", "--timeout", "--threads"], "--trials"),
        ("TPE", ["random", "tpe"], "tpe"),  # case does not hide the match
        ("hiden_units", ["hidden_units", "n_layers"], "hidden_units"),
        ("banana", ["lr", "epochs"], None),  # nothing alike: no guess
        ("lr", ["lr", "lrr"], None),  # an allowed word needs no suggestion
        ("x", [], None),
    ],
)
def test_nearest_names_the_likeliest_intended_word(
    word: str, allowed: list[str], expected: str | None
) -> None:
    assert nearest(word, allowed) == expected


def test_did_you_mean_is_a_clause_to_append_or_nothing() -> None:
    assert did_you_mean("lrr", ["lr"]) == "; did you mean 'lr'?"
    assert did_you_mean("zzz", ["lr"]) == ""
    assert did_you_mean(3, ["lr"]) == ""  # a number is not a typo of a word
    assert did_you_mean("  ", ["lr"]) == ""
