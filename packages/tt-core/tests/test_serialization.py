"""save/load: round trips, atomic writes, and refusing pickled, corrupt and foreign files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


KILLED_SAVE = """
import os, signal, sys
import tt_core
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # die between writing and renaming
tt_core.save({"w": [1, 2, 3]}, sys.argv[1])
"""


@pytest.mark.skipif(os.name != "posix", reason="kills a process with SIGKILL")
def test_the_next_save_removes_what_a_killed_save_left(tmp_path):
    target = tmp_path / "ckpt.npz"
    run = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], capture_output=True, check=False)
    assert run.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()  # the temp file of the killed save, and no checkpoint
    assert serialization.TEMP_NAME.fullmatch(left.name) and left.name.startswith(".ckpt.npz.")
    recent = tmp_path / ".other.npz.4194305.0123abcd.tmp"  # no such pid, but just written
    mine = tmp_path / f".mine.npz.{os.getpid()}.0123abcd.tmp"  # old, but its process is alive
    unrelated = [tmp_path / ".notes.tmp", tmp_path / ".ckpt.npz.12.xyz.tmp", tmp_path / "ckpt.npz.1.0123abcd.tmp"]
    for path in (recent, mine, *unrelated):
        path.write_bytes(b"keep")
    old = time.time() - 2 * serialization.STALE_TEMP_SECONDS
    for path in (left, mine, *unrelated):
        os.utime(path, (old, old))

    tt.save({"w": [4]}, tmp_path / "again.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (recent, mine, *unrelated, tmp_path / "again.npz"))
    assert tt.load(tmp_path / "again.npz") == {"w": [4]}


def test_stale_temp_files_are_only_those_of_gone_processes(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".a.npz.{pid}.deadbeef.tmp"
    stale.write_bytes(b"")
    assert serialization.remove_stale_temp_files(tmp_path) == []  # too young
    old = time.time() - 2 * serialization.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    assert serialization.remove_stale_temp_files(tmp_path) == [stale]
    assert serialization.remove_stale_temp_files(tmp_path / "missing") == []


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


def write_tree(path, text: str):
    np.savez(path, __tree__=np.frombuffer(text.encode(), dtype=np.uint8))
    return path


@pytest.mark.parametrize("depth", [serialization.MAX_DEPTH + 5, 600, 100_000])
def test_a_deeply_nested_tree_is_refused_not_a_recursion_error(tmp_path, depth):
    root = '{"$list": [' * depth + "1" + "]}" * depth
    path = write_tree(tmp_path / "deep.npz", f'{{"format": "{serialization.FORMAT}", "root": {root}}}')
    with pytest.raises(CheckpointError, match="corrupt: its tree nests"):
        tt.load(path)


def test_the_deepest_tree_that_saves_also_loads(tmp_path):
    tree = {"x": 1}
    for _ in range(serialization.MAX_DEPTH - 1):
        tree = {"x": tree}
    assert tt.load(tt.save(tree, tmp_path / "deep.npz")) == tree
    too_deep = [tree]
    with pytest.raises(CheckpointError, match=f"nests more than {serialization.MAX_DEPTH}"):
        tt.save(too_deep, tmp_path / "deeper.npz")
    assert not (tmp_path / "deeper.npz").exists()


def test_a_tensor_entry_must_hold_numbers(tmp_path):
    path = tmp_path / "text.npz"
    tree = f'{{"format": "{serialization.FORMAT}", "root": {{"$tensor": 0}}}}'
    np.savez(path, arr_0=np.array(["a"]), __tree__=np.frombuffer(tree.encode(), dtype=np.uint8))
    with pytest.raises(CheckpointError, match="corrupt: a tensor of dtype <U1"):
        tt.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope.npz"):
        tt.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        tt.load(tmp_path)  # a directory is not a checkpoint either
