"""Population.fit's bookkeeping: events and curves per member, members of different lengths,
evaluation settings, and the input checks of Population and TrainingData."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from _nn_support import ATOL, RTOL, assert_curves_close, curve_array, tiny_data

from caviar.nn import EpochEvent, MemberSpec, Population, TrainingData
from caviar.nn.reference import train_reference

BASE = MemberSpec(seed=0, hidden_units=6, batch_size=16, lr=0.01, epochs=3)


def test_events_stream_each_epoch_of_each_running_member(data):
    specs = [
        replace(BASE, epochs=1),
        replace(BASE, seed=1, epochs=3),
        replace(BASE, seed=2, optimizer="sgd", lr=0.1, epochs=2),
    ]
    events: list[EpochEvent] = []
    results = Population(specs, dtype=torch.float64, device="cpu").fit(data, on_epoch=events.append)

    reported = {(e.epoch, i) for e in events for i in e.members}
    assert reported == {(1, 0), (1, 1), (2, 1), (3, 1), (1, 2), (2, 2)}
    assert len(reported) == sum(len(e.members) for e in events)  # no member twice per epoch
    for event in events:
        assert event.seconds >= 0 and not any(event.diverged)
        for i, record in zip(event.members, event.records, strict=True):
            assert record.epoch == event.epoch
            assert record == results[i].curve[event.epoch - 1]
    for spec, result in zip(specs, results, strict=True):
        assert [r.epoch for r in result.curve] == list(range(1, spec.epochs + 1))
        assert result.final == result.curve[-1]
        assert result.state is None  # not asked for


def test_evaluation_in_small_batches_gives_the_same_curves(data):
    specs = [replace(BASE, batch_norm=True), replace(BASE, seed=3, hidden_units=9)]
    whole = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    pieces = Population(specs, dtype=torch.float64, device="cpu", eval_batch=7).fit(data)
    for a, b in zip(pieces, whole, strict=True):
        assert_curves_close(a, b)


def test_train_eval_size_evaluates_the_first_examples_like_the_reference(data):
    spec = replace(BASE, dropout=0.2)
    result = Population(
        [spec], dtype=torch.float64, device="cpu", train_eval_size=25, train_metrics="full"
    ).fit(data)
    expected, _ = train_reference(spec, data, train_eval_size=25, train_metrics="full")
    full = Population([spec], dtype=torch.float64, device="cpu", train_metrics="full").fit(data)
    assert_curves_close(result[0], expected)
    # the validation columns do not depend on it; the training columns do
    torch.testing.assert_close(
        curve_array(result[0])[:, 3:], curve_array(full[0])[:, 3:], rtol=RTOL, atol=ATOL
    )
    assert result[0].final.train_loss != full[0].final.train_loss


def test_without_validation_data_the_validation_columns_are_nan():
    full = tiny_data()
    data = TrainingData.from_arrays(full.x_train, full.y_train)
    result = Population([BASE], dtype=torch.float64, device="cpu").fit(data)[0]
    assert all(np.isnan(r.val_loss) and np.isnan(r.val_accuracy) for r in result.curve)
    assert all(np.isfinite(r.train_loss) for r in result.curve)


def test_float32_training_is_close_to_float64(data):
    specs = [replace(BASE, batch_norm=True, dropout=0.2), replace(BASE, seed=4, hidden_units=10)]
    single = Population(specs, dtype=torch.float32, device="cpu").fit(data)
    double = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    for a, b in zip(single, double, strict=True):
        torch.testing.assert_close(curve_array(a), curve_array(b), rtol=1e-4, atol=1e-4)


def test_a_member_restored_from_a_diverged_state_is_reported_diverged(data):
    bad = MemberSpec(seed=3, hidden_units=8, n_layers=1, batch_size=16, optimizer="sgd", lr=1e16)
    first = Population([replace(bad, epochs=2)], dtype=torch.float64, device="cpu").fit(
        data, keep_states=True
    )[0]
    assert first.diverged and first.state.diverged
    sane = replace(bad, seed=1, lr=0.1, epochs=4)
    results = Population([replace(bad, epochs=4), sane], dtype=torch.float64, device="cpu").fit(
        data, states=[first.state, None], keep_states=True
    )
    assert results[0].diverged
    assert results[0].state is not None and results[0].state.diverged


# -- input checks ----------------------------------------------------------------------------
def test_population_input_checks():
    with pytest.raises(ValueError, match=r"^Population\.specs: must hold at least one MemberSpec"):
        Population([])
    with pytest.raises(
        ValueError,
        match=r"^Population\.dtype: must be one of \[torch\.float32, torch\.float64\], got ",
    ):
        Population([BASE], dtype=torch.float16)


def test_training_data_from_arrays():
    x = np.arange(12.0).reshape(6, 2)
    data = TrainingData.from_arrays(x, np.array([0, 1, 2, 0, 1, 1]), x[:2], np.array([4, 0]))
    assert data.x_train.dtype == torch.float64 and data.y_train.dtype == torch.int64
    assert data.n_inputs == 2
    assert data.n_classes == 5  # the largest label, training or validation, plus one
    assert TrainingData.from_arrays(x, np.zeros(6, dtype=int), n_classes=10).n_classes == 10


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ((np.zeros(6), np.zeros(6)), r"x_train must be \[N, D\] and y_train \[N\], got \(6,\)"),
        ((np.zeros((6, 2)), np.zeros(5)), r"got \(6, 2\) and \(5,\)"),
        ((np.zeros((6, 2)), np.zeros(6), np.zeros((2, 2))), "x_val and y_val go together"),
    ],
    ids=["x_not_2d", "y_length", "val_half_given"],
)
def test_training_data_rejects_bad_shapes(arrays, message):
    with pytest.raises(ValueError, match=message):
        TrainingData.from_arrays(*arrays)
