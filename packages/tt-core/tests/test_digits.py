"""The embedded 8x8 digits: shapes, the fixed split, values and labels."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from tt_core.digits import load_digits
from tt_core.errors import ArgumentError

FIRST_IMAGE_TOP_ROWS = [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0]]


def test_shapes_and_dtypes():
    for split, n in (("all", 1797), ("train", 1437), ("test", 360)):
        images, labels = load_digits(split)
        assert images.shape == (n, 8, 8) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.int64


def test_default_split_is_all():
    images, labels = load_digits()
    assert len(images) == 1797
    assert images[0, :2].tolist() == FIRST_IMAGE_TOP_ROWS and labels[0] == 0


def test_fixed_split_every_fifth_sample_is_test():
    images, labels = load_digits("all")
    train_x, train_y = load_digits("train")
    test_x, test_y = load_digits("test")
    np.testing.assert_array_equal(test_x, images[::5])
    np.testing.assert_array_equal(test_y, labels[::5])
    keep = np.arange(1797) % 5 != 0
    np.testing.assert_array_equal(train_x, images[keep])
    np.testing.assert_array_equal(train_y, labels[keep])


def test_values_and_label_counts():
    images, labels = load_digits("all")
    assert images.min() == 0 and images.max() == 16
    assert sorted(np.unique(labels).tolist()) == list(range(10))
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert np.bincount(load_digits("test")[1]).tolist() == [42, 28, 26, 48, 38, 39, 30, 26, 36, 47]
    assert abs(images.mean() - 4.88) < 0.01


def test_callers_get_their_own_copies():
    images, labels = load_digits("all")
    images[0] = 99
    labels[0] = 7
    again, again_labels = load_digits("all")
    assert again[0].max() <= 16 and again_labels[0] == 0


def test_unknown_split():
    with pytest.raises(ArgumentError, match="split must be one of train, test, all, got 'valid'"):
        load_digits("valid")


def test_embedded_copy_matches_the_shared_data_set():
    data_dir = os.environ.get("TT_DATA_DIR")
    source = Path(data_dir, "digits", "digits.csv.gz") if data_dir else None
    if source is None or not source.is_file():
        pytest.skip("TT_DATA_DIR with digits/digits.csv.gz is not available")
    with gzip.open(source, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images, labels = load_digits("all")
    np.testing.assert_array_equal(images.reshape(len(images), 64), table[:, :64])
    np.testing.assert_array_equal(labels, table[:, 64])
