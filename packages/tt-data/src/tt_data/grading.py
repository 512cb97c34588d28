"""Checkers of Act III's kinds, and the examples that build and feed its layers and transforms.

A checker is ``check(grader, yours, reference, name)`` (see :mod:`tt_core.grading`): it runs
``yours`` on inputs drawn from ``grader.rng`` and records one case per property of the kind's
contract, comparing with ``reference`` (the built-in component, or None) where the contract
fixes the answer:

- ``loader``: batches of the right shapes and dtypes as Tensors, in order without shuffling,
  every sample exactly once per epoch with it, a new order each epoch, the same order for the
  same seed, ``drop_last`` and ``len``, and data sets that only have ``__len__``/``__getitem__``;
- ``dataset_class``: ``len``, ``ds[i]`` and ``get_batch`` give the stored samples with their
  dtypes; arrays of different lengths are refused;
- ``transform``: built from its example, the output's shape, dtype and kind (array in, array
  out; Tensor in, Tensor out) equal the reference's; a random transform gives the same output
  for the same seed, a deterministic one the reference's values; crops are windows of the
  padded images, flips mirror whole images or leave them;
- ``dataset``: called with a split and the reference's arguments, the catalogue entry's
  metadata, and for the embedded ``tinydigits`` (the only data set a checker ever loads) the
  arrays, dtypes, label range and scaled form;
- ``function:require_data`` (:func:`check_require_data`, found by tt-core's ``function``
  checker): on data sets of a few random files in a temporary data folder (nothing is
  downloaded), the verified paths when every file is there, one error naming every missing
  and corrupt file, and errors for an unknown name and for no name.

The ``example`` components registered by :func:`register` are ``make(rng) -> Example`` for
tt-data's ops (input shapes and attributes), layers and transforms, so that the op and layer
checkers can call, build and feed them.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tt_core import Tensor
from tt_core.grading import (
    Example,
    Mismatch,
    check_arguments,
    compare_values,
    epoch_arrays,
    expect,
    register_graders,
    signature_parameters,
)
from tt_core.plugins import ComponentRegistry

from .download import RemoteFile
from .loader import TensorDataset
from .transforms import Normalize, RandomHorizontalFlip

# ----------------------------------------------------------------------------------------
# Helpers shared by the checkers of the later Acts
# ----------------------------------------------------------------------------------------


def as_array(value) -> np.ndarray:
    """A Tensor's array, or ``value`` as an array."""
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _takes_a_split(parameters: dict[str, inspect.Parameter]) -> bool:
    """Whether a callable with these parameters takes ``split`` (by name, first) and needs
    nothing else."""
    names = [n for n, p in parameters.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [n for n, p in parameters.items()
                if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names[:1] == ["split"] and set(required) <= {"split"}


def seeded(obj, seed: int) -> dict:
    """``{"seed": seed}`` when ``obj``'s constructor takes a seed, else ``{}``."""
    parameters = signature_parameters(obj) or {}
    return {"seed": seed} if "seed" in parameters else {}


# ----------------------------------------------------------------------------------------
# loader
# ----------------------------------------------------------------------------------------


class _Plain:
    """A data set with only ``__len__`` and ``__getitem__`` (no ``get_batch``)."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]


def _order(batches) -> np.ndarray:
    """The sample indices an epoch visited, read from the index each sample carries."""
    return np.concatenate([b[0][:, 0, 0] for b in batches] + [np.zeros(0)]).astype(np.int64)


def check_loader(grader, yours, reference, name: str) -> None:
    """The ``loader`` contract: ``DataLoader(dataset, batch_size, shuffle, *, seed, drop_last)``."""
    rng = grader.rng
    batch = int(rng.integers(3, 8))
    n = batch * int(rng.integers(3, 6)) + int(rng.integers(1, batch))  # a smaller last batch
    x = rng.standard_normal((n, 2, 3)).astype(np.float32)
    x[:, 0, 0] = np.arange(n)  # every sample carries its index
    y = rng.integers(0, 10, n).astype(np.int64)
    data = TensorDataset(x, y)
    sizes = [batch] * (n // batch) + [n % batch]

    with grader.case(f"batches in order without shuffle ({n} samples, batch_size={batch})"):
        batches = epoch_arrays(yours(data, batch_size=batch))
        got = [len(b[0]) for b in batches]
        expect(got == sizes, f"batch sizes are {got}, expected {sizes}")
        for number, (bx, by) in enumerate(batches):
            expect(bx.dtype == np.float32 and bx.shape[1:] == x.shape[1:],
                   f"batch {number}: inputs are {bx.dtype} {bx.shape}, expected float32 ({len(bx)}, 2, 3)")
            expect(by.dtype.kind in "iu", f"batch {number}: labels are {by.dtype}, integer labels must stay integers")
        order = _order(batches)
        expect(np.array_equal(order, np.arange(n)), f"without shuffle the samples must come in order; got {order}")
        expect(np.array_equal(np.concatenate([b[1] for b in batches]), y), "labels do not follow their samples")
        count = len(yours(data, batch_size=batch))
        expect(count == len(sizes), f"len(loader) is {count}, expected {len(sizes)} batches")

    seed = int(rng.integers(2**31))
    with grader.case("shuffle=True visits every sample exactly once per epoch, in a new order each epoch"):
        loader = yours(data, batch_size=batch, shuffle=True, seed=seed)
        first, second = epoch_arrays(loader), epoch_arrays(loader)
        for epoch, batches in enumerate((first, second), start=1):
            order = _order(batches)
            counts = np.bincount(order, minlength=n)
            expect(len(order) == n and np.all(counts == 1),
                   f"epoch {epoch} visited {len(order)} samples with {int(np.sum(counts > 1))} repeated and "
                   f"{int(np.sum(counts == 0))} never seen: each of the {n} samples must come exactly once")
            labels = np.concatenate([b[1] for b in batches])
            expect(np.array_equal(labels, y[order]), f"epoch {epoch}: shuffled labels do not follow their samples")
        expect(not np.array_equal(_order(first), np.arange(n)), "shuffle=True kept the samples in order")
        expect(not np.array_equal(_order(first), _order(second)),
               "two epochs came in the same order: shuffle must draw a new order every epoch")

    with grader.case("the same seed gives the same batches, another seed others"):
        orders = [_order(epoch_arrays(yours(data, batch_size=batch, shuffle=True, seed=s)))
                  for s in (seed, seed, seed + 1)]
        expect(np.array_equal(orders[0], orders[1]), f"two loaders with seed={seed} gave different orders")
        expect(not np.array_equal(orders[0], orders[2]), f"seed={seed} and seed={seed + 1} gave the same order")

    with grader.case(f"drop_last=True drops the last {n % batch} sample(s)"):
        loader = yours(data, batch_size=batch, drop_last=True)
        got = [len(b[0]) for b in epoch_arrays(loader)]
        expect(got == sizes[:-1], f"with drop_last=True the batch sizes are {got}, expected {sizes[:-1]}")
        expect(len(loader) == len(sizes) - 1, f"len(loader) with drop_last=True is {len(loader)}, expected {len(sizes) - 1}")

    with grader.case("a data set with only __len__ and __getitem__"):
        batches = epoch_arrays(yours(_Plain(x, y), batch_size=batch))
        expect(np.array_equal(_order(batches), np.arange(n)), "the samples of a plain data set came out of order")
        expect(np.array_equal(np.concatenate([b[0] for b in batches]), x), "the inputs of a plain data set changed")


# ----------------------------------------------------------------------------------------
# dataset_class
# ----------------------------------------------------------------------------------------


def check_dataset_class(grader, yours, reference, name: str) -> None:
    """The ``dataset_class`` contract of ``TensorDataset(*arrays)``."""
    rng = grader.rng
    n = int(rng.integers(5, 20))
    x = rng.standard_normal((n, 3, 2)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)

    with grader.case(f"len and ds[i] of ({n}, 3, 2) float32 inputs and int64 labels"):
        ds = yours(x, y)
        expect(len(ds) == n, f"len(ds) is {len(ds)}, expected {n}")
        for i in (0, int(rng.integers(n)), n - 1):
            sample = ds[i]
            expect(isinstance(sample, tuple) and len(sample) == 2, f"ds[{i}] is {sample!r}, expected a tuple (x, y)")
            xi, yi = as_array(sample[0]), as_array(sample[1])
            expect(xi.shape == (3, 2) and xi.dtype == np.float32, f"ds[{i}][0] is {xi.dtype} {xi.shape}, expected float32 (3, 2)")
            grader.compare(xi, x[i], f"ds[{i}][0]", rtol=0, atol=0)
            expect(yi.dtype.kind in "iu" and int(yi) == y[i], f"ds[{i}][1] is {yi!r}, expected the label {y[i]}")

    with grader.case("get_batch(indices) gives the samples at those indices"):
        ds = yours(x, y)
        indices = rng.permutation(n)[: max(2, n // 2)]
        gathered = ds.get_batch(indices) if hasattr(ds, "get_batch") else tuple(
            np.stack([as_array(ds[int(i)][k]) for i in indices]) for k in range(2))
        grader.compare(as_array(gathered[0]), x[indices], "get_batch inputs", rtol=0, atol=0)
        grader.compare(as_array(gathered[1]), y[indices], "get_batch labels", rtol=0, atol=0)

    with grader.case("Tensors are accepted as arrays"):
        ds = yours(Tensor(x), y)
        grader.compare(as_array(ds[1][0]), x[1], "ds[1][0] of a Tensor", rtol=0, atol=0)

    with grader.case("arrays of different lengths are refused"):
        try:
            yours(x, y[:-1])
        except Exception:  # noqa: BLE001 - any clear error will do
            return
        raise Mismatch(f"{name}(x of {n} samples, y of {n - 1}) was accepted: it must raise an error")


# ----------------------------------------------------------------------------------------
# transform
# ----------------------------------------------------------------------------------------


def _flips(out: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Per image: True if mirrored, False if unchanged; raises when it is neither."""
    same = np.all(out == images, axis=(1, 2, 3))
    mirrored = np.all(out == images[..., ::-1], axis=(1, 2, 3))
    bad = np.flatnonzero(~(same | mirrored))
    expect(bad.size == 0, f"image {bad[0] if bad.size else 0} is neither the input nor its mirror image")
    return mirrored & ~same


def _check_crop(grader, yours, images: np.ndarray, seed: int) -> None:
    with grader.case("every crop is a window of the zero-padded image"):
        size, padding = images.shape[-1] - 1, 2
        out = as_array(yours(size, padding=padding, **seeded(yours, seed))(images))
        expect(out.shape == images.shape[:2] + (size, size),
               f"RandomCrop({size}, padding={padding}) gave {out.shape}, expected {images.shape[:2] + (size, size)}")
        padded = np.pad(images, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        windows = sliding_window_view(padded, (size, size), axis=(2, 3))  # (N, C, dy, dx, size, size)
        found = np.all(windows == out[:, :, None, None], axis=(1, 4, 5)).any(axis=(1, 2))
        bad = np.flatnonzero(~found)
        expect(bad.size == 0, f"crop {bad[0] if bad.size else 0} is no window of its image padded by {padding}: "
                              "pad with zeros on every side, then cut one size x size window per image")
        whole = as_array(yours(images.shape[-1], padding=0, **seeded(yours, seed))(images))
        grader.compare(whole, images, "a crop of the full size without padding", rtol=0, atol=0)


def _check_flip(grader, yours, images: np.ndarray, seed: int) -> None:
    with grader.case("each image is mirrored left-right or left as it is, with probability p"):
        expect(_flips(as_array(yours(p=1.0, **seeded(yours, seed))(images)), images).all(), "p=1.0 left images unflipped")
        expect(not _flips(as_array(yours(p=0.0, **seeded(yours, seed))(images)), images).any(), "p=0.0 flipped images")
        many = np.repeat(images[:1], 400, axis=0)
        many[:, 0, 0, 0] = np.arange(400)  # no image is its own mirror
        share = _flips(as_array(yours(p=0.5, **seeded(yours, seed))(many)), many).mean()
        expect(0.4 <= share <= 0.6, f"p=0.5 flipped {share:.0%} of 400 images (expected about half)")


EXTRA_TRANSFORM_CHECKS: dict[str, Callable] = {"RandomCrop": _check_crop, "RandomHorizontalFlip": _check_flip}


def check_transform(grader, yours, reference, name: str) -> None:
    """The ``transform`` contract, built from the example ``example:transform:<name>``."""
    seed = int(grader.rng.integers(2**31))
    made = grader.example("transform", name)
    if made is None:
        grader.skip(f"{name} built from its example", f"no example registered as example:transform:{name}")
    else:
        images = made.inputs[0]
        randomness = seeded(reference if reference is not None else yours, seed)

        def build(cls):
            return cls(*made.args, **made.kwargs, **randomness)

        with grader.case(f"output of a {images.dtype} batch {images.shape}: shape, dtype and kind"):
            out = build(yours)(images)
            expect(isinstance(out, np.ndarray), f"an array in gave {type(out).__name__} out: arrays in, arrays out")
            want = build(reference)(images) if reference is not None else None
            if want is not None:
                expect(out.shape == want.shape and out.dtype == want.dtype,
                       f"output is {out.dtype} {out.shape}, the reference gives {want.dtype} {want.shape}")
            else:
                expect(out.dtype == images.dtype, f"{images.dtype} in gave {out.dtype} out: keep the dtype")
            tensor_out = build(yours)(Tensor(images))
            expect(isinstance(tensor_out, Tensor), f"a Tensor in gave {type(tensor_out).__name__} out: Tensors in, Tensors out")

        if randomness:
            with grader.case(f"the same seed ({seed}) gives the same output"):
                grader.compare(as_array(build(yours)(images)), as_array(build(yours)(images)),
                               "a second transform of the same seed: its output", rtol=0, atol=0)
        elif reference is not None:
            with grader.case("the reference's values"):
                grader.compare(as_array(build(yours)(images)), as_array(build(reference)(images)))
    extra = EXTRA_TRANSFORM_CHECKS.get(name)
    if extra is not None:
        extra(grader, yours, grader.rng.standard_normal((6, 2, 5, 5)).astype(np.float32), seed)


# ----------------------------------------------------------------------------------------
# dataset
# ----------------------------------------------------------------------------------------

LOADED = "tinydigits"  # the only data set a checker loads: embedded, no download
METADATA = ("image_shape", "classes", "max_value")


def check_dataset(grader, yours, reference, name: str) -> None:
    """A ``dataset`` component's contract; only the embedded tinydigits is loaded."""
    check_arguments(grader, yours, reference, name)
    with grader.case("called with a split"):
        parameters = signature_parameters(yours)
        expect(callable(yours), f"dataset:{name} is a {type(yours).__name__}: a data set is called with a split")
        expect(parameters is None or _takes_a_split(parameters),
               f"dataset:{name} takes {name}{inspect.signature(yours)}: its first argument must be the split "
               "(split='train', ...), and every other one needs a default")
    shown = [field for field in METADATA if hasattr(reference, field)]
    if shown:
        with grader.case(f"metadata ({', '.join(shown)})"):
            for field in shown:
                expect(getattr(yours, field, None) == getattr(reference, field),
                       f"{field} is {getattr(yours, field, None)!r}, the reference's is {getattr(reference, field)!r}")
    if name != LOADED:
        grader.skip(f"loading {name}", f"checkers load only the embedded {LOADED}, never a download")
        return
    _check_tinydigits(grader, yours, reference)


def _check_tinydigits(grader, yours, reference) -> None:
    from tt_core.digits import load_digits

    for split in ("train", "test"):
        with grader.case(f"load_arrays({split!r}): uint8 (N, 1, 8, 8) images and int64 labels 0..9"):
            images, labels = yours.load_arrays(split)
            want_images, want_labels = load_digits(split)
            shape = (len(want_images), 1, 8, 8)
            expect(images.shape == shape and images.dtype == np.uint8,
                   f"images are {images.dtype} {images.shape}, expected uint8 {shape}")
            expect(labels.dtype == np.int64 and labels.shape == want_labels.shape,
                   f"labels are {labels.dtype} {labels.shape}, expected int64 {want_labels.shape}")
            expect(labels.min() >= 0 and labels.max() <= 9, f"labels run from {labels.min()} to {labels.max()}, not 0..9")
            grader.compare(images[:, 0], want_images, f"the {split} images", rtol=0, atol=0)
            grader.compare(labels, want_labels, f"the {split} labels", rtol=0, atol=0)

    with grader.case("calling it gives float32 images scaled to [0, 1], flattened on request"):
        images, labels = load_digits("test")
        ds = yours("test", flatten=True)
        expect(len(ds) == len(images), f"len(dataset('test')) is {len(ds)}, expected {len(images)}")
        index = int(grader.rng.integers(len(images)))
        x, y = (as_array(v) for v in ds[index])
        expect(x.shape == (64,) and x.dtype == np.float32, f"a flattened sample is {x.dtype} {x.shape}, expected float32 (64,)")
        grader.compare(x, images[index].reshape(-1).astype(np.float32) / 16, f"sample {index} scaled by 1/16")
        expect(int(y) == labels[index], f"sample {index} has label {int(y)}, expected {labels[index]}")
        image = as_array(yours("test")[index][0])
        expect(image.shape == (1, 8, 8), f"an unflattened sample has shape {image.shape}, expected (1, 8, 8)")

    with grader.case("an unknown split is refused"):
        try:
            yours.load_arrays("validation")
        except Exception:  # noqa: BLE001 - any clear error will do
            return
        raise Mismatch("load_arrays('validation') was accepted: the splits are 'train' and 'test'")


# ----------------------------------------------------------------------------------------
# function:require_data
# ----------------------------------------------------------------------------------------

FOLDERS = ("TT_DATA_DIR", "TT_CACHE_DIR")


@contextmanager
def _data_folders() -> Iterator[Path]:
    """``TT_DATA_DIR`` and ``TT_CACHE_DIR`` pointing at fresh temporary folders (yields the
    data folder); what they were before comes back after, and the folders are removed."""
    saved = {key: os.environ.get(key) for key in FOLDERS}
    with tempfile.TemporaryDirectory() as folder:
        os.environ["TT_DATA_DIR"], os.environ["TT_CACHE_DIR"] = str(Path(folder, "data")), str(Path(folder, "cache"))
        try:
            yield Path(folder, "data")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class _NeedsFiles:
    """A data set that needs the given files (all ``require_data`` asks of one)."""

    def __init__(self, files: list[RemoteFile]) -> None:
        self.files = files

    def data_files(self) -> list[RemoteFile]:
        return list(self.files)


def _raises_naming(call: Callable[[], object], names: list[str]) -> str | None:
    """None when ``call`` raises an error whose message names every one of ``names``; else
    what went wrong."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 (the message is what is checked)
        unnamed = [n for n in names if n not in str(error)]
        return f"the error does not name {', '.join(unnamed)}: {error}" if unnamed else None
    return "it returned without an error"


def check_require_data(grader, yours, reference, name: str) -> None:
    """The check of ``function:require_data``: ``require(*names, download=True, progress=True,
    registry=None)``.

    In temporary ``TT_DATA_DIR`` and cache folders, with a registry of data sets made of a
    few random files (found by name through ``registry``, called with ``download=False``):
    the verified paths of a data set whose files are all there (with the embedded
    tinydigits, which needs none), equal to the reference's; one error naming every missing
    and every corrupt file of a data set; errors for an unknown name and for no name.
    """
    check_arguments(grader, yours, reference, name)
    rng = grader.rng
    with _data_folders() as root:
        payloads = [rng.bytes(int(rng.integers(16, 64))) for _ in range(4)]
        files = [RemoteFile(f"part{i}.bin", "graded", (f"file://{root.parent}/nowhere/part{i}.bin",),
                            hashlib.sha256(data).hexdigest()) for i, data in enumerate(payloads)]
        (root / "graded").mkdir(parents=True)
        for remote, data in zip(files[:2], payloads):
            (root / remote.relative).write_bytes(data)
        (root / files[3].relative).write_bytes(payloads[3][::-1] + b"!")  # a corrupt copy
        registry = ComponentRegistry()
        sets = registry.registrar("graded")
        sets.register("dataset", "complete", _NeedsFiles(files[:2]))
        sets.register("dataset", "broken", _NeedsFiles(files))
        sets.commit()
        options = {"download": False, "progress": False, "registry": registry}
        with grader.case("every file there: the verified paths of each data set (tinydigits needs none)"):
            got = yours("complete", "tinydigits", **options)
            if reference is not None:
                compare_values(grader, got, reference("complete", "tinydigits", **options), "the paths found")
        missing = [files[2].relative, files[3].relative]
        with grader.case(f"one error naming every missing and corrupt file ({', '.join(missing)})"):
            problem = _raises_naming(lambda: yours("broken", **options), missing)
            expect(problem is None, f"require_data('broken') with {missing[0]} missing and {missing[1]} corrupt: "
                                    f"{problem}")
        with grader.case("an unknown data set and no data set at all raise"):
            problem = _raises_naming(lambda: yours("no-such-set", **options), ["no-such-set"])
            expect(problem is None, f"require_data('no-such-set'): {problem}")
            expect(_raises_naming(lambda: yours(**options), []) is None,
                   "require_data() without a name returned: raise an error asking for the data sets to check")


# ----------------------------------------------------------------------------------------
# Examples: how to build and feed tt-data's layers and transforms
# ----------------------------------------------------------------------------------------


def _images(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _conv2d(rng):
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    return Example(args=(3, 4, 3), kwargs={"stride": stride, "padding": padding}, inputs=(_images(rng, 2, 3, 7, 7),))


def _max_pool2d(rng):
    return Example(args=(2,), inputs=(_images(rng, 2, 3, 6, 6),))


def _avg_pool2d(rng):
    return Example(args=(2,), kwargs={"stride": int(rng.integers(1, 3))}, inputs=(_images(rng, 2, 3, 6, 6),))


def _adaptive_avg_pool2d(rng):
    return Example(args=(int(rng.choice([1, 2])),), inputs=(_images(rng, 2, 3, 4, 4),))


def _batch_norm2d(rng):
    return Example(args=(3,), inputs=(_images(rng, 4, 3, 3, 3),))


def _flatten(rng):
    return Example(inputs=(_images(rng, 2, 3, 2, 2),))


def _normalize(rng):
    return Example(args=(rng.uniform(-1, 1, 3).tolist(), rng.uniform(0.5, 2, 3).tolist()),
                   inputs=(_images(rng, 4, 3, 5, 5),))


def _random_crop(rng):
    return Example(args=(4,), kwargs={"padding": 1}, inputs=(_images(rng, 4, 3, 5, 5),))


def _random_horizontal_flip(rng):
    return Example(kwargs={"p": 0.5}, inputs=(_images(rng, 8, 3, 4, 4),))


def _compose(rng):
    parts = [Normalize(rng.uniform(-1, 1, 3).tolist(), rng.uniform(0.5, 2, 3).tolist()), RandomHorizontalFlip(p=1.0)]
    return Example(args=(parts,), inputs=(_images(rng, 4, 3, 5, 5),))


def _conv2d_op(rng):
    stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    shapes = ((2, 3, 6, 6), (4, 3, 3, 3), (4,))
    return Example(kwargs={"stride": (stride, stride), "padding": (padding, padding), "dilation": (1, 1), "groups": 1},
                   inputs=tuple(_images(rng, *shape) for shape in shapes))


POOLING = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0)}


def _pool_op(rng):
    return Example(kwargs=POOLING, inputs=(_images(rng, 2, 3, 6, 6),))


def _max_pool_op(rng):
    return Example(kwargs={**POOLING, "dilation": (1, 1)}, inputs=(_images(rng, 2, 3, 6, 6),))


def _batch_norm_op(rng):
    return Example(kwargs={"training": True, "momentum": 0.1, "eps": 1e-5},
                   inputs=(_images(rng, 4, 3, 3, 3), _images(rng, 3), _images(rng, 3)))


EXAMPLES: dict[str, Callable[[np.random.Generator], Example]] = {
    "op:conv2d": _conv2d_op,
    "op:max_pool2d": _max_pool_op,
    "op:avg_pool2d": _pool_op,
    "op:batch_norm": _batch_norm_op,
    "layer:Conv2d": _conv2d,
    "layer:MaxPool2d": _max_pool2d,
    "layer:AvgPool2d": _avg_pool2d,
    "layer:AdaptiveAvgPool2d": _adaptive_avg_pool2d,
    "layer:BatchNorm2d": _batch_norm2d,
    "layer:Flatten": _flatten,
    "transform:Normalize": _normalize,
    "transform:RandomCrop": _random_crop,
    "transform:RandomHorizontalFlip": _random_horizontal_flip,
    "transform:Compose": _compose,
}
"""``example`` components, by ``kind:Name``."""

CHECKERS: dict[str, Callable[[Any, Any, Any, str], None]] = {
    "loader": check_loader,
    "dataset_class": check_dataset_class,
    "transform": check_transform,
    "dataset": check_dataset,
    "function:require_data": check_require_data,
}
"""The checker of each of tt-data's kinds, and the check of its function ``require_data``
(``function:<name>``, which tt-core's ``function`` checker hands the function to)."""


def register(registry) -> None:
    """Register tt-data's checkers and examples with a plugin's registrar."""
    register_graders(registry, CHECKERS, EXAMPLES)
