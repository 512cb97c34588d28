"""``Dataset``, ``TensorDataset`` and ``DataLoader``: feeding batches to a model.

A ``DataLoader`` cuts a data set into mini-batches. For a data set held in arrays
(:class:`TensorDataset`) a batch is *one* fancy-index per array -- ``images[indices]`` -- so an
epoch costs a few hundred NumPy calls, not one Python call per sample. Any other data set
(anything with ``__len__`` and ``__getitem__``) still works: its samples are fetched one by one
and stacked (:func:`collate`).

Shuffling draws from the loader's own seeded ``numpy.random.Generator``, whose state is part
of :meth:`DataLoader.state_dict`, so a run resumed from a checkpoint sees the same batches::

    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, seed=0)
    for images, labels in loader:   # Tensors: float32 images, int64 labels
        ...
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
from tt_core import Tensor
from tt_core.errors import ShapeError, TinyTorchError
from tt_core.rng import generator as global_generator


class LoaderError(TinyTorchError, ValueError):
    """A :class:`DataLoader` given arguments it cannot work with."""


def _as_array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


class Dataset:
    """A collection of samples: ``len(ds)`` and ``ds[i]`` (a tuple such as ``(image, label)``).

    Subclasses implement ``__len__`` and ``__getitem__``. A data set that can gather many
    samples at once overrides :meth:`get_batch`, which the ``DataLoader`` calls with an array
    of indices; the default gathers the samples one by one and stacks them.

    Examples:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return np.float32(i), i * i
        >>> [y.tolist() for _, y in DataLoader(Squares(), batch_size=2)]
        [[0, 1], [4, 9]]
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __getitem__(self, index: int):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """The samples at ``indices``, stacked into one array per field."""
        return collate([self[int(i)] for i in indices])


class TensorDataset(Dataset):
    """Samples stored as arrays that share their first axis (e.g. images and labels).

    Args:
        *arrays: NumPy arrays or Tensors of equal length; sample ``i`` is
            ``tuple(a[i] for a in arrays)``.

    Examples:
        >>> ds = TensorDataset(np.zeros((10, 3), np.float32), np.arange(10))
        >>> len(ds), int(ds[2][1]), ds.get_batch(np.array([1, 3]))[1].tolist()
        (10, 2, [1, 3])
    """

    def __init__(self, *arrays) -> None:
        if not arrays:
            raise TinyTorchError("TensorDataset needs at least one array, e.g. TensorDataset(images, labels)")
        self.arrays = tuple(_as_array(a) for a in arrays)
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = ", ".join(str(a.shape) for a in self.arrays)
            raise ShapeError(f"TensorDataset arrays must have the same length (first axis); got shapes {shapes}")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """One fancy-index per array: the whole batch in a single NumPy call each."""
        return tuple(a[indices] for a in self.arrays)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"TensorDataset({shapes})"


def collate(samples: Sequence) -> tuple[np.ndarray, ...]:
    """Stack a list of samples into a batch: one array per field.

    A sample is a tuple/list of fields (arrays, Tensors or numbers) or a single field.

    Raises:
        TinyTorchError: no samples, or samples with different numbers of fields.

    Examples:
        >>> images, labels = collate([(np.zeros(3), 0), (np.ones(3), 1)])
        >>> images.shape, labels.tolist()
        ((2, 3), [0, 1])
    """
    if len(samples) == 0:
        raise TinyTorchError("cannot collate an empty list of samples")
    first = samples[0]
    if isinstance(first, (tuple, list)):
        width = len(first)
        if any(not isinstance(s, (tuple, list)) or len(s) != width for s in samples):
            raise TinyTorchError(f"every sample must have the same {width} fields to be collated into a batch")
        return tuple(np.stack([_as_array(s[k]) for s in samples]) for k in range(width))
    return (np.stack([_as_array(s) for s in samples]),)


