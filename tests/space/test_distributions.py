"""Sampling on the right scale: what the course prescribes, checked over 20 000 draws.

Draws are uniform unit coordinates mapped by the dimension (exactly what every sampler does), or
come from the random sampler itself. Each expectation is worked out by hand from the scale's
definition; each tolerance is 4 standard deviations of the binomial count, sqrt(n p (1 - p)),
so a correct implementation fails about once in 16 000 runs per check and the seeds are fixed.
"""

import math

import numpy as np
import pytest

from caviar.core.records import Direction
from caviar.samplers import RandomSampler
from caviar.space import IntLogUniform, IntUniform, LogUniform, OneMinusLog, SearchSpace

N = 20_000


def draws(dim, seed: int = 0, n: int = N) -> np.ndarray:
    units = np.random.default_rng(seed).random(n)
    return np.array([dim.from_unit(float(u)) for u in units])


def four_sigma(n: int, p: float) -> float:
    return 4.0 * math.sqrt(n * p * (1.0 - p))


def test_one_minus_log_has_median_0_99_and_half_its_draws_above():
    # beta = 1 - 10**-t with t uniform on [1, 3]: the median t is 2, so the median beta is 0.99
    # (a log scale on beta itself, keras-tuner's reverse_log, gives 0.951)
    betas = draws(OneMinusLog(0.9, 0.999))
    assert np.median(betas) == pytest.approx(0.99, abs=0.005)
    above = int(np.sum(betas > 0.99))
    assert abs(above - N / 2) <= four_sigma(N, 0.5)
    assert betas.min() >= 0.9 and betas.max() <= 0.999


def test_one_minus_log_gives_each_power_of_ten_of_1_minus_beta_an_equal_share():
    # [0.9, 0.999]: 1 - beta in [1e-3, 1e-2) and [1e-2, 1e-1] each take half
    betas = draws(OneMinusLog(0.9, 0.999), seed=1)
    short_memory = int(np.sum(betas < 0.99))  # averages over fewer than 100 steps
    assert abs(short_memory - N / 2) <= four_sigma(N, 0.5)


def test_log_uniform_puts_a_quarter_of_draws_in_each_decade():
    # [1e-4, 1] spans four decades; a uniform scale would put 90 % in the top one
    lrs = draws(LogUniform(1e-4, 1.0), seed=2)
    edges = [1e-4, 1e-3, 1e-2, 1e-1, 1.0 + 1e-12]
    counts, _ = np.histogram(lrs, bins=edges)
    tolerance = four_sigma(N, 0.25)  # about 245 of the expected 5000
    assert counts.sum() == N
    for count in counts:
        assert abs(count - N / 4) <= tolerance, counts


def test_random_sampler_draws_learning_rates_per_decade():
    # the same law through the sampler: trial n's point comes from its own seeded stream
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0)})
    sampler = RandomSampler(seed=3)
    n = 8_000
    lrs = np.array(
        [
            space.from_unit(sampler.propose(space, i, [], Direction.MAXIMIZE).unit)["lr"]
            for i in range(n)
        ]
    )
    counts, _ = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1, 0])
    for count in counts:
        assert abs(count - n / 4) <= four_sigma(n, 0.25), counts


def test_int_log_uniform_is_uniform_in_log_over_octaves():
    # Integer v owns the value bin [v - 1/2, v + 1/2], drawn uniformly in log10, so the octave
    # [a, b] has probability log((b + 1/2) / (a - 1/2)) / log(512.5 / 15.5): about 1/5 each
    # (0.2027, 0.2004, 0.1993, 0.1987, 0.1984, plus 0.0006 for 512 itself).
    sizes = draws(IntLogUniform(16, 512), seed=4)
    assert sizes.dtype.kind == "i"
    assert sizes.min() == 16 and sizes.max() == 512  # both ends included
    total = math.log(512.5 / 15.5)
    for a, b in [(16, 31), (32, 63), (64, 127), (128, 255), (256, 511)]:
        p = math.log((b + 0.5) / (a - 0.5)) / total
        assert p == pytest.approx(0.2, abs=0.003)
        count = int(np.sum((sizes >= a) & (sizes <= b)))
        assert abs(count - N * p) <= four_sigma(N, p), (a, b, count)


@pytest.mark.parametrize(("low", "high"), [(2, 4), (0, 1), (50, 55)])
def test_int_uniform_gives_end_points_their_full_share(low, high):
    # each of the k integers has probability 1/k; rounding a uniform [low, high] would halve
    # the end points (1/(2(k-1)) each)
    values = draws(IntUniform(low, high), seed=5)
    k = high - low + 1
    counts = np.bincount(values - low, minlength=k)
    assert len(counts) == k
    for count in counts:
        assert abs(count - N / k) <= four_sigma(N, 1 / k), counts
