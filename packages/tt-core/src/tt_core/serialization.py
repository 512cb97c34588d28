"""``save``/``load``: state dicts and checkpoints as ``.npz``, never pickle.

A saved object is a tree of dicts and lists whose leaves are Tensors, NumPy arrays, numbers,
strings, booleans or None. Arrays go into the archive as ``arr_0, arr_1, ...``; the tree, with
the arrays replaced by their slot, is stored as JSON text under ``__tree__``. Loading uses
``allow_pickle=False``, so a file cannot run code, and files are written atomically (a temp
file beside the target, flushed to disk, then a rename), so a crash never leaves half a
checkpoint. A save killed before its rename leaves its temp file behind (a hidden
``.<name>.<pid>.<random>.tmp``); the next save into the same folder removes such files once
they are :data:`STALE_TEMP_SECONDS` old and their process is gone. Tuples come back as lists,
NumPy scalars as Python numbers. Trees nest at most :data:`MAX_DEPTH` dicts and lists deep.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import struct
import time
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
MAX_DEPTH = 100
"""How deeply dicts and lists may nest in a saved tree (a checkpoint needs a handful)."""
STALE_TEMP_SECONDS = 60.0
"""Age after which a temp file left by a killed save is removed by the next save beside it."""
TEMP_NAME = re.compile(r"\..+\.(\d+)\.[0-9a-f]{8}\.tmp")
"""The name of a temp file that :func:`save` writes beside its target (group 1: its pid)."""
# what reading a damaged zip archive or .npy member can raise, besides ValueError
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, struct.error, KeyError,
                NotImplementedError, RuntimeError, MemoryError, OverflowError)


def _encode(obj: Any, arrays: list[np.ndarray], where: str, depth: int = 0):
    """The JSON tree of ``obj``, with its arrays appended to ``arrays`` (``where`` names the
    position in the tree, for error messages; ``depth`` counts the enclosing dicts and lists)."""
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
    if isinstance(obj, (dict, list, tuple)) and depth >= MAX_DEPTH:
        shown = where if len(where) <= 80 else where[:80] + "..."
        raise CheckpointError(f"cannot save {shown}: the tree nests more than {MAX_DEPTH} dicts and lists deep")
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CheckpointError(f"cannot save {where}: dict keys must be strings")
        return {"$dict": {k: _encode(v, arrays, f"{where}.{k}", depth + 1) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return {"$list": [_encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]}
    raise CheckpointError(f"cannot save {where}: objects of type {type(obj).__name__} are not supported")


def _decode(node: Any, arrays: dict[str, np.ndarray], depth: int = 0) -> Any:
    """The object that :func:`_encode` turned into ``node`` (raises CheckpointError, KeyError,
    TypeError or AttributeError for a tree that :func:`_encode` cannot have written)."""
    if not isinstance(node, dict):
        if isinstance(node, list):
            raise CheckpointError("a bare JSON list in the tree")
        return node
    if depth > MAX_DEPTH:
        raise CheckpointError(f"its tree nests more than {MAX_DEPTH} dicts and lists deep")
    if "$tensor" in node:
        array = arrays[f"arr_{node['$tensor']}"]
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"a tensor of dtype {array.dtype} (tensors are numeric)")
        return Tensor._make(array)
    if "$array" in node:
        return arrays[f"arr_{node['$array']}"]
    if "$dict" in node:
        return {k: _decode(v, arrays, depth + 1) for k, v in node["$dict"].items()}
    if "$list" in node:
        return [_decode(v, arrays, depth + 1) for v in node["$list"]]
    raise CheckpointError(f"unknown entry in checkpoint tree: {sorted(node)}")


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save a state dict (or any tree of dicts/lists of arrays and plain values) to ``path``.

    The file is written atomically: a temp file beside ``path``, flushed to disk, then
    renamed. Temp files that killed saves left in the folder are removed first (see
    :func:`remove_stale_temp_files`).

    Args:
        obj: a tree of dicts (string keys) and lists/tuples, at most :data:`MAX_DEPTH` deep,
            whose leaves are Tensors, NumPy arrays (not of dtype object), NumPy scalars,
            numbers, strings, booleans or None.
        path: where to write (parent folders are created).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: ``obj`` holds something that cannot be saved (nothing is written).
        OSError: the file cannot be written (the old file at ``path``, if any, is kept).

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
    remove_stale_temp_files(path.parent)
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


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (always False where that cannot be asked)."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a pid too large to ask about: keep its file
    return True


def remove_stale_temp_files(folder: str | os.PathLike, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Remove the temp files that killed saves left in ``folder``.

    Only files named as :func:`save` names its temp files (:data:`TEMP_NAME`) are touched, and
    only those not modified for ``max_age`` seconds whose writing process (the pid in the
    name) no longer runs on this machine. Files that vanish or cannot be removed meanwhile are
    skipped.

    Returns:
        The files removed.
    """
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = TEMP_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < max_age:
                continue
            if _process_alive(int(match.group(1))):
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def load(path: str | os.PathLike) -> Any:
    """Load what :func:`save` wrote.

    Returns:
        The saved tree: dicts, lists, Tensors (saved as Tensors), NumPy arrays and plain values.

    Raises:
        CheckpointError: for every file that is not an intact checkpoint written by
            :func:`save`: missing, pickled, a bare ``.npy``, foreign, truncated or corrupt,
            nested too deeply; the message says which.
    """
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
    except _READ_ERRORS as error:
        raise CheckpointError(f"{path} is corrupt or truncated ({type(error).__name__}: {error})") from None
    if TREE_KEY not in arrays:
        raise CheckpointError(f"{path} is not a TinyTorch checkpoint (no {TREE_KEY} entry); save it with tt_core.save")
    try:
        tree = json.loads(arrays.pop(TREE_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt: its {TREE_KEY} entry is not JSON text ({error})") from None
    except RecursionError:
        raise CheckpointError(f"{path} is corrupt: its tree nests too deeply to read") from None
    found = tree.get("format") if isinstance(tree, dict) else type(tree).__name__
    if found != FORMAT:
        raise CheckpointError(f"{path} has format {found!r}, expected {FORMAT!r}")
    try:
        return _decode(tree["root"], arrays)
    except CheckpointError as error:
        raise CheckpointError(f"{path} is corrupt: {error}") from None
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
