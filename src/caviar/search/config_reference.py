"""The config reference (``docs/config.md``), written from the tables that validate a config.

Every key's default, rule and help come from the section dataclasses of :mod:`caviar.search.config`
and from :data:`caviar.nn.HYPERPARAMETERS`, the same objects that check a user's values, so the
page and the validation cannot drift apart (a test compares the file with :func:`reference`).
Regenerate it with ``python -m caviar.search.config_reference > docs/config.md``.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from typing import Any

from caviar.nn.spec import CROSS_RULES, GROUP_KEYS, HYPERPARAMETERS, READ_ONLY_WITH
from caviar.search.sections import SECTIONS
from caviar.space.dimensions import SCALES

INTRO = """\
# The study config

One schema, read from TOML or YAML (`caviar tune study.toml`) or given as a mapping
(`caviar.tune({...})`). Every section and key is optional; a key left out takes its default.
Unknown keys and bad values are refused with the key path, the rule and the value, e.g.
`space.lr: must be a number in (0, inf), got 0`; so is a key given where it is never read (a
sampler's setting with another sampler, a halving rung past the last epoch): it would change
nothing. A key at its default is never refused.

This page is generated from the tables that validate a config
(`python -m caviar.search.config_reference > docs/config.md`); a test keeps it in step.
"""

SPACE = """\
## [space]

Any engine hyperparameter below, as a plain value (fixed) or as a dimension to search:

- `{ scale = "log", low = 1e-4, high = 1e-1 }`, with the scales
  %s (`one_minus_log` searches `1 - beta` on a log scale: median 0.99 over [0.9, 0.999]);
- `{ choice = ["relu", "tanh"] }`: one of the values;
- a plain value, or `{ fixed = value }`: not searched.

Every value a dimension can give must meet the hyperparameter's rule (checked at both ends of a
range and at every choice), and so must every combination of the rules across hyperparameters
(%s: every choice with both ends of a range). A hyperparameter set where the engine never reads
it (`beta2` with `optimizer = "sgd"`) is refused: it would change nothing. Hyperparameters
left out take the engine's default and are recorded with every trial. Members that differ in
%s train in different vectorized groups; widths and depths share one. The ones marked
"may change mid-run" are those `caviar panda set` may change at an epoch boundary.
"""


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bar inside a cell would end it


def _table(rows: list[tuple[str, str, str, str]]) -> str:
    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    lines += [f"| `{a}` | {b} | {_cell(c)} | {_cell(d)} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _read_with(name: str) -> str:
    """When the engine reads ``name``, if not always (a config setting it elsewhere is refused)."""
    if name not in READ_ONLY_WITH:
        return ""
    decider, values = READ_ONLY_WITH[name]
    return f"; read only when {decider} is {' or '.join(json.dumps(v) for v in values)}"


def reference() -> str:
    """The markdown text of ``docs/config.md``."""
    parts = [INTRO]
    for name, section in SECTIONS.items():
        rows = []
        for f in fields(section):
            default = None if f.default is MISSING else f.default
            only = f.metadata["only"]
            read = f" (read only when {only.describe()})" if only else ""
            rows.append(
                (f.name, _value(default), f.metadata["rule"].describe(), f.metadata["help"] + read)
            )
        about = (section.__doc__ or "").strip().partition(": ")[2]  # after "``[study]``: "
        parts.append(f"## [{name}]\n\n{about[:1].upper()}{about[1:]}\n\n{_table(rows)}\n")
    scales = ", ".join(f"`{s}`" for s in SCALES)
    groups = ", ".join(f"`{k}`" for k in GROUP_KEYS)
    rows = [
        (
            h.name,
            _value(h.default),
            h.describe(),
            h.help + (" (may change mid-run)" if h.mid_run else "") + _read_with(h.name),
        )
        for h in HYPERPARAMETERS.values()
    ]
    rules = ", ".join(" with ".join(f"`{n}`" for n in names) for names in CROSS_RULES)
    parts.append(SPACE % (scales, rules, groups) + "\n" + _table(rows) + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
