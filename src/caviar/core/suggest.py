"""'Did you mean': the allowed word nearest to a mistyped one (``lrr`` -> ``lr``).

A refusal that lists what is allowed also names the likeliest intended word, so a typo is fixed
without reading the list. The match is difflib's ratio (the standard library's; its cutoff 0.6
keeps unrelated words silent), compared without case.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: difflib's similarity a word must reach to be suggested
CUTOFF = 0.6


def nearest(word: str, allowed: Iterable[object]) -> str | None:
    """The allowed word most like ``word``, or None when none is alike (or ``word`` is one)."""
    words = [w for w in map(str, allowed) if w]
    if word in words:
        return None
    folded = {w.lower(): w for w in words}
    match = difflib.get_close_matches(word.lower(), list(folded), n=1, cutoff=CUTOFF)
    return folded[match[0]] if match else None


def did_you_mean(word: object, allowed: Iterable[object]) -> str:
    """``"; did you mean 'lr'?"`` to append to a refusal, or ``""`` when nothing is alike."""
    if not isinstance(word, str) or not word.strip():
        return ""
    match = nearest(word.strip(), allowed)
    return "" if match is None else f"; did you mean {match!r}?"
