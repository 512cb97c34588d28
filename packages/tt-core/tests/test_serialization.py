"""save/load: round trips, atomic writes, and refusing pickled, corrupt and foreign files."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

import tt_core as tt
from tt_core import CheckpointError, Linear, Sequential, Tensor, serialization


def test_round_trip_of_a_nested_tree(tmp_path, rng):
    tree = {
        "model": {"weight": Tensor(rng.standard_normal((3, 2))), "scalar": Tensor(2.5)},
        "arrays": [
            np.arange(5, dtype=np.int64),
            np.array([[True, False]]),
            np.array([1.5], dtype=np.float64),
            np.array(7, dtype=np.uint8),
            np.zeros((0, 3), dtype=np.float32),
            np.array(["a", "bc"]),
        ],
        "numbers": {"int": 3, "float": 0.25, "nan": float("nan"), "numpy": np.float32(1.5), "bool": True},
        "text": "héllo",
        "nothing": None,
        "list": [1, [2, "three"], (4, 5)],
        "empty": {},
    }
    path = tt.save(tree, tmp_path / "ckpt.npz")
    assert path == tmp_path / "ckpt.npz"
    back = tt.load(path)

    assert set(back) == set(tree)
    weight = back["model"]["weight"]
    assert isinstance(weight, Tensor) and weight.dtype == np.float32
    np.testing.assert_array_equal(weight.data, tree["model"]["weight"].data)
    assert back["model"]["scalar"].shape == () and back["model"]["scalar"].item() == 2.5
    for got, want in zip(back["arrays"], tree["arrays"]):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    numbers = back["numbers"]
    assert numbers["int"] == 3 and isinstance(numbers["int"], int)
    assert numbers["float"] == 0.25 and np.isnan(numbers["nan"]) and numbers["numpy"] == 1.5
    assert numbers["bool"] is True
    assert back["text"] == "héllo" and back["nothing"] is None
    assert back["list"] == [1, [2, "three"], [4, 5]]  # tuples come back as lists
    assert back["empty"] == {}


def test_model_checkpoint_round_trip(tmp_path, rng):
    model = Sequential(Linear(3, 4), Linear(4, 2))
    tt.save(model.state_dict(), tmp_path / "model.npz")
    clone = Sequential(Linear(3, 4), Linear(4, 2))
    clone.load_state_dict(tt.load(tmp_path / "model.npz"))
    x = Tensor(rng.standard_normal((5, 3)))
    np.testing.assert_array_equal(clone(x).data, model(x).data)


def test_save_makes_parent_folders_and_any_suffix(tmp_path):
    path = tt.save({"a": 1}, tmp_path / "deep" / "er" / "state.ckpt")
    assert path.is_file() and tt.load(path) == {"a": 1}


def test_unsupported_values_are_refused_before_writing(tmp_path):
    target = tmp_path / "x.npz"
    with pytest.raises(CheckpointError, match=r"obj\.a: objects of type object"):
        tt.save({"a": object()}, target)
    with pytest.raises(CheckpointError, match="keys must be strings"):
        tt.save({1: 2}, target)
    with pytest.raises(CheckpointError, match=r"obj\.b\[1\].*pickle"):
        tt.save({"b": [1, np.array([{}, None], dtype=object)]}, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


# -- atomic writes ----------------------------------------------------------------------


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for i in range(3):
        tt.save({"step": i}, tmp_path / "ckpt.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]
    assert tt.load(tmp_path / "ckpt.npz") == {"step": 2}


def test_a_failure_mid_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tt.save({"version": "old"}, path)

    def broken_savez(file, **arrays):
        file.write(b"PK half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        tt.save({"version": "new"}, path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]
    assert tt.load(path) == {"version": "old"}


def test_saved_file_has_ordinary_permissions(tmp_path):
    path = tt.save({"a": 1}, tmp_path / "ckpt.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


# -- refusing bad files -----------------------------------------------------------------


def test_pickled_npy_and_npz_are_refused(tmp_path):
    objects = np.array([{"evil": 1}, None], dtype=object)
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "obj.npz", payload=objects)
    for name in ("obj.npy", "obj.npz"):
        with pytest.raises(CheckpointError, match="pickle") as info:
            tt.load(tmp_path / name)
        assert name in str(info.value)


def test_a_tinytorch_checkpoint_with_a_pickled_member_is_refused(tmp_path):
    good = tt.save({"w": np.ones(2)}, tmp_path / "good.npz")
    path = tmp_path / "ckpt.npz"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        target.writestr("__tree__.npy", source.read("__tree__.npy"))
        with target.open("arr_0.npy", "w") as f:  # the array replaced by a pickled object array
            np.lib.format.write_array(f, np.array([None], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="pickle"):
        tt.load(path)


def test_a_plain_pickle_file_is_refused(tmp_path):
    import pickle

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1, 2]}))
    with pytest.raises(CheckpointError, match="pickle"):
        tt.load(path)


def test_random_bytes_are_refused_as_corrupt(tmp_path, rng):
    path = tmp_path / "noise.npz"
    path.write_bytes(rng.integers(1, 256, size=1000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="not a .npz") as info:
        tt.load(path)
    assert "pickle" not in str(info.value)


def test_a_truncated_checkpoint_is_refused(tmp_path):
    path = tt.save({"w": np.ones((50, 50))}, tmp_path / "ckpt.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="corrupt") as info:
            tt.load(path)
        assert "ckpt.npz" in str(info.value)


def test_a_foreign_npz_is_refused(tmp_path):
    np.savez(tmp_path / "foreign.npz", weights=np.ones(3))
    with pytest.raises(CheckpointError, match="not a TinyTorch checkpoint.*__tree__"):
        tt.load(tmp_path / "foreign.npz")


def test_a_plain_npy_array_is_refused(tmp_path):
    np.save(tmp_path / "array.npy", np.ones(3))
    with pytest.raises(CheckpointError, match=r"\.npy array, not a TinyTorch checkpoint"):
        tt.load(tmp_path / "array.npy")


def test_a_bad_tree_is_refused(tmp_path):
    tree = np.frombuffer(b'{"format": "someone-else", "root": 1}', dtype=np.uint8)
    np.savez(tmp_path / "other.npz", __tree__=tree)
    with pytest.raises(CheckpointError, match="format 'someone-else'"):
        tt.load(tmp_path / "other.npz")
    np.savez(tmp_path / "junk.npz", __tree__=np.frombuffer(b"\xff\xfe not json", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="corrupt"):
        tt.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "list.npz", __tree__=np.frombuffer(b"[1, 2]", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="format"):
        tt.load(tmp_path / "list.npz")
    tree = f'{{"format": "{serialization.FORMAT}", "root": {{"$tensor": 5}}}}'.encode()
    np.savez(tmp_path / "dangling.npz", __tree__=np.frombuffer(tree, dtype=np.uint8))
    with pytest.raises(CheckpointError, match="corrupt"):
        tt.load(tmp_path / "dangling.npz")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope.npz"):
        tt.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        tt.load(tmp_path)  # a directory is not a checkpoint either
