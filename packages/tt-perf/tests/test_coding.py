import lzma

import numpy as np
import pytest
import tt_core
from tt_perf.coding import decode_gaps, encode_gaps, load_coded, save_coded, shareable
from tt_perf.compress import load_compressed_model
from tt_perf.pruning import prune
from tt_perf.sharing import share_weights


@pytest.mark.parametrize("positions", [[], [0], [254], [255], [0, 1, 2], [3, 600, 601, 100_000]])
def test_gaps_round_trip_with_escapes(positions):
    gaps = encode_gaps(np.array(positions, dtype=np.int64))
    assert gaps.dtype == np.uint8
    np.testing.assert_array_equal(decode_gaps(gaps), positions)


def test_gap_bytes_count_one_per_weight_plus_one_per_255_zeros(rng):
    positions = np.flatnonzero(rng.random(50_000) < 0.01)
    gaps = np.diff(positions, prepend=-1) - 1
    assert len(encode_gaps(positions)) == len(positions) + int((gaps // 255).sum())


def test_coded_file_round_trips_bit_exact(mlp, tmp_path):
    prune(mlp, 0.9)
    share_weights(mlp, 16)
    state = mlp.state_dict()
    for entropy in (True, False):
        loaded = load_coded(save_coded(mlp, tmp_path / f"m{entropy}.npz", entropy=entropy))
        assert list(loaded) == list(state)
        for name, array in state.items():
            assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
            assert loaded[name].tobytes() == (array + 0).tobytes()  # bit for bit (-0.0 comes back as 0.0)


def test_arrays_with_many_values_are_stored_raw_and_exactly(rng, tmp_path):
    state = {"w": rng.standard_normal((20, 30)).astype(np.float32), "b": rng.standard_normal(30).astype(np.float32),
             "steps": np.array(7, dtype=np.int64)}
    assert not any(shareable(a) for a in state.values())
    loaded = load_coded(save_coded(state, tmp_path / "raw.npz"))
    for name, array in state.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_entropy_coding_approaches_the_entropy_of_skewed_data(rng, tmp_path):
    """Sparse weights with skewed codes: the coded file is close to the order-0 entropy of
    the gaps and codes (a lower bound for any per-symbol code) and well below a byte a symbol."""
    n = 200_000
    weight = np.zeros(n, dtype=np.float32)
    positions = np.flatnonzero(rng.random(n) < 0.08)
    book = np.linspace(-1, 1, 16, dtype=np.float32)
    p = np.exp(-np.abs(np.arange(16) - 7.5))
    codes = rng.choice(16, len(positions), p=p / p.sum())
    weight[positions] = book[codes]
    state = {"w": weight.reshape(400, 500)}

    def entropy_bytes(symbols):
        counts = np.bincount(symbols)
        counts = counts[counts > 0]
        return float(-(counts * np.log2(counts / counts.sum())).sum() / 8)

    bound = entropy_bytes(encode_gaps(positions)) + entropy_bytes(codes)
    coded = save_coded(state, tmp_path / "skewed.npz").stat().st_size
    plain = save_coded(state, tmp_path / "plain.npz", entropy=False).stat().st_size
    assert bound < coded < 1.05 * bound + 1024  # within 5 % of the bound, plus the file's headers
    assert coded < 0.6 * plain  # the plain layout spends a byte on each gap and each code
    assert load_coded(tmp_path / "skewed.npz")["w"].tobytes() == state["w"].tobytes()


def test_a_model_rebuilt_from_the_file_predicts_as_the_shared_one(mlp, rng, tmp_path):
    prune(mlp, 0.8)
    share_weights(mlp, 8)
    x = tt_core.Tensor(rng.standard_normal((5, 64)).astype(np.float32))
    fresh = tt_core.Sequential(tt_core.Linear(64, 32), tt_core.ReLU(), tt_core.Linear(32, 16), tt_core.ReLU(),
                               tt_core.Linear(16, 10))
    rebuilt = load_compressed_model(save_coded(mlp, tmp_path / "m.npz"), fresh)
    np.testing.assert_array_equal(rebuilt(x).data, mlp.eval()(x).data)


def test_other_files_and_corrupt_data_are_refused(mlp, tmp_path):
    tt_core.save(mlp.state_dict(), tmp_path / "plain.npz")
    with pytest.raises(tt_core.CheckpointError, match="not an entropy-coded"):
        load_coded(tmp_path / "plain.npz")
    tree = tt_core.load(save_coded(mlp, tmp_path / "m.npz"))
    tree["data"] = np.frombuffer(lzma.compress(b"garbage", format=lzma.FORMAT_RAW,
                                               filters=[{"id": lzma.FILTER_LZMA2}]), dtype=np.uint8)
    tt_core.save(tree, tmp_path / "bad.npz")
    with pytest.raises(tt_core.CheckpointError, match="corrupt"):
        load_coded(tmp_path / "bad.npz")
