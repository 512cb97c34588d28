"""Keeping freed memory for reuse: the allocator setting that large NumPy temporaries need.

A training step makes many large temporaries (activations, gradients: megabytes each) and
frees them again before the next step asks for arrays of the same sizes. glibc's ``malloc``
serves a large request with its own ``mmap`` and gives the pages back to the operating
system on ``free``; the next step then maps fresh pages and touches each for the first
time (a page fault per 4 KiB, and the kernel zeroes every page). On a small GPT that is
about a fifth of the step. Two settings keep the memory in the process instead:

* ``M_MMAP_THRESHOLD`` at 32 MiB (glibc's largest allowed value): requests up to that size
  come from the heap, whose freed chunks are reused by the next request;
* ``M_TRIM_THRESHOLD`` at 1 GiB: the heap is not shrunk after every large ``free``.

The cost is that the process keeps its peak memory until it exits, which is what a training
run needs anyway. The settings are process-wide (they speed up PyTorch in the same process
alike) and only exist in glibc; elsewhere :func:`keep_freed_memory` does nothing.

``import tt_core`` applies them once, unless the environment variable
``TT_KEEP_FREED_MEMORY`` is ``0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed large blocks for reuse (see the module docstring).

    Returns:
        True when both settings took effect; False without glibc (macOS, Windows, musl),
        where nothing changes.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def apply_default() -> bool:
    """:func:`keep_freed_memory` unless ``TT_KEEP_FREED_MEMORY=0``; returns whether it was applied."""
    if os.environ.get("TT_KEEP_FREED_MEMORY", "1").strip() == "0":
        return False
    return keep_freed_memory()
