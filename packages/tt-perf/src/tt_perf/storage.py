"""Sparse storage: saved files whose size reflects how many weights are zero.

``tt_core.save`` writes every array densely, so a weight matrix with 90 % zeros takes as
many bytes as a full one. :func:`save_compressed` stores each array in the smallest of three
formats (all plain arrays inside the usual ``.npz``, no pickle):

- ``dense``: the array as it is.
- ``bitmask``: one bit per element saying "non-zero" (``np.packbits``), then only the
  non-zero values: ``n/8 + nnz * itemsize`` bytes.
- ``csr``: compressed sparse rows of the array seen as (rows, -1): row pointers, column
  indices (uint16 when they fit) and values: ``4 * (rows + 1) + nnz * (index + itemsize)`` bytes.

Each array in an ``.npz`` also costs about 260 bytes of headers (npy header, zip entries),
which adds up for a quantized model's many small arrays (scales, zero points, biases). So
:func:`save_compressed` *packs* the pieces: all pieces of one dtype are concatenated into one
blob, and the JSON tree records where each piece starts. A file then holds one array per
dtype, whatever the number of layers, and a compact JSON index saying where each piece
lies (as bytes, so it costs no per-entry structure in the archive's own tree). With int8 values and 80 % zeros, the bitmask format
needs 0.125 + 0.2 = 0.325 bytes per weight against float32's 4: 12x smaller.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import tt_core
from tt_core import Module, Tensor

FORMAT = "tt-perf-compressed-3"
PIECE_OVERHEAD = 32  # bytes of the JSON reference that locates one packed piece
FORMATS = ("dense", "bitmask", "csr")


def _index_dtype(columns: int) -> np.dtype:
    return np.dtype(np.uint16) if columns <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def encoded_bytes(array: np.ndarray, fmt: str) -> int:
    """Bytes ``array`` takes in a packed file in format ``fmt`` (its pieces plus their references)."""
    nnz = int(np.count_nonzero(array))
    item = array.dtype.itemsize
    if fmt == "dense":
        return array.nbytes + PIECE_OVERHEAD
    if fmt == "bitmask":
        return -(-array.size // 8) + nnz * item + 2 * PIECE_OVERHEAD
    if fmt == "csr":
        rows = array.shape[0] if array.ndim else 1
        columns = array.size // max(rows, 1)
        return 4 * (rows + 1) + nnz * (_index_dtype(columns).itemsize + item) + 3 * PIECE_OVERHEAD
    raise ValueError(f"unknown storage format {fmt!r}; use one of {FORMATS}")


def encode(array: np.ndarray, fmt: str = "auto") -> dict:
    """An array as a dict of plain arrays in format ``fmt`` (``"auto"``: the smallest)."""
    array = np.asarray(array)
    if fmt == "auto":
        fmt = min(FORMATS, key=lambda f: encoded_bytes(array, f)) if array.ndim else "dense"
    if fmt == "dense":
        return {"format": "dense", "data": array}
    flat = array.reshape(-1)
    if fmt == "bitmask":
        mask = flat != 0
        return {"format": "bitmask", "shape": list(array.shape), "bits": np.packbits(mask), "values": flat[mask]}
    if fmt == "csr":
        rows = array.shape[0]
        matrix = array.reshape(rows, -1)
        row_index, columns = np.nonzero(matrix)
        indptr = np.zeros(rows + 1, dtype=np.int32)
        np.cumsum(np.bincount(row_index, minlength=rows), out=indptr[1:])
        return {
            "format": "csr", "shape": list(array.shape), "indptr": indptr,
            "indices": columns.astype(_index_dtype(matrix.shape[1])), "values": matrix[row_index, columns],
        }
    raise ValueError(f"unknown storage format {fmt!r}; use 'auto' or one of {FORMATS}")


def decode(entry: dict) -> np.ndarray:
    """The array that :func:`encode` encoded."""
    fmt = entry.get("format")
    if fmt == "dense":
        return np.asarray(entry["data"])
    shape = tuple(entry["shape"])
    values = np.asarray(entry["values"])
    out = np.zeros(int(np.prod(shape)), dtype=values.dtype)
    if fmt == "bitmask":
        mask = np.unpackbits(entry["bits"], count=out.size).astype(bool)
        out[mask] = values
        return out.reshape(shape)
    if fmt == "csr":
        rows = shape[0]
        matrix = out.reshape(rows, -1)
        row_index = np.repeat(np.arange(rows), np.diff(entry["indptr"]))
        matrix[row_index, entry["indices"].astype(np.int64)] = values
        return matrix.reshape(shape)
    raise tt_core.CheckpointError(f"unknown storage format {fmt!r} in a compressed checkpoint")


def _state(obj) -> OrderedDict[str, np.ndarray]:
    if isinstance(obj, Module):
        return obj.state_dict()
    return OrderedDict((k, v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in obj.items())


def _pack(entries: dict[str, dict]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Move every array piece of every entry into one flat blob per dtype; each piece becomes
    a short reference string ``"@dtype:offset:shape"``, e.g. ``"@|i1:1024:16,64"``."""
    pieces: dict[str, list[np.ndarray]] = {}
    sizes: dict[str, int] = {}
    packed = {}
    for name, entry in entries.items():
        packed[name] = {}
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                dtype = value.dtype.str
                shape = ",".join(str(n) for n in value.shape)
                packed[name][key] = f"@{dtype}:{sizes.get(dtype, 0)}:{shape}"
                pieces.setdefault(dtype, []).append(value.reshape(-1))
                sizes[dtype] = sizes.get(dtype, 0) + value.size
            else:
                packed[name][key] = value
    blobs = {dtype: np.concatenate(parts) for dtype, parts in pieces.items()}
    return blobs, packed


def _unpack(blobs: dict[str, np.ndarray], packed: dict[str, dict]) -> dict[str, dict]:
    entries = {}
    for name, entry in packed.items():
        entries[name] = {}
        for key, value in entry.items():
            if isinstance(value, str) and value.startswith("@"):
                dtype, offset, shape = value[1:].split(":")
                shape = tuple(int(n) for n in shape.split(",") if n)
                start = int(offset)
                entries[name][key] = blobs[dtype][start:start + int(np.prod(shape))].reshape(shape)
            else:
                entries[name][key] = value
    return entries


def save_compressed(obj, path: str | os.PathLike, fmt: str = "auto") -> Path:
    """Save a Module's state dict (or a dict of arrays): every array in its smallest format,
    all pieces packed into one blob per dtype."""
    blobs, packed = _pack({name: encode(value, fmt) for name, value in _state(obj).items()})
    index = np.frombuffer(json.dumps(packed, separators=(",", ":")).encode(), dtype=np.uint8)
    return tt_core.save({"format": FORMAT, "blobs": blobs, "index": index}, path)


def load_compressed(path: str | os.PathLike) -> OrderedDict[str, np.ndarray]:
    """The state dict that :func:`save_compressed` wrote (load it with ``model.load_state_dict``)."""
    tree = tt_core.load(path)
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        raise tt_core.CheckpointError(f"{path} is not a compressed tt-perf checkpoint (format {FORMAT!r})")
    entries = _unpack(tree["blobs"], json.loads(tree["index"].tobytes().decode()))
    return OrderedDict((name, decode(entry)) for name, entry in entries.items())


def saved_size(obj, path: str | os.PathLike, compressed: bool = False) -> int:
    """Bytes on disk of ``obj``'s state saved to ``path`` (dense with ``tt_core.save``, or compressed)."""
    if compressed:
        save_compressed(obj, path)
    else:
        tt_core.save(_state(obj), path)
    return os.path.getsize(path)
