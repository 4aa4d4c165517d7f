"""One member, one epoch at a time: the engine a panda run trains with.

Every epoch goes the same way, in the trainer and in a replay: the member enters a
:class:`~caviar.nn.Pool` of one from its state, trains one epoch, and leaves with its new
state. Its spec may differ from the state's in the hyperparameters that may change mid-run
(:meth:`MemberState.with_spec`), so a change takes effect exactly at the boundary. A state
restored and trained on gives what training straight through gives (see :mod:`caviar.nn.state`),
so this path is bit for bit the same as a member that never left its group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.nn import MemberSpec, MemberState, Pool, resolve_device
from caviar.nn.device import matmul_precision
from caviar.nn.engine import DTYPES
from caviar.search.config import StudyConfig, config_from_mapping, read_config_file
from caviar.search.job import prepare_data

_KEY = 0  # the member's key in its pool of one


def panda_config(source: Mapping[str, Any] | str | os.PathLike[str]) -> StudyConfig:
    """A study config for a panda run from a mapping or a TOML/YAML file (its stem the default
    name): ``[search] trials`` may be left out (one model is trained)."""
    if isinstance(source, Mapping):
        raw, name, where = dict(source), "demo", "<mapping>"
    else:
        raw, name, where = read_config_file(source), Path(source).stem, str(source)
    search = raw.get("search")
    if search is None or (isinstance(search, Mapping) and "trials" not in search):
        raw["search"] = {**(search or {}), "trials": 1}
    return config_from_mapping(raw, default_name=name, source=where)


def spec_from_config(config: StudyConfig, *, seed: int | None = None) -> MemberSpec:
    """The one member a config describes: every hyperparameter of its space a plain value;
    an InvalidValue naming the first searched one otherwise."""
    params: dict[str, Any] = {}
    for name in config.space:
        dim = config.space[name]
        if dim.n_free:
            raise InvalidValue(
                f"space.{name}",
                f"a panda run trains one model, so every hyperparameter must be a plain value, "
                f"got the range {dim.to_config()!r}",
            )
        params[name] = dim.from_unit(0.0)
    return MemberSpec.from_params(params, seed=config.seed if seed is None else seed, owner="space")


@dataclass(frozen=True)
class Trained:
    """What one epoch gave: its record and the member's state after it."""

    record: EpochRecord
    state: MemberState

    @property
    def diverged(self) -> bool:
        return self.state.diverged


class EpochEngine:
    """The config's data, device and dtype, and a pool of one to train in."""

    def __init__(self, config: StudyConfig) -> None:
        self.config = config
        self.device = resolve_device(config.study.device)
        self.dtype = DTYPES[config.study.dtype]
        self.data = prepare_data(config)
        self.pool = Pool(
            self.data.training,
            data_seed=config.seed,
            device=self.device,
            dtype=self.dtype,
            train_metrics=config.search.train_metrics,
            keep_states=True,
        )
        #: called before every mini-batch (a test's probe; it may not change the member)
        self.before_batch: Callable[[], None] | None = None

    def initial_state(self, spec: MemberSpec) -> MemberState:
        """The member's state before its first epoch: its initial weights, from its seed."""
        self.pool.add(_KEY, spec)
        return self.pool.remove(_KEY)

    def check(self, spec: MemberSpec, state: MemberState) -> None:
        """An InvalidValue unless ``state`` continues under ``spec`` here."""
        self.pool.check(spec, state.with_spec(spec))

    def train_epoch(self, spec: MemberSpec, state: MemberState) -> Trained:
        """One epoch of the member from ``state`` under ``spec``."""
        self.pool.add(_KEY, spec, state.with_spec(spec))
        with matmul_precision(self.device, self.dtype):
            result = self.pool.step(self._probe)
        (epoch,) = result.epochs
        if not epoch.finished:
            after = self.pool.remove(_KEY)
        elif epoch.state is not None:  # its last epoch, or it diverged: it left with its state
            after = epoch.state
        else:
            raise RuntimeError("the pool kept no state of a finished member (keep_states)")
        return Trained(epoch.record, after)

    def _probe(self) -> bool:
        if self.before_batch is not None:
            self.before_batch()
        return False