class DataLoader:
    """Iterate over a data set in mini-batches of Tensors.

    Args:
        dataset: a :class:`Dataset` (or anything with ``__len__``/``__getitem__``).
        batch_size: samples per batch, a positive integer (not a bool).
        shuffle: visit the samples in a new random order every epoch (True or False).
        seed: seed of the loader's generator; ``None`` draws one from tt-core's global
            generator, so ``tt_core.manual_seed`` makes the order reproducible too.
        generator: a ``numpy.random.Generator`` to use instead of ``seed``.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        transform: a callable applied to the batch's first field (the inputs, as a NumPy
            array) before it becomes a Tensor, e.g. ``Compose([RandomCrop(32, 4), ...])``.

    Each batch is a tuple of Tensors, one per field of the data set (a single-field data set
    gives 1-tuples). Integer fields (labels) keep their integer dtype. An epoch visits every
    sample exactly once (all but the last incomplete batch with ``drop_last``).

    Raises:
        LoaderError: ``batch_size`` is not a positive integer (``True`` included), ``shuffle``
            or ``drop_last`` is not a bool, or both ``seed`` and ``generator`` are given.

    Examples:
        >>> loader = DataLoader(TensorDataset(np.ones((5, 2)), np.arange(5)), batch_size=2)
        >>> [x.shape for x, y in loader]
        [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        *,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
        drop_last: bool = False,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        if isinstance(batch_size, (bool, np.bool_)):
            raise LoaderError(f"batch_size must be a positive integer, got {batch_size!r}: a bool is not a batch "
                              "size (DataLoader(ds, 32, True) shuffles batches of 32; or write shuffle=True)")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise LoaderError(f"batch_size must be a positive integer, got {batch_size!r}")
        for flag, value in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(value, (bool, np.bool_)):
                raise LoaderError(f"{flag} must be True or False, got {value!r}")
        if generator is not None and seed is not None:
            raise LoaderError("give either seed or generator, not both")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        if generator is None:
            seed = int(global_generator().integers(2**63)) if seed is None else seed
            generator = np.random.default_rng(seed)
        self.generator = generator
        self.epoch = 0  # completed epochs
        self._epoch_rng_state: dict | None = None  # generator state before this epoch's shuffle
        self._position = 0  # batches already yielded in the current epoch
        self._skip = 0  # batches to skip after load_state_dict (resuming mid-epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _fetch(self, indices: np.ndarray) -> tuple:
        get_batch = getattr(self.dataset, "get_batch", None)
        fields = get_batch(indices) if get_batch is not None else collate([self.dataset[int(i)] for i in indices])
        if self.transform is not None:
            fields = (self.transform(fields[0]),) + tuple(fields[1:])
        return tuple(f if isinstance(f, Tensor) else Tensor(f) for f in fields)

    def __iter__(self) -> Iterator[tuple]:
        n = len(self.dataset)
        self._epoch_rng_state = self.generator.bit_generator.state
        order = self.generator.permutation(n) if self.shuffle else np.arange(n)
        starts = range(0, len(self) * self.batch_size, self.batch_size)
        self._position, skip, self._skip = 0, self._skip, 0
        for number, start in enumerate(starts):
            if number < skip:
                continue
            self._position = number + 1
            yield self._fetch(order[start:start + self.batch_size])
        self.epoch += 1
        self._epoch_rng_state, self._position = None, 0

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Where the loader is: the generator state, the epoch and (mid-epoch) the batch.

        Loading it into a fresh loader over the same data set continues with exactly the
        batches the original loader would have produced next.
        """
        mid_epoch = self._epoch_rng_state is not None and self._position > 0
        return {
            "rng": self._epoch_rng_state if mid_epoch else self.generator.bit_generator.state,
            "epoch": self.epoch,
            "position": self._position if mid_epoch else 0,
        }

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.bit_generator.state = state["rng"]
            self.epoch, self._skip = int(state["epoch"]), int(state["position"])
        except (KeyError, TypeError, ValueError) as error:
            raise TinyTorchError(f"not a DataLoader state dict ({type(error).__name__}: {error})") from None
        self._epoch_rng_state, self._position = None, 0

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")
