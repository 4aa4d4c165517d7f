"""Shared pieces of the engine tests: a tiny data set and comparisons of results and states.

Imported by the test modules of this folder (pytest puts the folder on ``sys.path``); the name
starts with ``_nn`` so that it cannot clash with a helper module of another test folder.
"""

from __future__ import annotations

import torch

from caviar.nn import MemberResult, MemberSpec, MemberState, TrainingData
from caviar.nn.group import Group
from caviar.nn.reference import ReferenceNet

#: the tolerances of "equal in float64" between two implementations of the same arithmetic
RTOL, ATOL = 1e-9, 1e-12

#: how much looser "equal in float64" is on a GPU: its reductions (batch statistics, sums over
#: the batch in products) add in another order than the CPU's, and training compounds the
#: last-bit differences over a few hundred steps
GPU_LOOSENING = 1e3


def tolerance(device: torch.device, rtol: float = RTOL, atol: float = ATOL) -> dict[str, float]:
    """``rtol`` and ``atol`` for comparing what the engine computed on ``device`` with a CPU
    oracle: as given on the CPU, :data:`GPU_LOOSENING` times looser on a GPU."""
    scale = 1.0 if device.type == "cpu" else GPU_LOOSENING
    return {"rtol": rtol * scale, "atol": atol * scale}


N_TRAIN, N_VAL, N_INPUTS, N_CLASSES = 90, 30, 16, 3


def tiny_data(seed: int = 0) -> TrainingData:
    """90 training and 30 validation examples of 16 features, 3 classes from a linear teacher
    (so that training makes progress and accuracies move)."""
    gen = torch.Generator().manual_seed(seed)
    n = N_TRAIN + N_VAL
    x = torch.randn(n, N_INPUTS, generator=gen, dtype=torch.float64)
    teacher = torch.randn(N_INPUTS, N_CLASSES, generator=gen, dtype=torch.float64)
    y = (x @ teacher + 0.5 * torch.randn(n, N_CLASSES, generator=gen, dtype=torch.float64)).argmax(
        dim=1
    )
    return TrainingData.from_arrays(
        x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], n_classes=N_CLASSES
    )


def curve_array(result: MemberResult) -> torch.Tensor:
    """The learning curve as a [epochs, 5] float64 tensor (epoch, losses, accuracies)."""
    return torch.tensor(
        [
            [r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy]
            for r in result.curve
        ],
        dtype=torch.float64,
    )


def assert_curves_close(
    actual: MemberResult, expected: MemberResult, *, rtol: float = RTOL, atol: float = ATOL
) -> None:
    a, e = curve_array(actual), curve_array(expected)
    assert a.shape == e.shape, f"{len(actual.curve)} epochs recorded, expected {len(e)}"
    torch.testing.assert_close(a, e, rtol=rtol, atol=atol)


def assert_states_equal(actual: MemberState, expected: MemberState, *, exact: bool) -> None:
    """Every tensor of two member states equal: bitwise (``exact``) or within RTOL/ATOL."""

    def same(a: torch.Tensor, e: torch.Tensor, what: str) -> None:
        if exact:
            assert torch.equal(a, e), f"{what} differs"
        else:
            torch.testing.assert_close(a, e, rtol=RTOL, atol=ATOL, msg=lambda m: f"{what}: {m}")

    assert actual.params.keys() == expected.params.keys()
    for name in expected.params:
        same(actual.params[name], expected.params[name], name)
    assert actual.optimizer.keys() == expected.optimizer.keys()
    for slot, tensors in expected.optimizer.items():
        for name in tensors:
            same(actual.optimizer[slot][name], tensors[name], f"{slot}[{name}]")
    assert len(actual.running_mean) == len(expected.running_mean)
    for i in range(len(expected.running_mean)):
        same(actual.running_mean[i], expected.running_mean[i], f"running_mean[{i}]")
        same(actual.running_var[i], expected.running_var[i], f"running_var[{i}]")
    assert actual.optimizer_steps == expected.optimizer_steps
    assert (actual.epoch, actual.batch, actual.diverged) == (
        expected.epoch,
        expected.batch,
        expected.diverged,
    )


def reference_params(model: ReferenceNet) -> dict[str, torch.Tensor]:
    """The reference model's parameters under the engine's names and shapes
    (weights ``[fan_in, fan_out]``)."""
    spec = model.spec
    out = {f"W{i}": lin.weight.detach().t() for i, lin in enumerate(model.linears)}
    for layer in range(spec.n_layers):
        if spec.batch_norm:
            out[f"gamma{layer}"] = model.norms[layer].weight.detach()
            out[f"beta{layer}"] = model.norms[layer].bias.detach()
        else:
            out[f"b{layer}"] = model.linears[layer].bias.detach()
    out[f"b{spec.n_layers}"] = model.linears[-1].bias.detach()
    return out


def load_into_reference(state: MemberState) -> ReferenceNet:
    """A reference net (float64) holding a member state's parameters and running statistics."""
    spec = state.spec
    model = ReferenceNet(spec, state.n_inputs, state.n_classes)
    with torch.no_grad():
        for i, lin in enumerate(model.linears):
            lin.weight.copy_(state.params[f"W{i}"].t())
        for layer in range(spec.n_layers):
            if spec.batch_norm:
                norm = model.norms[layer]
                norm.weight.copy_(state.params[f"gamma{layer}"])
                norm.bias.copy_(state.params[f"beta{layer}"])
                norm.running_mean.copy_(state.running_mean[layer])
                norm.running_var.copy_(state.running_var[layer])
            else:
                model.linears[layer].bias.copy_(state.params[f"b{layer}"])
        model.linears[-1].bias.copy_(state.params[f"b{spec.n_layers}"])
    return model


def cpu_group(specs: list[MemberSpec], data: TrainingData, **options: object) -> Group:
    """A float64 group of ``specs`` for ``data``'s inputs and classes, on the CPU; ``options``
    as :class:`~caviar.nn.group.Group` takes them (``vectorized``, ``compiled``)."""
    return Group(
        specs,
        data.n_inputs,
        data.n_classes,
        device=torch.device("cpu"),
        dtype=torch.float64,
        **options,  # type: ignore[arg-type]
    )
