"""The 8x8 handwritten digits (UCI, CC BY 4.0), embedded so the tour runs with no download.

1,797 images, pixel values 0-16, labels 0-9. The split is fixed: every fifth sample
(index % 5 == 0, 360 images) is the test set, the other 1,437 the training set. tt-data's
``tinydigits`` data set and milestone 01 both read the digits from here.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

import numpy as np

SPLITS = ("train", "test", "all")


@lru_cache(maxsize=1)
def _load_all() -> tuple[np.ndarray, np.ndarray]:
    """Decode the embedded CSV once (64 pixel columns, then the label)."""
    with resources.files("tt_core").joinpath("data/digits.csv.gz").open("rb") as raw, gzip.open(raw) as csv:
        table = np.loadtxt(csv, delimiter=",", dtype=np.int64)
    return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64]


def load_digits(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: uint8 images of shape (N, 8, 8) with values 0-16, int64 labels.

    Args:
        split: ``"train"`` (1,437 images), ``"test"`` (360) or ``"all"`` (1,797).

    Raises:
        ValueError: an unknown split.

    Examples:
        >>> images, labels = load_digits("test")
        >>> images.shape, images.dtype, int(images.max()), sorted(set(labels.tolist())) == list(range(10))
        ((360, 8, 8), dtype('uint8'), 16, True)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    images, labels = _load_all()
    if split == "all":
        return images.copy(), labels.copy()
    test = np.arange(len(labels)) % 5 == 0
    keep = test if split == "test" else ~test
    return images[keep], labels[keep]
