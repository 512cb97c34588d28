"""Scratch arrays that convolution reuses from one call to the next.

This is speed only, and can be skipped on first reading: with ``np.zeros`` in place of the
pool the convolution computes the same numbers (:func:`tt_data.spatial.conv2d_reference` is
the plain definition).

The im2col matrix of a convolution (and, a few images at a time, its gradient) is the largest
temporary of a CNN step: tens of megabytes per layer. Writing into an array that already
exists is several times faster than writing a fresh one, which page-faults on first touch,
so these temporaries come from a :class:`ScratchPool` instead of ``np.empty``.

A buffer is *taken* and *given back*. A buffer that a forward kernel keeps for its gradient
rule is *lent* to the op's context: it goes back to the pool by itself when the context dies,
which is right after ``backward`` frees the graph, or at once when no graph is recorded
(evaluation, ``no_grad``). So a buffer is never handed out twice while someone can still
read it.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable

import numpy as np

__all__ = ["SCRATCH", "ScratchPool"]


class ScratchPool:
    """Free arrays by key, handed out again to callers that ask for the same key.

    A new buffer is zero-filled; a reused one holds whatever its last user wrote. Callers
    that rely on parts of a buffer staying zero (the padding border of an im2col matrix)
    put everything that decides which parts are written into the key.

    Args:
        max_bytes: the most memory that free buffers may hold; a buffer given back beyond
            that is dropped (freed) instead of kept.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = max_bytes
        self._free: dict[Hashable, list[np.ndarray]] = {}
        self._bytes = 0

    def take(self, key: Hashable, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A buffer for ``key``: a free one if there is one, else a new zero-filled array."""
        free = self._free.get(key)
        if free:
            buffer = free.pop()
            self._bytes -= buffer.nbytes
            return buffer
        return np.zeros(shape, dtype=dtype)

    def give(self, key: Hashable, buffer: np.ndarray) -> None:
        """Put ``buffer`` back for the next caller asking for ``key``."""
        if self._bytes + buffer.nbytes > self.max_bytes:
            return
        self._free.setdefault(key, []).append(buffer)
        self._bytes += buffer.nbytes

    def lend(self, owner: object, key: Hashable, shape: tuple[int, ...], dtype) -> np.ndarray:
        """Like :meth:`take`, and the buffer comes back by itself when ``owner`` is garbage."""
        buffer = self.take(key, shape, dtype)
        weakref.finalize(owner, self.give, key, buffer)
        return buffer

    @property
    def nbytes(self) -> int:
        """Memory held by free buffers."""
        return self._bytes

    def clear(self) -> None:
        """Drop every free buffer (lent ones still come back later)."""
        self._free.clear()
        self._bytes = 0


SCRATCH = ScratchPool()
