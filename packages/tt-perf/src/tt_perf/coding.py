"""Entropy-coded model files: sparsity pattern and codebook indices, squeezed with LZMA.

A pruned, weight-shared layer (see :mod:`tt_perf.sharing`) is fully described by where its
non-zero weights are, which centroid each one uses, and the codebook. :func:`save_coded`
lays these out as bytes:

- **positions** as *relative index gaps*: the number of zeros before each non-zero weight in
  the flattened array, one byte each. A gap of 255 or more is written as ``255`` bytes (each
  meaning "255 zeros, no weight here") followed by the remainder: Deep Compression's filler
  trick, so a byte is enough at any sparsity.
- **codes**: the centroid index (uint8) of each non-zero weight, in the same order.
- **codebooks** (float32) and every array that is not shared (biases, ...) as raw bytes.

Any floating-point array of two or more dimensions whose non-zero values take at most 256
distinct values is stored that way (its codebook is the set of those values, so decoding
gives back exactly the same array, bit for bit, except that a zero stored as ``-0.0``, as
pruning leaves some, comes back as ``0.0``); every other array is stored raw.

The whole layout (gaps of every layer, then codes, then raw bytes: symbols of one kind side
by side) is then compressed by LZMA (stdlib ``lzma``, raw LZMA2 stream, no container header)
with no literal context (``lc=0``, ``lp=0``, ``pb=0``): its adaptive binary range coder then
codes each byte by its own frequency, an order-0 entropy coder which adapts from one section
to the next, and its match finder still catches repeats (runs of 255 over input pixels whose
weights were all pruned). Measured on MNIST MLPs (784-256-128-10 and 784-512-512-10) pruned to
92 % and shared with 16 centroids, the LZMA file was within 3 % of the order-0 entropy of
each layer's gaps and codes plus the raw bytes (a bound that no per-symbol code, such as a
Huffman code with one table per layer, can beat), 12-14 % smaller than zlib at level 9 or
bz2, and slightly smaller than separate LZMA streams per section or a literal context
(``lc=1`` or ``3``). A hand-written Huffman coder could gain at most those 3 %, so LZMA is the
one coder here. With ``entropy=False`` the same layout is stored uncompressed (the
"+codebook" stage of the compression report).

The file is a ``.npz`` of ``tt_core.save`` holding one uint8 array and a JSON list of what
each array is (name, shape, dtype and, when shared, its byte counts); nothing is pickled.
"""

from __future__ import annotations

import lzma
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tt_core

from .sharing import MAX_CLUSTERS
from .storage import _state

FORMAT = "tt-perf-coded-1"
ESCAPE = 255  # a gap byte meaning "255 zeros and no weight yet"
FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 0, "lp": 0, "pb": 0}]


def encode_gaps(positions: np.ndarray) -> np.ndarray:
    """Sorted flat positions of non-zeros as uint8 gap bytes (see the module docstring).

    Examples:
        >>> encode_gaps(np.array([0, 3, 300])).tolist()
        [0, 2, 255, 41]
    """
    gaps = np.diff(np.asarray(positions, dtype=np.int64), prepend=-1) - 1
    escapes = gaps // ESCAPE
    ends = np.cumsum(escapes + 1) - 1  # where each gap's final byte goes
    out = np.full(int(ends[-1]) + 1 if len(ends) else 0, ESCAPE, dtype=np.uint8)
    out[ends] = gaps % ESCAPE
    return out


def decode_gaps(gaps: np.ndarray) -> np.ndarray:
    """The positions that :func:`encode_gaps` encoded."""
    gaps = np.asarray(gaps, dtype=np.int64)
    final = gaps != ESCAPE
    advance = np.where(final, gaps + 1, ESCAPE)
    return np.cumsum(advance)[final] - 1


def shareable(array: np.ndarray) -> bool:
    """Whether ``array`` is stored as positions + codes + codebook (else raw)."""
    return (array.dtype.kind == "f" and array.ndim >= 2
            and len(np.unique(array[array != 0])) <= MAX_CLUSTERS)


