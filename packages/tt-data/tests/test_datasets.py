"""The catalogue: tinydigits, mnist (real files via TT_DATA_DIR), cifar10 (synthetic archives
in both accepted layouts, and the decoded cache tied to them), the IDX parser, the restricted
unpickler, and require() checking every file before a run."""

import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tt_core
from PIL import Image
from tt_core.errors import TinyTorchError
from tt_core.plugins import ComponentRegistry
from tt_data import (
    ChecksumError,
    DataFormatError,
    MissingDataError,
    TensorDataset,
    UnknownDatasetError,
    dataset,
    datasets,
    load_arrays,
    require,
)

SHARED_DATA = os.environ.get("TT_DATA_DIR")
needs_data = pytest.mark.skipif(SHARED_DATA is None, reason="TT_DATA_DIR is unset (point it at the shared data folder)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- tinydigits ------------------------------------------------------------------------------


def test_tinydigits_wraps_the_embedded_digits():
    from tt_core.digits import load_digits

    for split, n in (("train", 1437), ("test", 360)):
        x, y = load_arrays("tinydigits", split)
        assert x.shape == (n, 1, 8, 8) and x.dtype == np.uint8 and y.dtype == np.int64
        ref_x, ref_y = load_digits(split)
        np.testing.assert_array_equal(x[:, 0], ref_x)
        np.testing.assert_array_equal(y, ref_y)
    ds = dataset("tinydigits", "test", flatten=True)
    assert isinstance(ds, TensorDataset)
    images, labels = ds.arrays
    assert images.shape == (360, 64) and images.dtype == np.float32 and labels.dtype == np.int64
    assert images.max() == 1.0 and images.min() == 0.0


def test_catalogue_errors():
    with pytest.raises(TinyTorchError, match="unknown data set 'svhn'.*tinydigits"):
        load_arrays("svhn")
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_arrays("tinydigits", "val")


def test_data_sets_are_registered_components():
    registry = tt_core.get_registry()
    assert {"tinydigits", "mnist", "cifar10"} <= set(registry.names("dataset"))
    entry = registry.get("dataset", "tinydigits")
    assert entry.classes[3] == "3" and entry.image_shape == (1, 8, 8)
    assert len(entry("train")) == 1437
    assert registry.get("loader", "DataLoader").__name__ == "DataLoader"
    assert registry.get("dataset_class", "TensorDataset") is TensorDataset
    assert set(registry.names("transform")) >= {"Normalize", "RandomCrop", "RandomHorizontalFlip", "Compose"}


def _registry(*components, choices=None):
    """A registry filled by hand: ``(dist, name, obj)`` data sets."""
    registry = ComponentRegistry(choices)
    for dist, name, obj in components:
        registrar = registry.registrar(dist)
        registrar.register("dataset", name, obj)
        registrar.commit()
    return registry


def stripes(split="train", size=3):
    """A made-up data set: ``size`` images whose value is their label."""
    labels = np.arange(size) % 2 + (10 if split == "test" else 0)
    return TensorDataset(np.ones((size, 1, 2, 2), np.float32) * labels[:, None, None, None], labels)


def test_dataset_finds_a_data_set_any_plugin_registered():
    registry = _registry(("my-data", "stripes", stripes))
    ds = dataset("stripes", "test", registry=registry, size=4)
    np.testing.assert_array_equal(ds.arrays[1], [10, 11, 10, 11])
    assert datasets.find("stripes", registry) is stripes
    assert len(dataset("tinydigits", "test", registry=registry)) == 360  # the catalogue still answers


def test_dataset_uses_the_loaded_plugins_by_default(monkeypatch):
    monkeypatch.setattr(datasets, "get_registry", lambda: _registry(("my-data", "stripes", stripes)))
    assert len(dataset("stripes")) == 3


def test_dataset_takes_the_chosen_provider_of_a_catalogue_name():
    mine = replace(datasets.CATALOGUE["tinydigits"], read=lambda split, download, progress: (
        np.zeros((2, 1, 8, 8), np.uint8), np.array([7, 7])))
    both = [("tt-data", "tinydigits", datasets.CATALOGUE["tinydigits"]), ("my-data", "tinydigits", mine)]
    assert len(dataset("tinydigits", "test", registry=_registry(*both))) == 360  # built-in unless chosen
    chosen = _registry(*both, choices={("dataset", "tinydigits"): "my-data"})
    np.testing.assert_array_equal(dataset("tinydigits", "test", registry=chosen).arrays[1], [7, 7])
    np.testing.assert_array_equal(load_arrays("tinydigits", registry=chosen)[1], [7, 7])


def test_dataset_errors_name_what_is_known_and_what_fits():
    registry = _registry(("my-data", "stripes", stripes))
    with pytest.raises(UnknownDatasetError, match=r"unknown data set 'stipes'; known data sets: cifar10, mnist, "
                                                  r"stripes, tinydigits"):
        dataset("stipes", registry=registry)
    with pytest.raises(TinyTorchError, match=r"data set 'stripes' cannot be called as \('train', flatten=True\).*"
                                             r"it takes \(split='train', size=3\)"):
        dataset("stripes", registry=registry, flatten=True)
    with pytest.raises(TinyTorchError, match=r"data set 'stripes' \(function\) has no load_arrays"):
        load_arrays("stripes", registry=registry)


# -- MNIST -----------------------------------------------------------------------------------


@needs_data
def test_mnist_from_tt_data_dir():
    x, y = load_arrays("mnist", "train")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert y[:5].tolist() == [5, 0, 4, 1, 9]
    test = dataset("mnist", "test")
    images, labels = test.arrays
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 == images.min() and images.max() == 1.0 and len(labels) == 10000


def test_parse_idx():
    values = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 3, 4) + values.tobytes()
    np.testing.assert_array_equal(datasets.parse_idx(data), values)
    ints = np.array([1, -2, 300], dtype=">i4")
    parsed = datasets.parse_idx(b"\x00\x00\x0c\x01" + struct.pack(">I", 3) + ints.tobytes())
    assert parsed.tolist() == [1, -2, 300] and parsed.dtype == np.int32
    with pytest.raises(DataFormatError, match="not an IDX file"):
        datasets.parse_idx(b"PK\x03\x04")
    with pytest.raises(DataFormatError, match="expected 24"):
        datasets.parse_idx(data[:-1])


