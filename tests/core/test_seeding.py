"""Seeds derived from keys: a pure function of what a stream is for, and nothing else."""

import re

import pytest

from caviar.core.seeding import INIT, SAMPLER, TRIAL, derive_seed, generator


def test_a_seed_depends_only_on_its_keys():
    assert derive_seed(3, TRIAL, 7) == derive_seed(3, TRIAL, 7)
    seeds = {
        derive_seed(s, purpose, n) for s in (0, 1) for purpose in (TRIAL, INIT) for n in range(50)
    }
    assert len(seeds) == 200  # distinct keys, distinct seeds
    assert all(0 <= s < 2**63 for s in seeds)


def test_a_generator_is_a_pure_function_of_its_keys():
    assert (
        generator(5, SAMPLER, 2).random(4).tolist() == generator(5, SAMPLER, 2).random(4).tolist()
    )
    assert (
        generator(5, SAMPLER, 2).random(4).tolist() != generator(5, SAMPLER, 3).random(4).tolist()
    )


@pytest.mark.parametrize("key", [-1, 1.5, True, "3"])
def test_keys_must_be_non_negative_integers(key):
    message = f"seed keys must be non-negative integers, got {key!r}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        derive_seed(1, key)
