"""The threads TinyTorch's own kernels use: a batch cut into parts that run side by side.

BLAS runs a matrix product on threads of its own, but NumPy's element-wise passes (GELU, a
layer norm, an attention softmax) and its many small products (one per batch element and
head in attention) run on the calling thread only, so on a 2-core machine half the machine
waits through them. A kernel whose batch elements are independent can hand each thread a
slice of the batch instead: :func:`split` cuts the batch, :func:`run_parts` runs a function
on every slice at once. NumPy releases the GIL inside its loops and BLAS calls, so the slices
really run side by side, and each slice computes exactly what it would in one pass: results
are bit for bit the same whatever the thread count, except for sums over the batch (a layer
norm's weight gradient adds up the parts' sums), which may differ in the last bits.

The count starts as the BLAS thread count the environment asks for (``OMP_NUM_THREADS`` or
``OPENBLAS_NUM_THREADS``), else every core this process may use; :func:`set_num_threads`
changes it and :func:`limit` changes it inside a block (``tt-milestones run --threads N``
sets BLAS and this count together).

OpenBLAS keeps its idle threads spinning for a while after each product (2^28 cycles, about
0.1 s, by default), which takes the core a kernel's second part needs. Imported before NumPy
(``import tt_core`` imports this module first), this module shortens that wait to
:data:`OPENBLAS_SPIN` unless ``OPENBLAS_THREAD_TIMEOUT`` is set already; imported after, it
cannot, and the parts then share their cores with the spinning threads.

Examples:
    >>> import numpy as np
    >>> from tt_core import threads
    >>> x = np.arange(6.0)
    >>> with threads.limit(2):
    ...     parts = threads.split(len(x), work=len(x), min_work=3)
    ...     _ = threads.run_parts(lambda part: np.multiply(x[part], 10, out=x[part]), parts)
    >>> parts, x.tolist()
    ([slice(0, 3, None), slice(3, 6, None)], [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

__all__ = ["MIN_PART_WORK", "OPENBLAS_SPIN", "get_num_threads", "limit", "run_parts", "set_num_threads", "split"]

OPENBLAS_SPIN = "16"
"""``OPENBLAS_THREAD_TIMEOUT``: an idle OpenBLAS thread spins 2^16 cycles (some 25 µs) before
it sleeps, instead of 2^28."""

if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_SPIN)

MIN_PART_WORK = 1 << 17
"""The least work (array elements a kernel passes over) worth a thread of its own: below it,
handing a slice to another thread costs more than it saves."""


def _default_count() -> int:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_count = _default_count()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_inside = threading.local()  # set while a thread runs a part: a part never splits again


def set_num_threads(count: int) -> None:
    """Let kernels use up to ``count`` threads (1: everything on the calling thread).

    Raises:
        ValueError: ``count`` is not a whole number >= 1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"the thread count must be a whole number >= 1, got {count!r}")
    global _count
    _count = count


def get_num_threads() -> int:
    """How many threads kernels may use."""
    return _count


@contextlib.contextmanager
def limit(count: int | None) -> Iterator[None]:
    """Kernels use ``count`` threads inside the block (None: unchanged)."""
    if count is None:
        yield
        return
    before = _count
    set_num_threads(count)
    try:
        yield
    finally:
        set_num_threads(before)


def split(size: int, work: int, min_work: int | None = None) -> list[slice]:
    """``range(size)`` (a batch) cut into at most :func:`get_num_threads` slices of nearly
    equal length; fewer when the whole ``work`` would give a slice less than ``min_work``
    (None: :data:`MIN_PART_WORK`), and one when called from inside a part."""
    least = max(MIN_PART_WORK if min_work is None else min_work, 1)
    parts = 1 if getattr(_inside, "part", False) else max(1, min(_count, size, work // least))
    bounds = [size * i // parts for i in range(parts + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def _run(task: Callable[[slice], object], part: slice) -> object:
    _inside.part = True
    try:
        return task(part)
    finally:
        _inside.part = False


def run_parts(task: Callable[[slice], object], parts: Sequence[slice]) -> list:
    """``[task(part) for part in parts]``, the first part on the calling thread and the others
    on a shared pool at the same time. Returns when every part has ended; an exception in any
    part is raised here."""
    if len(parts) <= 1:
        return [task(part) for part in parts]
    global _pool, _pool_size
    with _pool_lock:
        if _pool_size < len(parts) - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool_size = len(parts) - 1
            _pool = ThreadPoolExecutor(max_workers=_pool_size, thread_name_prefix="tt-kernel")
        pool = _pool
    others = [pool.submit(_run, task, part) for part in parts[1:]]
    try:
        first = _run(task, parts[0])
    finally:  # every part has ended before anything is returned or raised
        wait(others)
    return [first, *(future.result() for future in others)]
