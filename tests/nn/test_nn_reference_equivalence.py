"""Two paths, one truth: member k of a mixed population trains exactly like the plain torch.nn /
torch.optim reference (caviar.nn.reference) trained alone with member k's hyperparameters.

Each case is one member's spec, named for what it exercises. The member trains at index 1 of a
population that also holds two members of its own vectorized group (other seeds, widths,
learning rates, dropout, decay and epochs, so the group is padded and mixed) and one member of
another group. Every epoch's losses and accuracies and the final parameters must agree in
float64.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import (
    assert_curves_close,
    load_into_reference,
    reference_params,
    tolerance,
)

from caviar.nn import MemberSpec, Population
from caviar.nn.group import Group
from caviar.nn.reference import evaluate, train_reference

BASE = MemberSpec(seed=7, hidden_units=9, n_layers=2, batch_size=16, lr=0.01, epochs=3)


def case(**changes) -> MemberSpec:
    return replace(BASE, **changes)


CASES: dict[str, MemberSpec] = {
    # each optimizer, with and without batch norm (90 examples in batches of 16: last one 10)
    "sgd": case(optimizer="sgd", lr=0.2),
    "sgd_batch_norm": case(optimizer="sgd", lr=0.2, batch_norm=True),
    "momentum": case(optimizer="momentum", lr=0.2, beta1=0.8),
    "momentum_batch_norm": case(optimizer="momentum", lr=0.2, beta1=0.8, batch_norm=True),
    "rmsprop": case(optimizer="rmsprop", lr=0.003, beta2=0.9, eps=1e-6),
    "rmsprop_batch_norm": case(optimizer="rmsprop", lr=0.003, beta2=0.9, batch_norm=True),
    "adam": case(optimizer="adam", beta1=0.85, beta2=0.99, eps=1e-7),
    "adam_batch_norm": case(optimizer="adam", beta1=0.85, beta2=0.99, batch_norm=True),
    # weight decay, coupled (L2 in the loss) and decoupled (AdamW style)
    "sgd_coupled_weight_decay": case(optimizer="sgd", lr=0.2, weight_decay=0.05),
    "sgd_decoupled_weight_decay": case(
        optimizer="sgd", lr=0.2, weight_decay=0.5, decoupled_weight_decay=True
    ),
    "momentum_coupled_weight_decay": case(optimizer="momentum", lr=0.2, weight_decay=0.05),
    "rmsprop_decoupled_weight_decay": case(
        optimizer="rmsprop", lr=0.003, weight_decay=1.0, decoupled_weight_decay=True
    ),
    "adam_coupled_weight_decay": case(optimizer="adam", weight_decay=0.05, batch_norm=True),
    "adam_decoupled_weight_decay": case(
        optimizer="adam", weight_decay=2.0, decoupled_weight_decay=True
    ),
    # learning-rate decay per epoch
    "inverse_time_decay": case(optimizer="sgd", lr=0.3, lr_decay="inverse_time", decay_rate=0.5),
    "exponential_decay": case(optimizer="momentum", lr=0.3, lr_decay="exponential", decay_rate=0.6),
    "step_decay": case(lr_decay="step", decay_rate=0.3, decay_every=2, epochs=4),
    # inverted dropout (masks shared with the reference through caviar.nn.randomness)
    "dropout": case(dropout=0.3),
    "dropout_batch_norm": case(dropout=0.2, batch_norm=True, optimizer="momentum", lr=0.2),
    # activations
    "tanh": case(activation="tanh", optimizer="sgd", lr=0.2),
    "sigmoid": case(activation="sigmoid", optimizer="sgd", lr=0.5),
    "tanh_batch_norm": case(activation="tanh", batch_norm=True),
    "sigmoid_batch_norm_dropout": case(activation="sigmoid", batch_norm=True, dropout=0.25),
    # padding: the group's other members are 6 and 12 wide
    "narrowest_in_group": case(hidden_units=3, dropout=0.2),
    "widest_in_group": case(hidden_units=17, batch_norm=True),
    # depth
    "one_hidden_layer": case(n_layers=1, optimizer="momentum", lr=0.2),
    "one_hidden_layer_batch_norm": case(n_layers=1, batch_norm=True),
    "three_hidden_layers": case(n_layers=3, optimizer="rmsprop", lr=0.003),
    "three_hidden_layers_batch_norm_dropout": case(n_layers=3, batch_norm=True, dropout=0.1),
    # batch sizes: 90 = 12 * 7 + 6; 90 = 89 + 1 (the trailing batch of one is dropped);
    # one batch larger than the data
    "batches_of_7": case(batch_size=7, optimizer="sgd", lr=0.1),
    "trailing_batch_of_one_dropped": case(batch_size=89, batch_norm=True, epochs=4),
    "batch_larger_than_data": case(batch_size=128, batch_norm=True, epochs=4),
    # initialisation and batch-norm settings
    "xavier_init": case(init="xavier", activation="tanh"),
    "std_init": case(init="std", init_std=0.3, optimizer="sgd", lr=0.1),
    "batch_norm_momentum_and_eps": case(batch_norm=True, bn_momentum=0.5, bn_eps=0.01),
}


def population_around(target: MemberSpec) -> list[MemberSpec]:
    """[same-group member, target, same-group member, other-group member]."""
    same_group = [
        replace(
            target,
            seed=target.seed + 1,
            hidden_units=6,
            lr=target.lr * 0.5,
            dropout=0.4,
            lr_decay="none",
            epochs=max(1, target.epochs - 1),
        ),
        replace(
            target,
            seed=target.seed + 2,
            hidden_units=12,
            n_layers=target.n_layers + 1,  # a deeper member shares the group
            lr=target.lr * 1.5,
            dropout=0.0,
            weight_decay=0.01,
            decoupled_weight_decay=not target.decoupled_weight_decay,
            lr_decay="inverse_time",
            decay_rate=0.2,
            epochs=target.epochs + 1,
        ),
    ]
    other_activation = "relu" if target.activation != "relu" else "tanh"
    other_group = replace(target, seed=target.seed + 3, activation=other_activation)
    assert {s.group_key() for s in same_group} == {target.group_key()}
    return [same_group[0], target, same_group[1], other_group]


def assert_params_close(
    actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], **tol: float
) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(
            actual[name], expected[name], **tol, msg=lambda m, n=name: f"{n}: {m}"
        )


@pytest.mark.parametrize("name", list(CASES))
def test_member_of_mixed_population_equals_reference_trained_alone(name, data, device):
    """On every device (the reference always on the CPU, in float64)."""
    spec = CASES[name]
    results = Population(population_around(spec), dtype=torch.float64, device=device).fit(
        data, keep_states=True
    )
    result = results[1]
    expected, model = train_reference(spec, data)
    tol = tolerance(device)

    assert not result.diverged and not expected.diverged
    assert [r.epoch for r in result.curve] == list(range(1, spec.epochs + 1))
    assert_curves_close(result, expected, **tol)
    state = result.state
    assert state is not None and state.epoch == spec.epochs
    for i, linear in enumerate(model.linears):  # weights [fan_in, fan_out] = weight.T
        torch.testing.assert_close(state.params[f"W{i}"], linear.weight.T, **tol)
    assert_params_close(state.params, reference_params(model), **tol)
    # batch norm: running statistics equal nn.BatchNorm1d's (unbiased variance, momentum)
    assert len(state.running_mean) == (spec.n_layers if spec.batch_norm else 0)
    for layer in range(len(state.running_mean)):
        norm = model.norms[layer]
        torch.testing.assert_close(state.running_mean[layer], norm.running_mean, **tol)
        torch.testing.assert_close(state.running_var[layer], norm.running_var, **tol)


def test_training_moves_the_curves(data):
    """The cases above compare something: training changes the loss (guards a vacuous table)."""
    result = Population([CASES["adam"]], dtype=torch.float64, device="cpu").fit(data)[0]
    losses = [r.train_loss for r in result.curve]
    assert losses[-1] < losses[0] - 0.05


# -- batch norm at inference -----------------------------------------------------------------
BN_MEMBER = case(batch_norm=True, n_layers=2, dropout=0.1, epochs=3)


def test_single_example_predicts_in_eval_mode_like_inside_a_batch(data):
    """A batch-norm member evaluates one example with its running statistics: the loss of
    x[i:i+1] alone, in the engine's group and in the reference net holding the member's
    state, equals that example's loss inside the full batch."""
    result = Population([BN_MEMBER], dtype=torch.float64, device="cpu").fit(data, keep_states=True)[
        0
    ]
    state = result.state
    group = Group(
        [BN_MEMBER],
        data.n_inputs,
        data.n_classes,
        device=torch.device("cpu"),
        dtype=torch.float64,
        states=[state],
    )
    model = load_into_reference(state).eval()
    x, y = data.x_val, data.y_val

    with torch.no_grad():
        logits = model(x)  # [N, C], eval mode
        per_example = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        for i in range(4):
            single = model(x[i : i + 1])
            torch.testing.assert_close(single, logits[i : i + 1], rtol=1e-12, atol=1e-12)
            loss, accuracy = group.evaluate(x[i : i + 1], y[i : i + 1], chunk=1)
            torch.testing.assert_close(loss[0].item(), per_example[i].item(), rtol=1e-10, atol=0)
            assert accuracy[0].item() == float(logits[i].argmax() == y[i])

    # evaluating one example at a time gives the same mean as one pass over the batch
    loss_one_by_one, _ = group.evaluate(x, y, chunk=1)
    loss_batch, _ = group.evaluate(x, y, chunk=len(x))
    torch.testing.assert_close(loss_one_by_one, loss_batch, rtol=1e-12, atol=0)
    # and the recorded validation loss is the reference's eval-mode loss of that state
    assert result.final.val_loss == pytest.approx(evaluate(model, x, y)[0], rel=1e-10)


def test_running_statistics_differ_from_the_last_batch_statistics(data):
    """Guard for the test above: eval mode really uses running statistics, which differ from
    the statistics of the evaluated batch (otherwise the single-example test is vacuous)."""
    state = (
        Population([BN_MEMBER], dtype=torch.float64, device="cpu")
        .fit(data, keep_states=True)[0]
        .state
    )
    model = load_into_reference(state).eval()
    with torch.no_grad():
        z = model.linears[0](data.x_val)
    assert not torch.allclose(state.running_mean[0], z.mean(dim=0), atol=1e-3)
    assert torch.all(state.running_var[0] > 0)
