"""Batch transforms: Normalize, RandomCrop, RandomHorizontalFlip, Compose."""

import numpy as np
import pytest
import tt_core
from tt_core import Tensor
from tt_core.errors import ShapeError, TinyTorchError
from tt_data import Compose, Normalize, RandomCrop, RandomHorizontalFlip


def batch(n=6, c=3, h=5, w=7, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32)


# -- Normalize -----------------------------------------------------------------------------


def test_normalize_per_channel():
    x = batch()
    mean, std = [0.1, 0.2, 0.3], [0.5, 1.0, 2.0]
    out = Normalize(mean, std)(x)
    expected = (x - np.array(mean).reshape(1, 3, 1, 1)) / np.array(std).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(Normalize(0.5, 0.25)(x), (x - 0.5) / 0.25, rtol=1e-6)


def test_normalize_keeps_tensors_differentiable():
    pytest.importorskip("tt_learn")
    x = Tensor(batch(n=2), requires_grad=True)
    out = Normalize([0.0, 0.0, 0.0], [2.0, 4.0, 8.0])(x)
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data[0, :, 0, 0], [0.5, 0.25, 0.125])


def test_normalize_errors():
    with pytest.raises(ValueError, match="positive"):
        Normalize([0.0], [0.0])
    with pytest.raises(ValueError, match="one value per channel"):
        Normalize([0.0, 1.0], [1.0])
    with pytest.raises(ShapeError, match="2 channel statistics"):
        Normalize([0.0, 0.0], [1.0, 1.0])(batch(c=3))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        Normalize(0.0, 1.0)(np.zeros((3, 4, 4), np.float32))


# -- RandomCrop ----------------------------------------------------------------------------


def test_random_crop_matches_a_per_image_reference():
    x = batch(n=8, h=6, w=6)
    crop = RandomCrop((4, 5), padding=2, seed=4)
    out = crop(x)
    # the same offsets, drawn from an identically seeded generator
    rng = np.random.default_rng(4)
    top, left = rng.integers(0, 10 - 4 + 1, size=8), rng.integers(0, 10 - 5 + 1, size=8)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    expected = np.stack([padded[i, :, t:t + 4, s:s + 5] for i, (t, s) in enumerate(zip(top, left))])
    np.testing.assert_array_equal(out, expected)
    assert out.shape == (8, 3, 4, 5) and out.dtype == np.float32


def test_random_crop_offsets_vary_per_image_and_cover_the_range():
    x = np.ones((400, 1, 4, 4), np.float32)
    out = RandomCrop(4, padding=2, seed=0)(x)
    # how many padding rows/columns each crop shows tells its offset
    zero_cols = (out[:, 0] == 0).all(axis=1).sum(axis=1)
    assert set(np.unique(zero_cols)) == {0, 1, 2}


def test_random_crop_without_padding_at_full_size_is_identity_and_tensor_in_tensor_out():
    x = batch()
    np.testing.assert_array_equal(RandomCrop((5, 7), seed=0)(x), x)
    out = RandomCrop((5, 7), seed=0)(Tensor(x))
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out.data, x)


def test_random_crop_errors():
    with pytest.raises(ShapeError, match="larger than"):
        RandomCrop(9, seed=0)(batch(h=5, w=7))
    with pytest.raises(ValueError, match="size"):
        RandomCrop(0)
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(3, padding=-1)


# -- RandomHorizontalFlip ------------------------------------------------------------------


def test_flip_probability_extremes():
    x = batch()
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0, seed=0)(x), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0, seed=0)(x), x[..., ::-1])


def test_flip_flips_each_image_independently():
    x = batch(n=200)
    out = RandomHorizontalFlip(seed=1)(x)
    same = np.all(out == x, axis=(1, 2, 3))
    flipped = np.all(out == x[..., ::-1], axis=(1, 2, 3))
    assert np.all(same ^ flipped)
    assert 70 < flipped.sum() < 130
    with pytest.raises(ValueError, match="probability"):
        RandomHorizontalFlip(p=1.5)


# -- seeding, Compose, state ---------------------------------------------------------------


def test_random_transforms_are_reproducible_and_checkpointable():
    x = batch()
    tt_core.manual_seed(5)
    a = Compose([RandomCrop(5, padding=1), RandomHorizontalFlip()])
    tt_core.manual_seed(5)
    b = Compose([RandomCrop(5, padding=1), RandomHorizontalFlip()])
    np.testing.assert_array_equal(a(x), b(x))
    state = a.state_dict()
    expected = a(x)
    b.load_state_dict(state)
    np.testing.assert_array_equal(b(x), expected)
    with pytest.raises(ValueError, match="either seed or generator"):
        RandomHorizontalFlip(seed=1, generator=np.random.default_rng(1))


def test_compose_applies_in_order():
    x = batch()
    pipeline = Compose([Normalize(0.5, 0.5), RandomHorizontalFlip(p=1.0, seed=0)])
    np.testing.assert_allclose(pipeline(x), ((x - 0.5) / 0.5)[..., ::-1], rtol=1e-6)
    assert "Normalize" in repr(pipeline) and "RandomHorizontalFlip" in repr(pipeline)
    with pytest.raises(TinyTorchError, match="callables"):
        Compose([3])
