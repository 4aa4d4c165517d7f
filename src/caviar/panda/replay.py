"""Replay a branch from the root: the same seed, the same commands at the same epochs.

The stored tree says everything a branch's curve depends on: the root's spec and seed (and its
first state, when the run started from a kept trial), each branch's parent, the epoch it grew
from and its mode, and the changes applied on each branch with the boundary they took effect
at. :func:`replay` trains that again from scratch, one epoch at a time the way the trainer does
(:class:`~caviar.panda.epochs.EpochEngine`), and gives the curve along the branch's lineage; on
the CPU it equals :func:`stored_curve` bit for bit (``tests/panda/test_replay.py``).

1. Start from the root: initial weights from the seed (or the root's first snapshot).
2. On each branch of the lineage, at every boundary, apply that branch's changes given for it,
   in the order they were given; then train an epoch. Stop at the epoch the next branch grew
   from, before that boundary's changes (the snapshot a rollback restores was stored before
   them).
3. Enter the next branch from that state (``fresh``: optimizer buffers zeroed), and go to 2.
"""

from __future__ import annotations

from caviar.core.records import EpochRecord
from caviar.nn import HYPERPARAMETERS, MemberSpec
from caviar.panda.epochs import EpochEngine
from caviar.panda.tree import PandaTree
from caviar.storage.tree_rows import Branch


def lineage(tree: PandaTree, run_id: int, branch: int) -> list[Branch]:
    """The branches from the root to ``branch``."""
    by_id = {b.id: b for b in tree.branches(run_id)}
    chain = [by_id[branch]]
    parent = chain[-1].parent
    while parent is not None:
        chain.append(by_id[parent])
        parent = chain[-1].parent
    return chain[::-1]


def stored_curve(tree: PandaTree, run_id: int, branch: int) -> list[EpochRecord]:
    """The stored curve along ``branch``'s lineage: each ancestor's epochs up to where the next
    branch grew from, then the branch's own."""
    curves = tree.curves(run_id)
    chain = lineage(tree, run_id, branch)
    out: list[EpochRecord] = []
    for i, b in enumerate(chain):
        end = chain[i + 1].from_epoch if i + 1 < len(chain) else None
        out += [p.record for p in curves.get(b.id, []) if end is None or p.record.epoch <= end]
    return out


def replay(tree: PandaTree, name: str, branch: int, engine: EpochEngine) -> list[EpochRecord]:
    """Train ``branch``'s lineage of run ``name`` again from the root (see the module
    docstring) with ``engine`` (the run's data, device and dtype); its curve."""
    run = tree.run(name)
    run_id = run.run_id
    chain = lineage(tree, run_id, branch)
    commands = [c for c in tree.commands(run_id) if c.applied and c.key in HYPERPARAMETERS]
    curves = tree.curves(run_id)
    start = tree.first_snapshot(run_id)
    spec = MemberSpec(**run.spec)
    if run.source.get("kind") == "config":  # 1. from the seed
        state = engine.initial_state(spec)
    else:
        state = tree.snapshot(run_id, 0, start)
    out: list[EpochRecord] = []
    for i, b in enumerate(chain):
        if b.parent is not None:  # 3. enter the branch
            spec = state.spec
            if b.mode == "fresh":
                state = state.fresh_optimizer()
        if i + 1 < len(chain):
            end = int(chain[i + 1].from_epoch or 0)
        else:
            points = curves.get(b.id, [])
            end = points[-1].record.epoch if points else state.epoch
        mine = [c for c in commands if c.branch == b.id]
        while state.epoch < end:  # 2.
            values = spec.to_dict()
            for c in mine:
                if c.epoch == state.epoch:
                    values[c.key] = c.new
            spec = MemberSpec(**values)
            trained = engine.train_epoch(spec, state)
            state = trained.state
            out.append(trained.record)
    return out
