"""``save``/``load``: state dicts and checkpoints as ``.npz``, never pickle.

A saved object is a tree of dicts and lists whose leaves are Tensors, NumPy arrays, numbers,
strings, booleans or None. Arrays go into the archive as ``arr_0, arr_1, ...``; the tree, with
the arrays replaced by their slot, is stored as JSON text under ``__tree__``. Loading uses
``allow_pickle=False``, so a file cannot run code, and files are written atomically (a temp
file beside the target, then a rename), so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError
from .tensor import Tensor

TREE_KEY = "__tree__"
FORMAT = "tinytorch-npz-1"


def _encode(obj: Any, arrays: list[np.ndarray], where: str):
    if isinstance(obj, Tensor):
        arrays.append(np.ascontiguousarray(obj.data))
        return {"$tensor": len(arrays) - 1}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise CheckpointError(f"cannot save {where}: arrays of dtype {obj.dtype} need pickle, which .npz files here never use")
        arrays.append(np.ascontiguousarray(obj))
        return {"$array": len(arrays) - 1}
    if isinstance(obj, np.generic):
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


def _decode(node: Any, archive) -> Any:
    if not isinstance(node, dict):
        return node
    if "$tensor" in node:
        return Tensor._make(archive[f"arr_{node['$tensor']}"])
    if "$array" in node:
        return archive[f"arr_{node['$array']}"]
    if "$dict" in node:
        return {k: _decode(v, archive) for k, v in node["$dict"].items()}
    if "$list" in node:
        return [_decode(v, archive) for v in node["$list"]]
    raise CheckpointError(f"unknown entry in checkpoint tree: {sorted(node)}")


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save a state dict (or any tree of dicts/lists of arrays and plain values) to ``path``."""
    path = Path(path)
    arrays: list[np.ndarray] = []
    tree = {"format": FORMAT, "root": _encode(obj, arrays, "obj")}
    payload = {f"arr_{i}": a for i, a in enumerate(arrays)}
    payload[TREE_KEY] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: str | os.PathLike) -> Any:
    """Load what :func:`save` wrote. Refuses pickled, corrupt and foreign files with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if TREE_KEY not in archive.files:
                raise CheckpointError(f"{path} is not a TinyTorch checkpoint (no {TREE_KEY} entry); save it with tt_core.save")
            tree = json.loads(archive[TREE_KEY].tobytes().decode())
            if tree.get("format") != FORMAT:
                raise CheckpointError(f"{path} has format {tree.get('format')!r}, expected {FORMAT!r}")
            return _decode(tree["root"], {name: archive[name] for name in archive.files if name != TREE_KEY})
    except CheckpointError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickle" in str(error).lower():
            raise CheckpointError(f"{path} holds pickled objects; TinyTorch never unpickles files") from None
        raise CheckpointError(f"{path} is not a valid .npz checkpoint ({error})") from None
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, KeyError, EOFError) as error:
        raise CheckpointError(f"{path} is corrupt or not a .npz checkpoint ({type(error).__name__}: {error})") from None
