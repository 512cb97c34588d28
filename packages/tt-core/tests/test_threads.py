"""``tt_core.threads``: cutting a batch into parts, running them side by side, and the kernels
that do (GELU) computing the same values whatever the thread count."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import tt_core as tt
from tt_core import threads
from tt_core.ops import gelu_tanh


@pytest.fixture
def split_small(monkeypatch):
    """Every kernel shares even tiny work between 2 threads."""
    monkeypatch.setattr(threads, "MIN_PART_WORK", 1)
    with threads.limit(2):
        yield


def test_split_cuts_a_batch_into_nearly_equal_slices_by_work():
    with threads.limit(3):
        assert threads.split(10, work=10, min_work=1) == [slice(0, 3), slice(3, 6), slice(6, 10)]
        assert threads.split(10, work=10, min_work=5) == [slice(0, 5), slice(5, 10)]  # 2 parts of work 5
        assert threads.split(10, work=10, min_work=100) == [slice(0, 10)]  # too little to share
        assert threads.split(2, work=10, min_work=1) == [slice(0, 1), slice(1, 2)]  # no more parts than rows
    with threads.limit(1):
        assert threads.split(10, work=10**9) == [slice(0, 10)]


def test_run_parts_runs_the_parts_at_once_and_in_order():
    started = threading.Barrier(2, timeout=10)  # each part waits for the other: they must overlap

    def task(part):
        started.wait()
        return part.start, threading.current_thread().name

    with threads.limit(2):
        results = threads.run_parts(task, threads.split(4, work=4, min_work=1))
    assert [start for start, _ in results] == [0, 2]
    assert results[0][1] == threading.current_thread().name and results[1][1].startswith("tt-kernel")


def test_a_part_never_splits_again():
    with threads.limit(2):
        inner = threads.run_parts(lambda part: threads.split(8, work=8, min_work=1), [slice(0, 1), slice(1, 2)])
    assert inner == [[slice(0, 8)], [slice(0, 8)]]


def test_an_error_in_a_part_is_raised_after_every_part_ended():
    ended = []

    def task(part):
        if part.start == 1:
            raise ValueError("part 1 failed")
        threading.Event().wait(0.05)
        ended.append(part.start)

    with threads.limit(2), pytest.raises(ValueError, match="part 1 failed"):
        threads.run_parts(task, [slice(0, 1), slice(1, 2)])
    assert ended == [0]


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_whole_number_from_1(count):
    with pytest.raises(ValueError, match="whole number >= 1"):
        threads.set_num_threads(count)


def test_limit_restores_the_count():
    before = threads.get_num_threads()
    with threads.limit(5):
        assert threads.get_num_threads() == 5
    assert threads.get_num_threads() == before


@pytest.mark.parametrize("shape", [(), (1,), (7,), (5, 3, 4)])
def test_gelu_is_the_same_bits_in_parts(split_small, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    in_parts = tt.GELU()(tt.Tensor(x)).data
    with threads.limit(1):
        whole = tt.GELU()(tt.Tensor(x)).data
    assert np.array_equal(in_parts, whole)
    np.testing.assert_allclose(in_parts, x / 2 * (1 + gelu_tanh(x)), rtol=1e-6, atol=1e-7)