# -- CIFAR-10: synthetic archives in both layouts --------------------------------------------


class Py2Pickler(pickle._Pickler):
    """Writes strings and bytes the way Python 2's cPickle wrote its ``str`` (BINSTRING), as
    in the canonical CIFAR-10 batches, so the test reads what the real files contain."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    # NumPy 1 (which wrote the real batches) kept _reconstruct in numpy.core
    return out.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


def add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_python_archive(path, per_batch=3, seed=0):
    """A miniature cifar-10-python.tar.gz; returns the expected (images, labels) per split."""
    rng = np.random.default_rng(seed)
    expected = {"train": ([], []), "test": ([], [])}
    with tarfile.open(path, "w:gz") as tar:
        for stem in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, 10, per_batch).tolist()
            batch = {"batch_label": f"{stem} of 6", "labels": labels, "data": images.reshape(per_batch, 3072),
                     "filenames": [f"img_{i}.png" for i in range(per_batch)]}
            add_member(tar, f"cifar-10-batches-py/{stem}", py2_pickle(batch))
            split = "test" if stem == "test_batch" else "train"
            expected[split][0].append(images)
            expected[split][1].extend(labels)
        add_member(tar, "cifar-10-batches-py/batches.meta", py2_pickle({"label_names": list(datasets.CIFAR10_CLASSES)}))
    return {s: (np.concatenate(x), np.array(y)) for s, (x, y) in expected.items()}


def jpeg_bytes(pixels):
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_jpeg_archive(path, per_class=2, classes=("cat", "ship", "airplane"), prefix=""):
    """A miniature JPEG archive, members in scrambled order; returns the expected arrays
    (what Pillow decodes), ordered by class index, then file name."""
    rng = np.random.default_rng(1)
    members, expected = [], {"train": [], "test": []}
    for split in ("train", "test"):
        for name in classes:
            for k in range(per_class):
                data = jpeg_bytes(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
                members.append((f"{prefix}{split}/{name}/{k:04d}.jpg", data))
                decoded = np.asarray(Image.open(io.BytesIO(data))).transpose(2, 0, 1)
                label = datasets.CIFAR10_CLASSES.index(name) if name in datasets.CIFAR10_CLASSES else -1
                expected[split].append((label, f"{k:04d}", decoded))
    with tarfile.open(path, "w:gz") as tar:
        for d in ("train", "test"):
            info = tarfile.TarInfo(prefix + d)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for i in rng.permutation(len(members)):
            add_member(tar, *members[i])
    result = {}
    for split, items in expected.items():
        items.sort(key=lambda item: item[:2])
        result[split] = (np.stack([x for _, _, x in items]), np.array([c for c, _, _ in items]))
    return result


def use_archive(monkeypatch, tmp_path, kind, build):
    """Put a synthetic archive of ``kind`` into a fresh TT_DATA_DIR and pin its sha256."""
    remote, decode = datasets.CIFAR10_SOURCES[kind]
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    expected = build(folder / remote.name)
    sha = hashlib.sha256((folder / remote.name).read_bytes()).hexdigest()
    monkeypatch.setitem(datasets.CIFAR10_SOURCES, kind, (replace(remote, sha256=sha), decode))
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))
    return expected


def test_cifar10_from_the_canonical_python_archive(tmp_path, monkeypatch, cache):
    expected = use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    for split, n in (("train", 15), ("test", 3)):
        x, y = load_arrays("cifar10", split, progress=False)
        assert x.shape == (n, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x, expected[split][0])
        np.testing.assert_array_equal(y, expected[split][1])
    assert (cache / "cifar10" / "decoded-python" / "train-images.npy").is_file()


def test_cifar10_jpeg_archive_is_decoded_once_and_cached(tmp_path, monkeypatch, cache):
    expected = use_archive(monkeypatch, tmp_path, "jpeg", lambda p: make_jpeg_archive(p, prefix="cifar10/"))
    x, y = load_arrays("cifar10", "train", progress=True)
    np.testing.assert_array_equal(x, expected["train"][0])
    np.testing.assert_array_equal(y, expected["train"][1])
    assert y.tolist() == [0, 0, 3, 3, 8, 8]  # airplane, cat, ship: by class, then file name

    def no_decoding(*args):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setitem(datasets.CIFAR10_SOURCES, "jpeg", (datasets.CIFAR10_SOURCES["jpeg"][0], no_decoding))
    test = dataset("cifar10", "test", progress=False)
    images, labels = test.arrays
    np.testing.assert_allclose(images, expected["test"][0] / np.float32(255), rtol=1e-6)
    np.testing.assert_array_equal(labels, expected["test"][1])
    assert images.dtype == np.float32 and (cache / "cifar10" / "decoded-jpeg" / "test-labels.npy").is_file()


def test_cifar10_jpeg_archive_with_an_unknown_class_is_refused(tmp_path, monkeypatch, cache):
    use_archive(monkeypatch, tmp_path, "jpeg", lambda p: make_jpeg_archive(p, classes=("cat", "unicorn")))
    with pytest.raises(DataFormatError, match="unknown class folder 'unicorn'"):
        load_arrays("cifar10", "train", progress=False)


def test_cifar10_archive_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch, cache):
    use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    remote, decode = datasets.CIFAR10_SOURCES["python"]
    monkeypatch.setitem(datasets.CIFAR10_SOURCES, "python", (replace(remote, sha256="0" * 64), decode))
    with pytest.raises(ChecksumError, match="expected 0000"):
        load_arrays("cifar10", "test", progress=False)


@needs_data
def test_the_shared_jpeg_archive_is_chosen_and_matches_its_checksum():
    assert datasets._cifar10_source() == "jpeg"
    remote = datasets.CIFAR10_JPEG
    path = Path(SHARED_DATA) / remote.folder / remote.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == remote.sha256


# -- the restricted unpickler ----------------------------------------------------------------


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": RunsACommand(marker), "labels": []}, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|os)\.system"):
        datasets.load_batch(payload)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("numpy", "load"), ("numpy.lib.npyio", "load"),
                                          ("subprocess", "Popen")])
def test_only_the_numpy_array_globals_are_allowed(module, name):
    payload = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        datasets.load_batch(payload)


def test_batch_must_hold_data_and_labels():
    with pytest.raises(DataFormatError, match="'data' and 'labels'"):
        datasets.load_batch(py2_pickle({"data": np.zeros((1, 3072), np.uint8)}))



# -- CIFAR-10: the decoded cache, tied to its archive and validated on load --------------------


def decoded(cache, kind="python"):
    return cache / "cifar10" / f"decoded-{kind}"


def count_decoding(monkeypatch, kind="python"):
    """Count how often the archive of ``kind`` is decoded."""
    remote, decode = datasets.CIFAR10_SOURCES[kind]
    calls = []
    monkeypatch.setitem(datasets.CIFAR10_SOURCES, kind,
                        (remote, lambda path, progress: calls.append(path) or decode(path, progress)))
    return calls


def test_the_decoded_cache_records_its_archive_and_every_array(tmp_path, monkeypatch, cache):
    use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    load_arrays("cifar10", "test", progress=False)
    manifest = json.loads((decoded(cache) / "manifest.json").read_text())
    assert manifest["source_sha256"] == datasets.CIFAR10_SOURCES["python"][0].sha256
    assert manifest["source"] == "cifar10/cifar-10-python.tar.gz"
    images = manifest["arrays"]["train-images.npy"]
    assert images["shape"] == [15, 3, 32, 32] and images["dtype"] == "uint8"
    assert images["bytes"] == (decoded(cache) / "train-images.npy").stat().st_size
    assert manifest["arrays"]["test-labels.npy"]["shape"] == [3] and manifest["arrays"]["test-labels.npy"]["dtype"] == "int64"


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwrite_with_noise(path):  # same size, header gone
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def reshape_in_place(path):  # same size, another shape: only the manifest's shape tells
    np.save(path, np.load(path).reshape(30, 3, 16, 32))


def drop_manifest(path):  # a cache from before manifests
    (path.parent / "manifest.json").unlink()


@pytest.mark.parametrize("damage", [truncate, overwrite_with_noise, reshape_in_place, drop_manifest])
def test_a_damaged_decoded_cache_is_rebuilt_not_a_numpy_error(tmp_path, monkeypatch, cache, damage):
    expected = use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    calls = count_decoding(monkeypatch)
    load_arrays("cifar10", "test", progress=False)
    damage(decoded(cache) / "train-images.npy")
    for _ in range(2):  # rebuilt once, then read from the repaired cache
        x, y = load_arrays("cifar10", "train", progress=False)
        np.testing.assert_array_equal(x, expected["train"][0])
        np.testing.assert_array_equal(y, expected["train"][1])
    assert len(calls) == 2
    assert np.load(decoded(cache) / "train-images.npy").shape == (15, 3, 32, 32)


def test_a_decoded_cache_of_another_archive_is_stale_and_rebuilt(tmp_path, monkeypatch, cache):
    use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    load_arrays("cifar10", "train", progress=False)
    remote, decode = datasets.CIFAR10_SOURCES["python"]
    path = tmp_path / "data" / "cifar10" / remote.name
    replacement = make_python_archive(path, per_batch=2, seed=7)  # a different archive takes its place
    monkeypatch.setitem(datasets.CIFAR10_SOURCES, "python",
                        (replace(remote, sha256=hashlib.sha256(path.read_bytes()).hexdigest()), decode))
    x, y = load_arrays("cifar10", "train", progress=False)
    np.testing.assert_array_equal(x, replacement["train"][0])
    np.testing.assert_array_equal(y, replacement["train"][1])


def test_a_current_decoded_cache_needs_no_archive(tmp_path, monkeypatch, cache):
    expected = use_archive(monkeypatch, tmp_path, "jpeg", make_jpeg_archive)
    assert [r.name for r in datasets.CATALOGUE["cifar10"].data_files()] == ["cifar10-jpeg.tar.gz"]
    load_arrays("cifar10", "test", progress=False)
    (tmp_path / "data" / "cifar10" / "cifar10-jpeg.tar.gz").unlink()
    assert require("cifar10", download=False) == {"cifar10": ()}
    np.testing.assert_array_equal(load_arrays("cifar10", "train", download=False)[1], expected["train"][1])


# -- require: every file checked before a run --------------------------------------------------


def test_require_of_the_embedded_digits_needs_no_file():
    assert require("tinydigits") == {"tinydigits": ()}
    assert require("tinydigits", "tinydigits") == {"tinydigits": ()}


def test_require_is_a_registered_function():
    assert tt_core.get_registry().get("function", "require_data") is require


def test_require_errors_for_bad_names():
    with pytest.raises(UnknownDatasetError, match="unknown data set 'svhn'"):
        require("tinydigits", "svhn")
    with pytest.raises(TinyTorchError, match="names of the data sets"):
        require()


def test_require_skips_a_registered_data_set_that_lists_no_files():
    assert require("stripes", registry=_registry(("my-data", "stripes", stripes))) == {"stripes": ()}


def idx_gz(values: np.ndarray) -> tuple[bytes, str]:
    """An IDX file of uint8 ``values``, gzipped, and the sha256 of the IDX bytes."""
    raw = b"\x00\x00\x08" + bytes([values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape) + values.tobytes()
    return gzip.compress(raw), hashlib.sha256(raw).hexdigest()


@pytest.fixture
def small_mnist(tmp_path, monkeypatch, cache):
    """Made-up MNIST files (4 train / 2 test images) in a fresh TT_DATA_DIR, pinned by their
    sha256; no mirrors, so nothing is ever downloaded."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    pinned = {}
    for (split, part), (name, _) in datasets.MNIST_FILES.items():
        n = 4 if split == "train" else 2
        values = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if part == "images" else np.arange(n, dtype=np.uint8)
        data, sha = idx_gz(values)
        (folder / name).write_bytes(data)
        pinned[(split, part)] = (name, sha)
    monkeypatch.setattr(datasets, "MNIST_FILES", pinned)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))
    return folder


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_require_names_every_missing_and_corrupt_file_in_one_error(small_mnist, tmp_path, monkeypatch):
    remote, decode = datasets.CIFAR10_SOURCES["python"]
    monkeypatch.setitem(datasets.CIFAR10_SOURCES, "python", (replace(remote, urls=()), decode))
    flip_a_byte(small_mnist / "train-images-idx3-ubyte.gz")
    (small_mnist / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MissingDataError) as info:
        require("tinydigits", "mnist", "cifar10")
    error = info.value
    assert set(error.problems) == {"mnist/train-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz",
                                   "cifar10/cifar-10-python.tar.gz"}
    message = str(error)
    assert message.splitlines()[0] == "data files needed by mnist, cifar10 are missing or corrupt (3 of 5):"
    assert f"{small_mnist / 'train-images-idx3-ubyte.gz'}: " in message  # the corrupt one, by its path
    assert datasets.MNIST_FILES[("train", "images")][1] in message  # what was expected
    assert "mnist/t10k-labels-idx1-ubyte.gz is missing" in message
    assert "cifar10/cifar-10-python.tar.gz is missing" in message and "no download address" in message
    assert message.count("fix:") == 3


