"""Scratch arrays that convolution reuses from one call to the next.

This is speed only, and can be skipped on first reading: with ``np.zeros`` in place of the
pool the convolution computes the same numbers (:func:`tt_data.spatial.conv2d_reference` is
the plain definition).

A convolution builds its im2col matrix (and its gradient) a few images at a time, in
buffers of a few megabytes, several times per step. Writing into an array that already
exists is several times faster than writing a fresh one, which page-faults on first touch,
so these temporaries come from a :class:`ScratchPool` instead of ``np.empty``: a buffer is
*taken*, used, and *given back* before the kernel returns, so it is never handed out twice
while someone can still read it.
"""

from __future__ import annotations

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

    @property
    def nbytes(self) -> int:
        """Memory held by free buffers."""
        return self._bytes

    def clear(self) -> None:
        """Drop every free buffer (lent ones still come back later)."""
        self._free.clear()
        self._bytes = 0


SCRATCH = ScratchPool()
