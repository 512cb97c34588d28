"""Dataset, TensorDataset, collate and DataLoader (with a property test of an epoch's coverage)."""

import numpy as np
import pytest
import tt_core
from hypothesis import given, settings
from hypothesis import strategies as st
from tt_core import Tensor
from tt_core.errors import ShapeError, TinyTorchError
from tt_data import DataLoader, Dataset, LoaderError, TensorDataset, collate


def make_data(n=10):
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    y = np.arange(n, dtype=np.int64) % 3
    return x, y


class ListDataset(Dataset):
    """A generic data set: samples one at a time, no get_batch of its own."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class CountingTensorDataset(TensorDataset):
    def __init__(self, *arrays):
        super().__init__(*arrays)
        self.batches = 0
        self.samples = 0

    def get_batch(self, indices):
        self.batches += 1
        return super().get_batch(indices)

    def __getitem__(self, index):
        self.samples += 1
        return super().__getitem__(index)


def order_of(loader):
    """The sample order of one epoch (the data's first value identifies the sample)."""
    return np.concatenate([x.data[:, 0, 0] / 6 for x, _ in loader]).astype(int)


# -- TensorDataset and collate -------------------------------------------------------------


def test_tensor_dataset_indexing_and_length():
    x, y = make_data()
    ds = TensorDataset(Tensor(x), y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == y[3]
    xb, yb = ds.get_batch(np.array([4, 1]))
    np.testing.assert_array_equal(xb, x[[4, 1]])
    np.testing.assert_array_equal(yb, y[[4, 1]])
    assert "float32[10, 2, 3]" in repr(ds)


def test_tensor_dataset_rejects_bad_input():
    with pytest.raises(ShapeError, match="same length"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(TinyTorchError, match="at least one array"):
        TensorDataset()


def test_collate_stacks_fields_and_single_samples():
    xb, yb = collate([(np.ones(2), 1), (np.zeros(2), 2)])
    np.testing.assert_array_equal(xb, [[1, 1], [0, 0]])
    np.testing.assert_array_equal(yb, [1, 2])
    (only,) = collate([np.ones(3), np.ones(3)])
    assert only.shape == (2, 3)
    with pytest.raises(TinyTorchError, match="same 2 fields"):
        collate([(1, 2), (1,)])
    with pytest.raises(TinyTorchError, match="empty"):
        collate([])


def test_base_dataset_must_be_implemented():
    with pytest.raises(NotImplementedError):
        len(Dataset())


# -- DataLoader ----------------------------------------------------------------------------


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batches_in_order_with_and_without_drop_last(drop_last, sizes):
    x, y = make_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert [len(xb) for xb, _ in batches] == sizes == [len(b[0]) for b in batches]
    assert len(loader) == len(sizes)
    xb, yb = batches[0]
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.dtype == np.float32 and yb.dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[0].data for b in batches]), x[: sum(sizes)])


def test_shuffle_is_a_permutation_that_changes_every_epoch():
    loader = DataLoader(TensorDataset(*make_data(50)), batch_size=8, shuffle=True, seed=3)
    first, second = order_of(loader), order_of(loader)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert not np.array_equal(first, second)
    assert loader.epoch == 2


def test_shuffle_reproducible_from_seed_generator_or_manual_seed():
    data = TensorDataset(*make_data(30))
    a = order_of(DataLoader(data, 4, shuffle=True, seed=7))
    b = order_of(DataLoader(data, 4, shuffle=True, generator=np.random.default_rng(7)))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, order_of(DataLoader(data, 4, shuffle=True, seed=8)))
    tt_core.manual_seed(1)
    c = order_of(DataLoader(data, 4, shuffle=True))
    tt_core.manual_seed(1)
    np.testing.assert_array_equal(c, order_of(DataLoader(data, 4, shuffle=True)))


def test_array_backed_batches_need_one_fancy_index_and_no_per_sample_calls():
    ds = CountingTensorDataset(*make_data(20))
    list(DataLoader(ds, batch_size=6, shuffle=True, seed=0))
    assert ds.batches == 4 and ds.samples == 0


@pytest.mark.parametrize("wrap", [lambda x, y: ListDataset(x, y), lambda x, y: list(zip(x, y.tolist()))])
def test_generic_datasets_fall_back_to_per_sample_collation(wrap):
    x, y = make_data(11)
    reference = list(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=5))
    generic = list(DataLoader(wrap(x, y), batch_size=4, shuffle=True, seed=5))
    for (xa, ya), (xb, yb) in zip(reference, generic):
        np.testing.assert_array_equal(xa.data, xb.data)
        np.testing.assert_array_equal(ya.data, yb.data)