def test_require_returns_the_verified_files(small_mnist):
    found = require("mnist", download=False)
    assert sorted(p.name for p in found["mnist"]) == sorted(name for name, _ in datasets.MNIST_FILES.values())
    assert all(p.parent == small_mnist for p in found["mnist"])
    assert load_arrays("mnist", "test", download=False)[1].tolist() == [0, 1]


@needs_data
def test_a_real_mnist_file_with_a_flipped_byte_is_a_checksum_error_naming_it(tmp_path, monkeypatch, cache):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(SHARED_DATA) / "mnist" / name, folder / name)
    flip_a_byte(folder / "t10k-images-idx3-ubyte.gz")
    monkeypatch.setenv("TT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz: .*(cannot be decompressed|expected)"):
        load_arrays("mnist", "test", download=False)
    with pytest.raises(MissingDataError) as info:
        require("mnist", download=False)
    assert sorted(info.value.problems) == ["mnist/t10k-images-idx3-ubyte.gz", "mnist/train-images-idx3-ubyte.gz",
                                           "mnist/train-labels-idx1-ubyte.gz"]


def test_a_pickled_array_in_the_decoded_cache_is_never_unpickled(tmp_path, monkeypatch, cache):
    expected = use_archive(monkeypatch, tmp_path, "python", make_python_archive)
    load_arrays("cifar10", "test", progress=False)
    marker = tmp_path / "pwned"
    planted = decoded(cache) / "test-labels.npy"
    np.save(planted, np.array([RunsACommand(marker)], dtype=object), allow_pickle=True)
    manifest = json.loads((decoded(cache) / "manifest.json").read_text())
    manifest["arrays"]["test-labels.npy"]["bytes"] = planted.stat().st_size  # only loading can tell now
    (decoded(cache) / "manifest.json").write_text(json.dumps(manifest))
    np.testing.assert_array_equal(load_arrays("cifar10", "test", progress=False)[1], expected["test"][1])
    assert not marker.exists()
