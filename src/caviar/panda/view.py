"""What the babysitting page draws, computed from a run's ``state()`` by pure functions.

The page only draws (STYLE lesson 10): each branch's whole curve (its parent's points up to
``from_epoch``, then its own), a colour per branch, the command markers with their labels
(``lr 1e-3 → 3e-3``) and the branch tree in display order are worked out here and tested.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: plotly's default colours (D3 category 10), one per branch id, cycling
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

#: the columns of a curve point the page plots
METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def short(value: Any) -> str:
    """A value as a marker shows it: ``1e-3``, ``0.9``, ``cosine``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if not math.isfinite(value):
            return repr(value)  # nan, inf, -inf
        if abs(value) < 1e-2 or abs(value) >= 1e4:
            mantissa, exponent = f"{value:.3e}".split("e")
            mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa}e{int(exponent)}"
        return f"{value:.4g}"
    return str(value)


def colour(branch: int) -> str:
    """The colour of branch ``branch`` on every chart and in the tree."""
    return PALETTE[branch % len(PALETTE)]


def label(command: Mapping[str, Any]) -> str:
    """A command in words: ``lr 1e-3 → 3e-3``, ``rollback → branch 2``, ``pause``."""
    key, old, new = command["key"], command.get("old"), command.get("new")
    if key in ("pause", "resume", "stop"):
        return str(key)
    if key == "rollback":  # old: the branch left, new: the branch started
        return f"rollback → branch {new}" if isinstance(new, int) else "rollback"
    return f"{key} {short(old)} → {short(new)}"


def ancestry(state: Mapping[str, Any], branch: int) -> list[tuple[int, int | None]]:
    """``branch`` and its ancestors, root last, each with the last epoch of it that counts for
    ``branch`` (None: all of it): ``[(2, None), (1, 5), (0, 3)]``."""
    parents = {b["id"]: b for b in state["branches"]}
    chain: list[tuple[int, int | None]] = []
    b: int | None = branch
    limit: int | None = None
    while b is not None and b in parents and all(b != c for c, _ in chain):  # a cycle ends
        chain.append((b, limit))
        from_epoch = parents[b]["from_epoch"]
        if from_epoch is not None:
            limit = from_epoch if limit is None else min(limit, from_epoch)
        b = parents[b]["parent"]
    return chain


def lineage(state: Mapping[str, Any], branch: int) -> list[dict[str, Any]]:
    """Branch ``branch``'s whole curve: its parent's points up to ``from_epoch``, then its own."""
    points: list[dict[str, Any]] = []
    for b, limit in reversed(ancestry(state, branch)):  # root first
        own = state["curves"].get(str(b), [])
        points += [p for p in own if limit is None or p["epoch"] <= limit]
    return points


def tree(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The branches depth first (children by id), each with its depth, colour, last epoch and
    whether it is the one being trained."""
    children: dict[int | None, list[Mapping[str, Any]]] = {}
    ids = {b["id"] for b in state["branches"]}
    for b in sorted(state["branches"], key=lambda b: b["id"]):
        parent = b["parent"] if b["parent"] in ids else None
        children.setdefault(parent, []).append(b)
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(parent: int | None, depth: int) -> None:
        for b in children.get(parent, []):
            if b["id"] in seen:
                continue
            seen.add(b["id"])
            own = state["curves"].get(str(b["id"]), [])
            last = own[-1]["epoch"] if own else (b["from_epoch"] or 0)
            rows.append(
                {
                    "id": b["id"],
                    "parent": b["parent"],
                    "from_epoch": b["from_epoch"],
                    "mode": b["mode"],
                    "depth": depth,
                    "last_epoch": last,
                    "colour": colour(b["id"]),
                    "active": b["id"] == state["branch"],
                }
            )
            visit(b["id"], depth + 1)

    visit(None, 0)
    return rows


def view(state: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the page draws: ``lines`` (one per branch, columns of :data:`METRICS` by
    epoch), ``markers`` (commands that change the curve, at the epoch they apply), ``tree`` and
    ``commands`` (every command, labelled, newest last)."""
    active = state["branch"]
    limits = dict(ancestry(state, active))
    rows = tree(state)
    lines = []
    for row in rows:
        points = lineage(state, row["id"])
        line: dict[str, Any] = {
            "branch": row["id"],
            "colour": row["colour"],
            "active": row["active"],
            "epoch": [p["epoch"] for p in points],
        }
        for metric in METRICS:
            line[metric] = [p.get(metric) for p in points]
        lines.append(line)
    commands = [
        {
            "id": c["id"],
            "branch": c["branch"],
            "epoch": c["epoch"],
            "label": label(c),
            "applied": c["applied"],
            "time": c["time"],
        }
        for c in state["commands"]
    ]
    markers = [
        {
            **c,
            "colour": colour(c["branch"]),
            "on_active": c["branch"] in limits
            and (limits[c["branch"]] is None or c["epoch"] <= limits[c["branch"]]),
        }
        for c, raw in zip(commands, state["commands"], strict=True)
        if raw["key"] not in ("pause", "resume", "stop")
    ]
    return {
        "active": active,
        "lines": lines,
        "markers": markers,
        "tree": rows,
        "commands": commands,
    }
