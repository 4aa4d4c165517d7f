"""Axis arithmetic of the report figures, checked against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from caviar.core.records import Direction
from caviar.report.scales import (
    beta_ticks,
    epoch_ticks,
    fit_limits,
    log_ticks,
    padded_range,
    value_ticks,
    zoom,
)


def test_beta_ticks_label_both_ends_of_the_range() -> None:
    # [0.8, 0.99]: the ends, and the round betas 1 - m * 10**-k (m = 5, 2, 1) between them
    assert beta_ticks(0.8, 0.99) == (0.8, 0.9, 0.95, 0.98, 0.99)
    # [0.9, 0.999] would take 7 ticks (0.95, 0.98, 0.99, 0.995, 0.998 inside): only powers of ten
    assert beta_ticks(0.9, 0.999) == (0.9, 0.99, 0.999)
    # nothing round strictly inside: the ends alone
    assert beta_ticks(0.9, 0.95) == (0.9, 0.95)
    # the labels read as betas, not as log10(1 - beta)
    assert [f"{t:g}" for t in beta_ticks(0.8, 0.99)] == ["0.8", "0.9", "0.95", "0.98", "0.99"]


def test_padded_range_widens_the_bounds_on_their_own_scale() -> None:
    # linear: [0, 10] widened by 5% of 10 on each side
    assert padded_range("linear", 0.0, 10.0) == pytest.approx((-0.5, 10.5))
    # log: log10 runs -4 .. 0, widened by 0.2 decades
    assert padded_range("log", 1e-4, 1.0) == pytest.approx((10**-4.2, 10**0.2))
    # 1 - beta: -log10(1 - beta) runs 1 .. 3 for [0.9, 0.999], widened by 0.1
    assert padded_range("one_minus_log", 0.9, 0.999) == pytest.approx((1 - 10**-0.9, 1 - 10**-3.1))
    # a single value still gets a visible range
    assert padded_range("linear", 2.0, 2.0) == pytest.approx((1.9, 2.1))


def test_fit_limits_fit_the_data_with_a_margin() -> None:
    assert fit_limits([0.5, 0.9, math.nan]) == pytest.approx((0.48, 0.92))  # 5% of 0.4
    assert fit_limits([0.7, 0.7]) == pytest.approx((0.65, 0.75))  # flat: 5% of max(0.7, 1)
    # log: log10 runs -2 .. 0, widened by 0.1 decades; zero cannot be drawn and is left out
    assert fit_limits([0.01, 1.0, 0.0], log=True) == pytest.approx((10**-2.1, 10**0.1))
    assert fit_limits([math.nan]) is None


def test_log_ticks_are_powers_of_ten_or_finer_steps_on_a_short_range() -> None:
    assert log_ticks(10**-2.1, 10**0.1) == (0.01, 0.1, 1.0)
    assert log_ticks(0.15, 2.5) == (0.2, 0.5, 1.0, 2.0)  # one power of ten only: 1, 2, 5
    assert log_ticks(0.031, 0.052) == (0.04, 0.05)  # 1, 2, 5 give one: every 1..9
    assert log_ticks(0.0, 1.0) == ()


def test_epoch_ticks_are_whole_epochs() -> None:
    assert epoch_ticks(3) == (1, 2, 3)
    assert epoch_ticks(8) == (1, 2, 3, 4, 5, 6, 7, 8)
    assert epoch_ticks(12) == (2, 4, 6, 8, 10, 12)
    assert epoch_ticks(20) == (5, 10, 15, 20)
    assert epoch_ticks(1) == (1,)
    assert epoch_ticks(0) == ()


def test_value_ticks_are_round_steps() -> None:
    # 0.9175 .. 1.0075: steps of 0.01 give nine ticks, 0.02 give five
    assert value_ticks(0.9175, 1.0075) == (0.92, 0.94, 0.96, 0.98, 1.0)
    assert value_ticks(0.0, 1.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert value_ticks(3.0, 40.0) == (10.0, 20.0, 30.0, 40.0)
    assert value_ticks(1.0, 0.0) == ()


def test_zoom_keeps_the_upper_band() -> None:
    # median 0.925, best 1.0: pad = 0.1 * 0.075 = 0.0075
    z = zoom([0.5, 0.9, 0.95, 1.0], Direction.MAXIMIZE)
    assert z.cut == pytest.approx(0.9175)  # median - pad: below it a trial is off the range
    assert z.edge == pytest.approx(0.91)  # median - 2 pad: where off-range trials are drawn
    assert z.limits == pytest.approx((0.9025, 1.0075))  # median - 3 pad .. best + pad
    # round ticks in the band (steps of 0.02 give five), and the edge row says what it holds
    assert z.ticks[1:] == (0.92, 0.94, 0.96, 0.98, 1.0) and z.ticks[0] == pytest.approx(0.91)
    assert z.tick_labels[1:] == ("0.92", "0.94", "0.96", "0.98", "1")
    assert z.tick_labels[0].startswith("< 0.91")  # the cut 0.9175 in 3 digits
    # a loss: the good band is the low one; median 1.5, best 1.0, pad 0.05
    z = zoom([2.0, 1.0, 1.5], Direction.MINIMIZE)
    assert (z.cut, z.edge) == pytest.approx((1.55, 1.6))
    assert z.limits == pytest.approx((0.95, 1.65))
    # 0.95 .. 1.55 in steps of 0.1 (six ticks), then the edge row at 1.6
    assert z.ticks[:-1] == (1.0, 1.1, 1.2, 1.3, 1.4, 1.5) and z.tick_labels[-1] == "> 1.55"
    # one trial: the band is 5% of max(|best|, 1) wide
    assert zoom([0.8], Direction.MAXIMIZE).limits == pytest.approx((0.785, 0.805))
