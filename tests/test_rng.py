import numpy as np

from engine.rng import chance, hash_u64, randint, random_u64, rng_state


def test_same_seed_same_numbers_and_state_advances():
    a, b = rng_state(5), rng_state(5)
    assert np.array_equal(random_u64(a, 10), random_u64(b, 10))
    assert a == b
    first = random_u64(a, 3)
    assert not np.array_equal(first, random_u64(a, 3))


def test_draws_split_the_same_as_one_draw():
    a, b = rng_state(9), rng_state(9)
    assert np.array_equal(np.concatenate([random_u64(a, 4), random_u64(a, 6)]), random_u64(b, 10))


def test_randint_range_and_spread():
    r = rng_state(1)
    v = randint(r, 100_000, -3, 4)
    assert v.min() == -3 and v.max() == 3
    counts = np.bincount(v + 3)
    assert counts.min() > 100_000 / 7 * 0.9


def test_chance_rate():
    r = rng_state(2)
    assert abs(chance(r, 100_000, 1, 4).mean() - 0.25) < 0.01


def test_hash_u64_is_stateless_and_key_sensitive():
    assert np.array_equal(hash_u64(np.arange(5), 3), hash_u64(np.arange(5), 3))
    assert len(set(hash_u64(np.arange(1000), 3).tolist())) == 1000
    assert not np.array_equal(hash_u64(np.arange(5), 3), hash_u64(np.arange(5), 4))
