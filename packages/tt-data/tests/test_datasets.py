"""The catalogue: tinydigits, mnist (real files via TT_DATA_DIR), cifar10 (synthetic archives
in both accepted layouts), the IDX parser and the restricted unpickler."""

import hashlib
import io
import os
import pickle
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
    ChecksumError, DataFormatError, TensorDataset, UnknownDatasetError, dataset, datasets, load_arrays,
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
