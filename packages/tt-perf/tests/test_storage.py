import numpy as np
import pytest
import tt_core
from tt_perf.storage import FORMATS, decode, encode, encoded_bytes, load_compressed, save_compressed, saved_size


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_every_format_round_trips(fmt, dtype, rng):
    array = (rng.standard_normal((7, 3, 5)) * 50).astype(dtype)
    array[rng.random(array.shape) < 0.6] = 0
    out = decode(encode(array, fmt))
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_auto_picks_the_smallest_and_file_size_follows_sparsity(rng, tmp_path):
    weight = rng.standard_normal((256, 784)).astype(np.float32)
    dense = saved_size({"w": weight}, tmp_path / "dense.npz")
    weight[rng.random(weight.shape) < 0.9] = 0
    assert encode(weight)["format"] == min(FORMATS, key=lambda f: encoded_bytes(weight, f))
    sparse = saved_size({"w": weight}, tmp_path / "sparse.npz", compressed=True)
    nnz = np.count_nonzero(weight)
    # a bit per weight plus 4 bytes per non-zero, and 1.5 KB of headers at most
    assert sparse <= weight.size / 8 + 4 * nnz + 1536
    assert dense / sparse > 7
    np.testing.assert_array_equal(load_compressed(tmp_path / "sparse.npz")["w"], weight)


def test_many_small_arrays_are_packed_into_one_blob_per_dtype(tmp_path):
    state = {f"layer{i}.{part}": np.full(3, i, dtype) for i in range(40)
             for part, dtype in (("scale", np.float32), ("codes", np.int8))}
    separate = saved_size(state, tmp_path / "dense.npz")
    packed = saved_size(state, tmp_path / "packed.npz", compressed=True)
    with np.load(tmp_path / "packed.npz") as archive:
        assert len(archive.files) == 4  # the float32 blob, the int8 blob, the index, the tree
    assert packed < separate / 3
    loaded = load_compressed(tmp_path / "packed.npz")
    assert list(loaded) == list(state)
    for name, value in state.items():
        assert loaded[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded[name], value)


def test_csr_uses_small_indices(rng):
    array = np.zeros((4, 1000), dtype=np.int8)
    array[:, ::10] = 3
    entry = encode(array, "csr")
    assert entry["indices"].dtype == np.uint16 and entry["values"].dtype == np.int8
    assert list(entry["indptr"]) == [0, 100, 200, 300, 400]


def test_model_state_round_trips_through_compressed_file(mlp, tmp_path, rng):
    save_compressed(mlp, tmp_path / "model.npz")
    tt_core.manual_seed(1)
    other = tt_core.Sequential(tt_core.Linear(64, 32), tt_core.ReLU(), tt_core.Linear(32, 16), tt_core.ReLU(),
                               tt_core.Linear(16, 10))
    other.load_state_dict(load_compressed(tmp_path / "model.npz"))
    x = tt_core.Tensor(rng.random((3, 64), dtype=np.float32))
    np.testing.assert_array_equal(other(x).data, mlp(x).data)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown storage format"):
        encode(np.zeros(3), "zip")
    tt_core.save({"w": np.zeros(3)}, tmp_path / "plain.npz")
    with pytest.raises(tt_core.CheckpointError, match="not a compressed"):
        load_compressed(tmp_path / "plain.npz")
