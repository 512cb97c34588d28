"""``save``/``load``: state dicts and checkpoints as ``.npz``, never pickle.

A saved object is a tree of dicts and lists whose leaves are Tensors, NumPy arrays, numbers,
strings, booleans or None. Arrays go into the archive as ``arr_0, arr_1, ...``; the tree, with
the arrays replaced by their slot, is stored as JSON text under ``__tree__``. Loading uses
``allow_pickle=False``, so a file cannot run code, and files are written atomically (a temp
file beside the target, flushed to disk, then a rename), so a crash never leaves half a
checkpoint. Tuples come back as lists, NumPy scalars as Python numbers.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError
from .tensor import Tensor

TREE_KEY = "__tree__"
FORMAT = "tinytorch-npz-1"
ZIP_MAGIC = b"PK\x03\x04"  # a .npz is a zip archive of .npy files
NPY_MAGIC = b"\x93NUMPY"
PICKLE_MAGIC = b"\x80"  # pickle protocols 2 and later


def _encode(obj: Any, arrays: list[np.ndarray], where: str):
    """The JSON tree of ``obj``, with its arrays appended to ``arrays`` (``where`` names the
    position in the tree, for error messages)."""
    if isinstance(obj, Tensor):
        obj, tag = obj.data, "$tensor"
    elif isinstance(obj, np.ndarray):
        tag = "$array"
    else:
        tag = None
    if tag is not None:
        if obj.dtype.hasobject:
            raise CheckpointError(
                f"cannot save {where}: arrays of dtype {obj.dtype} need pickle, which .npz files here never use"
            )
        arrays.append(obj)
        return {tag: len(arrays) - 1}
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CheckpointError(f"cannot save {where}: dict keys must be strings")
        return {"$dict": {k: _encode(v, arrays, f"{where}.{k}") for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"$list": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise CheckpointError(f"cannot save {where}: objects of type {type(obj).__name__} are not supported")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    """The object that :func:`_encode` turned into ``node``."""
    if not isinstance(node, dict):
        return node
    if "$tensor" in node:
        return Tensor._make(arrays[f"arr_{node['$tensor']}"])
    if "$array" in node:
        return arrays[f"arr_{node['$array']}"]
    if "$dict" in node:
        return {k: _decode(v, arrays) for k, v in node["$dict"].items()}
    if "$list" in node:
        return [_decode(v, arrays) for v in node["$list"]]
    raise CheckpointError(f"unknown entry in checkpoint tree: {sorted(node)}")


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save a state dict (or any tree of dicts/lists of arrays and plain values) to ``path``.

    Returns:
        The path written.

    Raises:
        CheckpointError: ``obj`` holds something that cannot be stored without pickle.

    Examples:
        >>> import tempfile
        >>> from tt_core import Linear
        >>> model = Linear(2, 1)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = save({"model": model.state_dict(), "epoch": 3}, Path(folder) / "ckpt.npz")
        ...     restored = load(path)
        >>> restored["epoch"], bool((restored["model"]["weight"] == model.weight.data).all())
        (3, True)
    """
    path = Path(path)
    arrays: list[np.ndarray] = []
    tree = {"format": FORMAT, "root": _encode(obj, arrays, "obj")}
    payload = {f"arr_{i}": a for i, a in enumerate(arrays)}
    payload[TREE_KEY] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name beside the target ("x": never reuse a file); created with the usual permissions
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> Any:
    """Load what :func:`save` wrote. Refuses pickled, corrupt and foreign files with a
    :class:`CheckpointError` that says which."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic.startswith(NPY_MAGIC):
        _refuse_npy(path)
    if not magic.startswith(ZIP_MAGIC):
        if magic.startswith(PICKLE_MAGIC):
            what = "a pickle file"
        else:
            what = "not a .npz file (it does not start as a zip archive)"
        raise CheckpointError(f"{path} is {what}; TinyTorch only loads .npz checkpoints written by tt_core.save")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "pickle" in str(error):
            raise CheckpointError(f"{path} holds pickled objects; TinyTorch never unpickles files") from None
        raise CheckpointError(f"{path} is corrupt ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(error).__name__}: {error})") from None
    if TREE_KEY not in arrays:
        raise CheckpointError(f"{path} is not a TinyTorch checkpoint (no {TREE_KEY} entry); save it with tt_core.save")
    try:
        tree = json.loads(arrays.pop(TREE_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt: its {TREE_KEY} entry is not JSON text ({error})") from None
    found = tree.get("format") if isinstance(tree, dict) else type(tree).__name__
    if found != FORMAT:
        raise CheckpointError(f"{path} has format {found!r}, expected {FORMAT!r}")
    try:
        return _decode(tree["root"], arrays)
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path} is corrupt: its tree does not match its arrays ({error!r})") from None


def _refuse_npy(path: Path) -> None:
    """Raise the right error for a bare ``.npy`` file: pickled, or just not a checkpoint."""
    try:
        np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error):
            raise CheckpointError(f"{path} holds pickled objects; TinyTorch never unpickles files") from None
    raise CheckpointError(f"{path} is a .npy array, not a TinyTorch checkpoint (a .npz written by tt_core.save)")
