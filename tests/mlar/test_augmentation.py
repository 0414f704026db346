import numpy as np
import pytest

from sodinn.mlar.augmentation import AUGMENT_KEY, augment_samples


@pytest.fixture()
def pool(rng):
    """12 C- samples (K=4, P=7) in 4 groups, each sample distinct."""
    samples = rng.normal(size=(12, 4, 7, 7)) + np.arange(12)[:, None, None, None]
    groups = -np.repeat(np.arange(1, 5), 3)
    return samples, groups


def test_shapes_dtype_and_valid_sources(pool):
    samples, groups = pool
    out, source = augment_samples(samples, groups, 25, seed=0, index=2)
    assert out.shape == (25, 4, 7, 7) and out.dtype == np.float64
    assert source.shape == (25,) and source.dtype == np.int64
    assert ((source >= 0) & (source < len(samples))).all()
    assert len(np.unique(source)) > 1
    assert np.isfinite(out).all()
    empty, none = augment_samples(samples, groups, 0, seed=0, index=2)
    assert empty.shape == (0, 4, 7, 7) and none.shape == (0,)


def test_deterministic_from_seed_and_index(pool):
    samples, groups = pool
    a = augment_samples(samples, groups, 10, seed=3, index=1)
    b = augment_samples(samples, groups, 10, seed=3, index=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for other in (dict(seed=4, index=1), dict(seed=3, index=2)):
        c = augment_samples(samples, groups, 10, **other)
        assert not np.array_equal(a[0], c[0])


def test_each_sample_has_its_own_stream(pool):
    samples, groups = pool
    five, src5 = augment_samples(samples, groups, 5, seed=7, index=0)
    three, src3 = augment_samples(samples, groups, 3, seed=7, index=0)
    np.testing.assert_array_equal(five[:3], three)
    np.testing.assert_array_equal(src5[:3], src3)
    one, src1 = augment_samples(samples, groups, 1, seed=7, index=0)
    np.testing.assert_array_equal(one[0], five[0])
    assert src1[0] == src5[0]


def test_source_is_the_first_draw_of_the_sample_stream(pool):
    samples, groups = pool
    _, source = augment_samples(samples, groups, 6, seed=11, index=5)
    for j in range(6):
        rng = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(5, AUGMENT_KEY, j)))
        assert source[j] == rng.integers(len(samples))


def _mean_partner(out_j, samples, s):
    """The samples o with out_j == (samples[s] + samples[o]) / 2, exactly."""
    return [o for o in range(len(samples)) if np.array_equal(out_j, 0.5 * (samples[s] + samples[o]))]


def test_mean_of_two_samples_of_the_same_group(pool):
    samples, groups = pool
    out, source = augment_samples(samples, groups, 60, seed=1, index=0)
    n_means = 0
    for j in range(len(out)):
        partners = _mean_partner(out[j], samples, source[j])
        if partners:
            n_means += 1
            assert all(groups[o] == groups[source[j]] for o in partners)
    assert 10 <= n_means <= 35  # one kind in three


def test_every_augmented_slice_stays_within_its_group_values(pool):
    """Rotation and shift (linear interpolation) and means are convex combinations within one slice."""
    samples, groups = pool
    out, source = augment_samples(samples, groups, 40, seed=2, index=3)
    for j in range(len(out)):
        members = samples[groups == groups[source[j]]]
        lo = members.min(axis=(0, 2, 3))[:, None, None]
        hi = members.max(axis=(0, 2, 3))[:, None, None]
        assert (out[j] >= lo - 1e-12).all() and (out[j] <= hi + 1e-12).all()


def test_single_member_groups_average_with_themselves(rng):
    samples = rng.normal(size=(5, 3, 5, 5))
    groups = np.arange(5)  # every sample alone in its group
    out, source = augment_samples(samples, groups, 30, seed=0, index=0)
    n_copies = sum(np.array_equal(out[j], samples[source[j]]) for j in range(len(out)))
    assert n_copies >= 5  # the mean of a sample with itself is the sample
    for j in range(len(out)):
        others = [o for o in range(5) if o != source[j]]
        assert not any(np.array_equal(out[j], 0.5 * (samples[source[j]] + samples[o])) for o in others)