def test_transform_applies_to_the_inputs_only():
    x, y = make_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=5, transform=lambda batch: batch * 2)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.data, x[:5] * 2)
    np.testing.assert_array_equal(yb.data, y[:5])


def test_state_dict_resumes_next_epoch_exactly(tmp_path):
    data = TensorDataset(*make_data(40))
    loader = DataLoader(data, batch_size=8, shuffle=True, seed=11)
    order_of(loader)
    tt_core.save(loader.state_dict(), tmp_path / "loader.npz")  # JSON-safe, big ints included
    expected = order_of(loader)
    resumed = DataLoader(data, batch_size=8, shuffle=True, seed=999)
    resumed.load_state_dict(tt_core.load(tmp_path / "loader.npz"))
    np.testing.assert_array_equal(order_of(resumed), expected)
    assert resumed.epoch == 2


def test_state_dict_resumes_in_the_middle_of_an_epoch():
    data = TensorDataset(*make_data(40))
    loader = DataLoader(data, batch_size=8, shuffle=True, seed=2)
    batches = iter(loader)
    seen = [next(batches)[0].data for _ in range(2)]
    state = loader.state_dict()
    rest = [xb.data for xb, _ in batches]
    resumed = DataLoader(data, batch_size=8, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    again = [xb.data for xb, _ in resumed]
    assert len(seen) + len(rest) == 5 and len(again) == 3
    for a, b in zip(rest, again):
        np.testing.assert_array_equal(a, b)
    assert state["position"] == 2


def test_bad_arguments_raise_clear_errors():
    data = TensorDataset(*make_data())
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(data, batch_size=0)
    with pytest.raises(ValueError, match="either seed or generator"):
        DataLoader(data, seed=1, generator=np.random.default_rng(1))
    with pytest.raises(TinyTorchError, match="not a DataLoader state dict"):
        DataLoader(data).load_state_dict({"epoch": 1})



@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": True}, r"got True: a bool is not a batch size"), ({"batch_size": False}, "got False"),
    ({"batch_size": 2.0}, "positive integer, got 2.0"), ({"batch_size": -3}, "got -3"),
    ({"batch_size": 2, "shuffle": "yes"}, "shuffle must be True or False, got 'yes'"),
    ({"batch_size": 2, "shuffle": 1}, "shuffle must be True or False, got 1"),
    ({"batch_size": 2, "drop_last": None}, "drop_last must be True or False, got None"),
])
def test_arguments_of_the_wrong_type_are_clear_errors(kwargs, message):
    data = TensorDataset(*make_data())
    with pytest.raises(LoaderError, match=message):
        DataLoader(data, **kwargs)


def test_a_bool_as_the_positional_batch_size_is_an_error_not_batches_of_one():
    with pytest.raises(TinyTorchError, match="a bool is not a batch size"):
        DataLoader(TensorDataset(*make_data()), True)
    assert DataLoader(TensorDataset(*make_data()), np.int64(4), np.bool_(True)).batch_size == 4


# -- property: an epoch covers every sample exactly once --------------------------------------


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 70), batch_size=st.integers(1, 80), shuffle=st.booleans(), drop_last=st.booleans(),
       seed=st.integers(0, 2**63 - 1), generic=st.booleans())
def test_an_epoch_covers_every_sample_exactly_once(n, batch_size, shuffle, drop_last, seed, generic):
    ids = np.arange(n, dtype=np.int64)
    features = np.stack([ids, -ids], axis=1).astype(np.float32)
    data = ListDataset(features, ids) if generic else TensorDataset(features, ids)
    loader = DataLoader(data, batch_size, shuffle, seed=seed, drop_last=drop_last)
    complete = n // batch_size
    expected_batches = complete if drop_last or n % batch_size == 0 else complete + 1
    for _ in range(2):  # every epoch, not only the first
        batches = list(loader)
        assert len(batches) == len(loader) == expected_batches
        sizes = [len(y) for _, y in batches]
        assert all(size == batch_size for size in sizes[:complete])
        seen = np.concatenate([y.data for _, y in batches]) if batches else np.zeros(0, np.int64)
        for x, y in batches:  # the fields of a sample stay together
            np.testing.assert_array_equal(x.data[:, 0], y.data)
        assert len(np.unique(seen)) == len(seen) == (complete * batch_size if drop_last else n)
        assert set(seen.tolist()) <= set(range(n))
        if not shuffle:
            np.testing.assert_array_equal(seen, np.arange(len(seen)))
    assert loader.epoch == 2
