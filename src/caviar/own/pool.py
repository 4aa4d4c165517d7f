"""A pool of the user's module's candidates: members added and removed between rounds, one
epoch each a round, as a search drives :class:`caviar.nn.Pool` (the :class:`Engine`
protocol). Members whose modules have the same structure and parameter shapes, batch size and
optimizer train together in one vectorized group (:mod:`caviar.own.group`); the others form
groups of their own, and a module ``vmap`` refuses trains one member at a time, said once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from caviar.core.records import EpochRecord
from caviar.nn.memory import is_out_of_memory
from caviar.nn.pool import MemberEpoch, RoundResult
from caviar.own.data import ModuleData
from caviar.own.dropout import swap_dropout
from caviar.own.group import Interrupted, Loss, ModuleGroup
from caviar.own.member import KeptModule, ModuleMember

#: the optimizer settings a whole group shares (they change the update's form, not a number)
GROUP_SETTINGS = ("nesterov", "lr_decay")
#: the ways a group trains, fastest first, as (vectorized, members at one epoch share a batch);
#: a module ``vmap`` cannot batch with a shared batch (it writes into its input) gets a copy
#: per member, and one ``vmap`` cannot batch at all trains one member at a time
WAYS: tuple[tuple[bool, bool], ...] = ((True, True), (True, False), (False, True))
#: on a CPU, the fewest and the most members in one group, and the activations a group's
#: mini-batch should stay within: more members only stream them from memory (measured,
#: benchmarks/own_model.py, 2-core CPU: a CNN with 5.6 MB of activations a member ran 1.03x the
#: per-model loop in a group of 8 and 0.67x in one of 32; MLPs of 0.3 MB, 2-4x in groups of 32)
CPU_GROUP = (8, 64)
CPU_GROUP_BYTES = 32 * 2**20


@dataclass(frozen=True)
class ModuleSpec:
    """A member to add: the module its builder made for the trial, and how to train it."""

    seed: int
    epochs: int
    batch_size: int
    optimizer: str
    settings: Mapping[str, Any]
    module: nn.Module | None  # None once the pool has taken its tensors
    params: Mapping[str, Any]  # the trial's hyperparameters, kept with the model
    n_parameters: int = 0  # what an epoch of it costs, up to the pace

    def __post_init__(self) -> None:
        if self.module is not None and not self.n_parameters:
            count = sum(p.numel() for p in self.module.parameters())
            object.__setattr__(self, "n_parameters", count)

    def taken(self) -> ModuleSpec:
        """The spec without its module, once the pool holds the member's tensors (a search
        keeps its trials' specs: it must not keep every module it ever built)."""
        return replace(self, module=None)


@dataclass
class ModuleRound(RoundResult):
    """A round: as :class:`~caviar.nn.pool.RoundResult`, with the kept form of each member
    that finished (``kept``)."""

    kept: dict[int, KeptModule] = field(default_factory=dict)
    #: members whose module failed to train, even alone: the error, in one line
    failed: dict[int, str] = field(default_factory=dict)


class MemberFailed(Exception):
    """Training a group failed in every way its module allows (the user's module raised)."""


def structure(template: nn.Module) -> str:
    """What the module computes, as far as its printout says (dropout rates aside: they are
    per member)."""
    return repr(template)


