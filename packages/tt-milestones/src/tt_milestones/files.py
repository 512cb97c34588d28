"""The files the commands write: atomic writes, the run folder (checked before a run, locked
while it runs) and the log of an unexpected error.

A run writes into one folder, ``--out``. :func:`prepare_out` checks it before anything trains
(a folder, or one that can be created, that can be written); :class:`RunLock` keeps a second run
out of it while the first one writes (the lock file, :data:`LOCK_NAME`, holds the running
process's id and is held with an OS lock, so the lock of a process that died is free again).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

from tt_core.errors import TinyTorchError

try:  # POSIX
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_NAME = ".tt-milestones.lock"
ERROR_LOG = "tt-milestones-error.log"
CACHE_ENV = "TT_CACHE_DIR"

class OutDirError(TinyTorchError):
    """The output folder of a run cannot be used: a file, not writable, full, or in use."""


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``,
    so a reader (or a run stopped half-way) never sees half a file. Returns ``path``.

    Raises:
        OSError: the folder cannot be created or written (the old file, if any, is unchanged).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def describe_os_error(error: OSError) -> str:
    """``"No space left on device: runs/01/report.json"``: an OSError as one line."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{reason}: {error.filename}" if error.filename else reason


def prepare_out(out: Path) -> Path:
    """Check the output folder of a run and create it: it must be a folder (or a path where
    one can be created) that this process can write into. Returns ``out``.

    Raises:
        OutDirError: ``out`` is a file, lies under a file, cannot be created, or cannot be
            written (read-only, no permission, full disk); the message says which and what to do.
    """
    fix = "choose another --out"
    try:
        if out.exists() and not out.is_dir():
            raise OutDirError(f"--out {out} is a file, not a folder: remove it or {fix}")
        blocker = next((p for p in out.absolute().parents if p.exists()), None)
        if not out.exists() and blocker is not None and not blocker.is_dir():
            raise OutDirError(f"--out {out} cannot be created: {blocker} is a file, not a folder; {fix}")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = describe_os_error(error) if error.filename not in (None, str(out)) else error.strerror
        raise OutDirError(f"--out {out} cannot be created ({reason or error}); {fix}") from None
    try:  # os.access is not enough: ACLs, read-only mounts and full disks only show on writing
        with tempfile.TemporaryFile(dir=out) as probe:
            probe.write(b"0")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise OutDirError(f"--out {out} cannot be written ({error.strerror or error}); {fix}") from None
    return out


def _try_lock(handle: int) -> bool:
    """Take the OS lock of the open lock file without waiting; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(handle, 0, os.SEEK_SET)
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(handle: int) -> None:
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        os.lseek(handle, 0, os.SEEK_SET)
        msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)


def _holder(path: Path) -> str:
    """The process id written in a lock file, or ``"unknown"``."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "unknown"
    return text if text.isdigit() else "unknown"


def _is_file_at(handle: int, path: Path) -> bool:
    """Whether the open file is still the one at ``path`` (not removed by the run that held it)."""
    try:
        here, there = os.fstat(handle), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class RunLock:
    """The lock of one output folder: ``with RunLock(out): ...`` while a run writes into it.

    The lock file ``out/.tt-milestones.lock`` holds the process id of the run. It is held with
    an OS file lock, which ends with the process: a lock file left by a run that was killed is
    taken over. The file is removed when the run ends.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self.handle: int | None = None

    def acquire(self) -> None:
        """Take the lock.

        Raises:
            OutDirError: another live process holds it (naming its process id), or the lock
                file cannot be written.
        """
        for _ in range(10):  # the holder may remove the file between our open and our lock
            try:
                handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OutDirError(
                    f"--out {self.folder} cannot be written ({describe_os_error(error)}); choose another --out"
                ) from None
            if not _try_lock(handle):
                os.close(handle)
                raise OutDirError(
                    f"another tt-milestones run (process {_holder(self.path)}) is writing into {self.folder}: "
                    "wait for it to finish, or choose another --out"
                )
            if _is_file_at(handle, self.path):
                break
            _unlock(handle)
            os.close(handle)
        else:
            raise OutDirError(f"could not lock {self.path}: other runs keep replacing it; choose another --out")
        try:
            os.ftruncate(handle, 0)
            os.lseek(handle, 0, os.SEEK_SET)
            os.write(handle, f"{os.getpid()}\n".encode("ascii"))
        except OSError as error:
            _unlock(handle)
            os.close(handle)
            raise OutDirError(
                f"--out {self.folder} cannot be written ({describe_os_error(error)}); choose another --out"
            ) from None
        self.handle = handle

    def release(self) -> None:
        """Remove the lock file and let the lock go (removing first, so that nobody locks a
        file that is about to disappear without noticing: see :meth:`acquire`)."""
        if self.handle is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            _unlock(self.handle)
        os.close(self.handle)
        self.handle = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def cache_dir() -> Path:
    """The user cache directory of TinyTorch (``$TT_CACHE_DIR`` overrides it)."""
    value = os.environ.get(CACHE_ENV)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinytorch"))


def write_error_log(text: str, folders: list[Path]) -> Path | None:
    """Write the traceback ``text`` of an unexpected error to :data:`ERROR_LOG` in the first of
    ``folders`` that can be written. Returns the log's path, or None when none could be."""
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for folder in folders:
        path = folder / ERROR_LOG
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(f"tt-milestones, {stamp}, process {os.getpid()}\n\n{text}", encoding="utf-8")
        except OSError:
            continue
        return path
    return None