def _layout(state: OrderedDict[str, np.ndarray]) -> tuple[bytes, list]:
    """The uncompressed bytes of a state dict and the index that says how to read them."""
    gaps, codes, raw, index = [], [], [], []
    for name, array in state.items():
        array = np.ascontiguousarray(array)
        if shareable(array):
            flat = array.reshape(-1)
            positions = np.flatnonzero(flat)
            book, code = np.unique(flat[positions], return_inverse=True)
            gaps.append(encode_gaps(positions))
            codes.append(code.astype(np.uint8))
            raw.append(book.astype(array.dtype).tobytes())
            index.append([name, list(array.shape), array.dtype.str, len(gaps[-1]), len(book)])
        else:
            raw.append(array.tobytes())
            index.append([name, list(array.shape), array.dtype.str])
    payload = b"".join([*(g.tobytes() for g in gaps), *(c.tobytes() for c in codes), *raw])
    return payload, index


def _unlayout(payload: bytes, index: list) -> OrderedDict[str, np.ndarray]:
    data = np.frombuffer(payload, dtype=np.uint8)
    shared = [entry for entry in index if len(entry) == 5]
    offset = 0
    positions = {}
    for name, _, _, gap_bytes, _ in shared:
        positions[name] = decode_gaps(data[offset:offset + gap_bytes])
        offset += gap_bytes
    codes = {}
    for name, *_ in shared:
        codes[name] = data[offset:offset + len(positions[name])]
        offset += len(positions[name])
    state = OrderedDict()
    for entry in index:
        name, shape, dtype = entry[0], tuple(entry[1]), np.dtype(entry[2])
        if len(entry) == 5:
            book = np.frombuffer(payload, dtype=dtype, count=entry[4], offset=offset)
            offset += book.nbytes
            flat = np.zeros(int(np.prod(shape)), dtype=dtype)
            flat[positions[name]] = book[codes[name]]
            state[name] = flat.reshape(shape)
        else:
            count = int(np.prod(shape))
            state[name] = np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
            offset += count * dtype.itemsize
    if offset != len(payload):
        raise tt_core.CheckpointError(f"a coded checkpoint holds {len(payload) - offset} bytes more than its index "
                                      "describes: the file is corrupt")
    return state


def save_coded(obj, path: str | os.PathLike, *, entropy: bool = True) -> Path:
    """Save a Module's state dict (or a dict of arrays) as positions + codes + codebooks,
    LZMA-coded unless ``entropy=False``. Returns ``path``."""
    payload, index = _layout(_state(obj))
    if entropy:
        payload = lzma.compress(payload, format=lzma.FORMAT_RAW, filters=FILTERS)
    return tt_core.save({"format": FORMAT, "entropy": entropy, "index": index,
                         "data": np.frombuffer(payload, dtype=np.uint8)}, path)


def load_coded(path: str | os.PathLike) -> OrderedDict[str, np.ndarray]:
    """The state dict that :func:`save_coded` wrote, bit for bit (load it with ``model.load_state_dict``)."""
    tree = tt_core.load(path)
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        raise tt_core.CheckpointError(f"{path} is not an entropy-coded tt-perf checkpoint (format {FORMAT!r}); "
                                      "write it with tt_perf.coding.save_coded")
    payload = tree["data"].tobytes()
    if tree["entropy"]:
        try:
            payload = lzma.decompress(payload, format=lzma.FORMAT_RAW, filters=FILTERS)
        except lzma.LZMAError as error:
            raise tt_core.CheckpointError(f"{path}: its coded data does not decompress ({error}): the file is "
                                          "corrupt") from error
    try:
        return _unlayout(payload, tree["index"])
    except (ValueError, IndexError) as error:  # fewer bytes than the index describes, or codes beyond a codebook
        raise tt_core.CheckpointError(f"{path}: its data does not match its index ({error}): the file is "
                                      "corrupt") from error
