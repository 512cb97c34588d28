"""Transforms: callables on a whole *batch* of images (N, C, H, W), not on one image.

Working on the batch keeps augmentation vectorised: ``RandomCrop`` draws one offset per image
and gathers every crop with a single fancy-index into a strided view, ``RandomHorizontalFlip``
picks the images to flip with one boolean mask. A transform takes a NumPy array or a Tensor
and returns the same kind (float32 stays float32).

Random transforms own a seeded ``numpy.random.Generator`` (``seed=None`` draws the seed from
tt-core's global generator, so ``tt_core.manual_seed`` makes them reproducible) and have
``state_dict``/``load_state_dict`` for checkpoints::

    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(mean, std)])
    loader = DataLoader(train, batch_size=128, shuffle=True, transform=augment)
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tt_core import Tensor
from tt_core.errors import ShapeError, TinyTorchError
from tt_core.rng import generator as global_generator


def _unwrap(batch) -> tuple[np.ndarray, bool]:
    """The batch as an array, and whether it came as a Tensor."""
    if isinstance(batch, Tensor):
        return batch.data, True
    return np.asarray(batch), False


def _check_images(images: np.ndarray, who: str) -> None:
    if images.ndim != 4:
        raise ShapeError(f"{who} works on a batch of images (N, C, H, W), got shape {images.shape}")


def _pair(value, name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, (int, np.integer)) or v < 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class RandomTransform:
    """Base of the random transforms: a seeded generator whose state can be saved."""

    def __init__(self, seed: int | None = None, generator: np.random.Generator | None = None) -> None:
        if generator is not None and seed is not None:
            raise ValueError("give either seed or generator, not both")
        if generator is None:
            seed = int(global_generator().integers(2**63)) if seed is None else seed
            generator = np.random.default_rng(seed)
        self.generator = generator

    def state_dict(self) -> dict:
        return {"rng": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.generator.bit_generator.state = state["rng"]


class Normalize:
    """``(x - mean) / std`` per channel.

    Args:
        mean, std: one value per channel (or a single value for all channels).

    With a Tensor input the result is computed with Tensor operations, so gradients flow.

    Examples:
        >>> Normalize(mean=[0.5], std=[0.25])(np.ones((1, 1, 1, 2), np.float32)).tolist()
        [[[[2.0, 2.0]]]]
    """

    def __init__(self, mean, std) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float32))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float32))
        if self.mean.ndim != 1 or self.std.ndim != 1 or len(self.mean) != len(self.std):
            raise ValueError(f"mean and std need one value per channel each, got {mean!r} and {std!r}")
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std!r}")

    def __call__(self, batch):
        images, is_tensor = _unwrap(batch)
        _check_images(images, "Normalize")
        if len(self.mean) not in (1, images.shape[1]):
            raise ShapeError(f"Normalize has {len(self.mean)} channel statistics, the batch has {images.shape[1]} channels")
        mean, std = self.mean.reshape(1, -1, 1, 1), self.std.reshape(1, -1, 1, 1)
        if is_tensor:
            return (batch - Tensor(mean)) / Tensor(std)
        return ((images - mean) / std).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop(RandomTransform):
    """Pad every image, then cut a ``size`` window at a random place (one place per image).

    Args:
        size: output height and width (an int or a pair).
        padding: zeros added on each side before cropping.
        seed, generator: the source of randomness (see the module docstring).

    Vectorised: the padded batch is viewed as all its windows (``sliding_window_view``, no
    copy), and one fancy-index picks window ``(top[n], left[n])`` for every image ``n``.

    Examples:
        >>> RandomCrop(4, padding=2, seed=0)(np.ones((8, 3, 4, 4), np.float32)).shape
        (8, 3, 4, 4)
    """

    def __init__(self, size, padding: int = 0, *, seed: int | None = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__(seed, generator)
        self.size = _pair(size, "size")
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        self.padding = int(padding)

    def __call__(self, batch):
        images, is_tensor = _unwrap(batch)
        _check_images(images, "RandomCrop")
        p, (h, w) = self.padding, self.size
        if p:
            images = np.pad(images, ((0, 0), (0, 0), (p, p), (p, p)))
        n, _, height, width = images.shape
        if h > height or w > width:
            raise ShapeError(f"RandomCrop size {self.size} is larger than the padded images ({height}, {width})")
        top = self.generator.integers(0, height - h + 1, size=n)
        left = self.generator.integers(0, width - w + 1, size=n)
        windows = sliding_window_view(images, (h, w), axis=(2, 3))  # (N, C, H-h+1, W-w+1, h, w)
        # the index arrays at axes 0, 2, 3 are split by the channel slice, so NumPy puts their
        # common (N,) axis first: the result is (N, C, h, w)
        crops = windows[np.arange(n), :, top, left]
        return Tensor(crops) if is_tensor else crops

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip(RandomTransform):
    """Mirror each image left-right with probability ``p`` (independently per image).

    Examples:
        >>> RandomHorizontalFlip(p=1.0, seed=0)(np.arange(3.0).reshape(1, 1, 1, 3)).ravel().tolist()
        [2.0, 1.0, 0.0]
    """

    def __init__(self, p: float = 0.5, *, seed: int | None = None,
                 generator: np.random.Generator | None = None) -> None:
        super().__init__(seed, generator)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, batch):
        images, is_tensor = _unwrap(batch)
        _check_images(images, "RandomHorizontalFlip")
        flip = self.generator.random(len(images)) < self.p
        flipped = np.where(flip[:, None, None, None], images[..., ::-1], images)
        return Tensor(flipped) if is_tensor else flipped

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms one after another: ``Compose([t1, t2])(x) == t2(t1(x))``.

    Examples:
        >>> flip_then_scale = Compose([RandomHorizontalFlip(p=1.0, seed=0), Normalize(0.0, 0.5)])
        >>> flip_then_scale(np.arange(3.0).reshape(1, 1, 1, 3)).ravel().tolist()
        [4.0, 2.0, 0.0]
    """

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TinyTorchError(f"Compose needs callables, got {t!r}")

    def __call__(self, batch):
        for t in self.transforms:
            batch = t(batch)
        return batch

    def state_dict(self) -> dict:
        """The state of every random transform, by position."""
        return {str(i): t.state_dict() for i, t in enumerate(self.transforms) if hasattr(t, "state_dict")}

    def load_state_dict(self, state: dict) -> None:
        for i, t in enumerate(self.transforms):
            if hasattr(t, "load_state_dict") and str(i) in state:
                t.load_state_dict(state[str(i)])

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"