class ModulePool:
    """The pool (see the module docstring). ``model`` is the builder's reference, kept with
    finished members; ``note`` hears what members must do differently (one at a time)."""

    def __init__(
        self,
        data: ModuleData,
        *,
        loss: Loss,
        data_seed: int,
        model: str | None = None,
        max_group: int | None = None,
        eval_batch: int = 1024,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.data, self.loss, self.data_seed, self.model = data, loss, data_seed, model
        self.cpu = data.x_train.device.type == "cpu"
        #: the most members in a group: given, or on a CPU by each module's activations
        self.max_group = max_group
        self._sizes: dict[Hashable, int] = {}
        self.eval_batch = eval_batch
        self.note = note or (lambda _: None)
        self._members: dict[int, ModuleMember] = {}
        self._params: dict[int, Mapping[str, Any]] = {}
        self._templates: dict[Hashable, nn.Module] = {}
        #: for each module, the first of :data:`WAYS` that did not fail (none yet: 0)
        self._ways: dict[Hashable, int] = {}
        self._said_hidden: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._members)

    @property
    def keys(self) -> list[int]:
        return sorted(self._members)

    def add(self, key: int, spec: ModuleSpec) -> None:
        """A new member, from its module (which the pool does not keep)."""
        module = spec.module
        if module is None:
            raise ValueError(f"member {key}'s spec has no module left to train")
        dtype = next(module.parameters()).dtype
        template = copy.deepcopy(module)
        swap_dropout(template, dtype)
        tensors = tuple(
            (n, tuple(t.shape), str(t.dtype), t.requires_grad)
            for n, t in (*module.named_parameters(), *module.named_buffers())
        )
        group_settings = tuple(spec.settings.get(k) for k in GROUP_SETTINGS)
        signature: Hashable = (
            structure(template),
            tensors,
            spec.batch_size,
            spec.optimizer,
            group_settings,
        )
        known = self._templates.get(signature)
        if known is None:
            self._templates[signature] = template
            self._sizes[signature] = self._group_size(module, spec.batch_size)
        elif not self._same_function(known, module):
            # the printout hid a difference (an attribute its forward reads): a group of its own
            if signature not in self._said_hidden:
                self._said_hidden.add(signature)
                self.note(
                    f"caviar: members of {type(module).__name__} print the same but compute "
                    "differently (an attribute its forward reads that its printout does not "
                    "show: extra_repr can show it); each trains in a group of its own"
                )
            signature = (*signature, ("alone", key))  # type: ignore[misc]
            self._templates[signature] = template
            self._sizes[signature] = 1
        self._members[key] = ModuleMember.from_module(
            key,
            module,
            seed=spec.seed,
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            optimizer=spec.optimizer,
            settings=spec.settings,
            signature=signature,
        )
        self._params[key] = dict(spec.params)

    @torch.no_grad()
    def _group_size(self, module: nn.Module, batch_size: int) -> int:
        """How many members of ``module`` train in one group: ``max_group`` if given; on a GPU
        all; on a CPU as many as keep a mini-batch's activations (every layer's output,
        measured on a few examples) within :data:`CPU_GROUP_BYTES`, in :data:`CPU_GROUP`."""
        if self.max_group is not None:
            return self.max_group
        if not self.cpu:
            return 1 << 30
        floats = [0]

        def count(_: nn.Module, __: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor):
                floats[0] += out.numel()

        leaves = [m for m in module.modules() if not list(m.children())]
        hooks = [m.register_forward_hook(count) for m in leaves]
        x = self.data.x_val[:4].clone()
        module.eval()
        try:
            module(x)
        except Exception:  # the user's module: its error is said when it trains
            return 1
        finally:
            module.train()
            for hook in hooks:
                hook.remove()
        per_member = floats[0] / len(x) * batch_size * x.element_size()
        fewest, most = CPU_GROUP
        return int(min(most, max(fewest, CPU_GROUP_BYTES // max(per_member, 1.0))))

    @torch.no_grad()
    def _same_function(self, template: nn.Module, module: nn.Module) -> bool:
        """Whether ``template`` run with ``module``'s tensors computes what ``module`` does
        (eval mode, a few validation examples)."""
        x = self.data.x_val[:4]  # copied below: a module may write into its input
        tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
        template.eval(), module.eval()
        try:
            mine = module(x.clone())
            theirs = torch.func.functional_call(template, tensors, (x.clone(),), strict=False)
        except Exception:  # the user's module: its error is said when it trains, alone
            return False
        finally:
            template.train(), module.train()
        return bool(mine.shape == theirs.shape and torch.allclose(mine, theirs, equal_nan=True))

    def remove(self, key: int) -> ModuleMember:
        """Member ``key`` leaves; its module's template goes once no member of it is left (a
        long study of many widths keeps no copy of every module it built)."""
        self._params.pop(key, None)
        member = self._members.pop(key)
        if all(m.signature != member.signature for m in self._members.values()):
            self._templates.pop(member.signature, None)
            self._sizes.pop(member.signature, None)
        return member

    def step(self, should_stop: Callable[[], bool] | None = None) -> ModuleRound:
        """One round: an epoch for every member, group by group. ``should_stop`` is asked before
        every mini-batch; once it says yes the round ends there, and the members not yet
        through their epoch leave as ``interrupted``."""
        result = ModuleRound()
        pending = self._groups()
        while pending:
            signature, members = pending.pop(0)
            try:
                metrics, back = self._epoch(signature, members, should_stop)
            except Interrupted:
                result.interrupted = sorted(
                    m.key for _, rest in [(signature, members), *pending] for m in rest
                )
                break
            except MemberFailed as failure:
                if len(members) > 1:  # whose? each alone, from where the epoch found them
                    pending[:0] = [(signature, [m]) for m in members]
                    continue
                result.failed[members[0].key] = str(failure)
                continue
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not is_out_of_memory(error) or len(members) < 2:
                    raise
                pending[:0] = self._halved(signature, members, result)
                continue
            for m, member in zip(metrics, back, strict=True):
                record = EpochRecord(
                    member.done, m.train_loss, m.train_accuracy, m.val_loss, m.val_accuracy
                )
                member.diverged = m.diverged
                finished = member.finished
                if finished and not m.diverged:
                    result.kept[member.key] = member.kept(self._params[member.key], self.model)
                result.epochs.append(
                    MemberEpoch(member.key, record, m.diverged, finished, m.seconds)
                )
        result.epochs.sort(key=lambda e: e.key)
        gone = [e.key for e in result.epochs if e.finished] + result.interrupted
        for key in [*gone, *result.failed]:
            self.remove(key)
        return result

    def _halved(
        self, signature: Hashable, members: list[ModuleMember], result: ModuleRound
    ) -> list[tuple[Hashable, list[ModuleMember]]]:
        """After the device ran out of memory in a group's epoch: its module's groups are at
        most half as large from now on, and the two halves train this epoch again from where
        they were (a group trains copies: the members' own tensors are as the epoch found
        them)."""
        half = len(members) // 2
        self._sizes[signature] = min(self._sizes[signature], half)
        if not self.cpu:
            torch.cuda.empty_cache()
        result.notes.append(
            f"caviar: the device ran out of memory training {len(members)} members of one "
            f"module together; they train in groups of at most {half} from now on"
        )
        return [(signature, members[:half]), (signature, members[half:])]

    def _groups(self) -> list[tuple[Hashable, list[ModuleMember]]]:
        """The members by signature, in groups of at most their module's size."""
        by: dict[Hashable, list[ModuleMember]] = {}
        for key in self.keys:
            member = self._members[key]
            by.setdefault(member.signature, []).append(member)
        return [
            (signature, members[i : i + self._sizes[signature]])
            for signature, members in by.items()
            for i in range(0, len(members), self._sizes[signature])
        ]

    def _epoch(
        self,
        signature: Hashable,
        members: list[ModuleMember],
        should_stop: Callable[[], bool] | None,
    ) -> tuple[list[Any], list[ModuleMember]]:
        """An epoch of one group, in the fastest way its module allows (:data:`WAYS`): a way
        that fails is not tried again for that module (going one at a time is said once)."""
        template = self._templates[signature]
        while True:
            way = self._ways.get(signature, 0)
            vectorized, shared = WAYS[way]
            group = self._group(template, members, vectorized)
            group.share_batches = shared
            try:
                metrics = group.run_epoch(should_stop)
            except Interrupted:
                raise
            except Exception as error:
                if way == len(WAYS) - 1 or is_out_of_memory(error):
                    raise self._failed(error) from error
                self._ways[signature] = way + 1
                if not WAYS[way + 1][0]:
                    first = str(error).splitlines()[0][:160] if str(error) else ""
                    self.note(
                        f"caviar: torch.func.vmap cannot batch {type(template).__name__} "
                        f"({type(error).__name__}: {first}); its members train one at a time"
                    )
                continue
            return metrics, group.members_back()

    def _group(
        self, template: nn.Module, members: list[ModuleMember], vectorized: bool
    ) -> ModuleGroup:
        return ModuleGroup(
            template,
            members,
            self.data,
            loss=self.loss,
            data_seed=self.data_seed,
            vectorized=vectorized,
            eval_batch=self.eval_batch,
        )

    def _failed(self, error: BaseException) -> BaseException:
        """A training error that is the module's, said in one line (the device running out of
        memory is not: it is the pool's to handle)."""
        if is_out_of_memory(error):
            return error
        first = str(error).splitlines()[0] if str(error) else ""
        return MemberFailed(f"training the module failed: {type(error).__name__}: {first}")
