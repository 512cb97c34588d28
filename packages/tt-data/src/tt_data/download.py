"""Finding a data file, or downloading it once, checked by sha256.

Every file a data set needs is described by a :class:`RemoteFile` (its name, the folder it
lives in, where to download it, its sha256). :func:`fetch` looks for it, in this order:

1. ``$TT_DATA_DIR/<folder>/<name>`` -- a folder you prepared (tests and CI point it at
   ``../shared/data``);
2. ``<cache>/<folder>/<name>``, the user cache directory
   (``platformdirs.user_cache_dir("tinytorch")``, or ``$TT_CACHE_DIR`` when set);
3. otherwise it downloads the file into the cache from its URLs, in order: streamed into
   ``<name>.part`` with a progress bar, resumed (HTTP ``Range``) or restarted when the
   transfer breaks off early, verified, then renamed into place (an atomic move, so the
   cache never holds half a file under the real name).

Offline and with no copy, it raises :class:`DataNotFoundError` naming the file and where to
put it. Any package can describe its own files; tt-language fetches its text corpora this way::

    path = fetch(RemoteFile("input.txt", "tinyshakespeare", urls=(...,), sha256="86c4..."))

The checksum is normally of the file itself. For a gzip file whose *content* matters, but
which mirrors recompress differently (MNIST), ``checksum_of="gunzip"`` pins the sha256 of the
decompressed bytes instead.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tt_core.errors import TinyTorchError

from ._progress import progress_bar

CHUNK = 1 << 20
TIMEOUT = 30  # seconds without data before a transfer counts as broken


class DataNotFoundError(TinyTorchError, FileNotFoundError):
    """A data file is neither in ``TT_DATA_DIR`` nor in the cache, and could not be downloaded."""


class ChecksumError(TinyTorchError, ValueError):
    """A data file whose sha256 is not the published one (corrupt, truncated or a different file)."""


class _Truncated(Exception):
    """The server closed the connection before sending the whole file."""


@dataclass(frozen=True)
class RemoteFile:
    """One data file: where it lives locally and where it can be downloaded.

    Args:
        name: the file name, e.g. ``"train-images-idx3-ubyte.gz"``.
        folder: its folder under ``TT_DATA_DIR`` and under the cache, e.g. ``"mnist"``.
        urls: where to download it, tried in order (``https://``, ``http://`` or ``file://``).
        sha256: the expected digest (hex).
        size: the file's size in bytes, when known (progress bar, truncation check).
        checksum_of: ``"file"`` (the bytes on disk) or ``"gunzip"`` (the decompressed bytes).
    """

    name: str
    folder: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None
    checksum_of: Literal["file", "gunzip"] = "file"

    @property
    def relative(self) -> str:
        return f"{self.folder}/{self.name}"


# -- where files live ------------------------------------------------------------------------


def data_dir() -> Path | None:
    """``$TT_DATA_DIR``, the folder of prepared data sets, or None when unset."""
    value = os.environ.get("TT_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache directory: downloads and decoded arrays (``$TT_CACHE_DIR`` overrides)."""
    value = os.environ.get("TT_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinytorch"))


def search_roots() -> list[Path]:
    """Where data files are looked for, in order: ``$TT_DATA_DIR`` (when set), then the cache."""
    return [root for root in (data_dir(), cache_dir()) if root is not None]


def locate(remote: RemoteFile) -> Path | None:
    """The first existing copy: ``$TT_DATA_DIR/<folder>/<name>``, then the cache; else None."""
    for root in search_roots():
        path = root / remote.folder / remote.name
        if path.is_file():
            return path
    return None


# -- checking --------------------------------------------------------------------------------


def sha256_of(path: str | os.PathLike, gunzip: bool = False) -> str:
    """The sha256 (hex) of a file, or of its decompressed content when ``gunzip``."""
    digest = hashlib.sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


_verified: set[tuple[str, int, int, str]] = set()  # (path, size, mtime, sha256) checked in this process


def verify(path: Path, remote: RemoteFile) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has the sha256 ``remote`` expects."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, remote.sha256)
    if key in _verified:
        return
    try:
        actual = sha256_of(path, gunzip=remote.checksum_of == "gunzip")
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise ChecksumError(f"{path} cannot be read as expected ({type(error).__name__}: {error})") from None
    if actual != remote.sha256:
        what = "decompressed content" if remote.checksum_of == "gunzip" else "file"
        raise ChecksumError(f"{path}: sha256 of the {what} is {actual}, expected {remote.sha256}")
    _verified.add(key)


# -- fetching --------------------------------------------------------------------------------


def fetch(remote: RemoteFile, *, download: bool = True, progress: bool = True, retries: int = 3) -> Path:
    """The path of a verified copy of ``remote``, downloading it into the cache if needed.

    Args:
        remote: the file.
        download: allow downloading (``False``: only look in ``TT_DATA_DIR`` and the cache).
        progress: show a progress bar while downloading.
        retries: attempts per URL when a transfer breaks off.

    Raises:
        ChecksumError: the copy in ``TT_DATA_DIR`` is not the expected file.
        DataNotFoundError: no copy and no download (offline, or every URL failed).
    """
    path = locate(remote)
    if path is not None:
        try:
            verify(path, remote)
            return path
        except ChecksumError:
            if not path.is_relative_to(cache_dir()):
                raise  # a prepared folder is the user's: report, never overwrite
            path.unlink()  # a bad cached copy is ours: download it again
    target = cache_dir() / remote.folder / remote.name
    failures: list[str] = []
    if download:
        for url in remote.urls:
            try:
                return _download(url, remote, target, progress, retries, failures)
            except _GiveUpOnUrl:
                continue
    raise DataNotFoundError(_missing_message(remote, target, failures, download))


def _missing_message(remote: RemoteFile, target: Path, failures: list[str], download: bool) -> str:
    where = data_dir()
    lines = [f"data file {remote.relative} is missing."]
    lines.append(f"  looked in TT_DATA_DIR ({where / remote.folder if where else 'TT_DATA_DIR is not set'}) "
                 f"and in the cache ({target.parent})")
    if not download:
        lines.append("  downloading was switched off (download=False)")
    elif failures:
        lines.append("  downloading failed:")
        lines.extend(f"    {failure}" for failure in failures)
    lines.append(f"  fix: download {remote.urls[0] if remote.urls else remote.name} "
                 f"(sha256 {remote.sha256}{' of the decompressed content' if remote.checksum_of == 'gunzip' else ''})")
    lines.append(f"  and put it at {target}, or set TT_DATA_DIR to a folder that holds {remote.relative}")
    return "\n".join(lines)


class _GiveUpOnUrl(Exception):
    """This URL cannot deliver the file; try the next one."""


def _download(url: str, remote: RemoteFile, target: Path, progress: bool, retries: int,
              failures: list[str]) -> Path:
    """Download ``url`` to ``target`` via ``<target>.part``; retry/resume a broken transfer."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _transfer(url, part, remote, progress)
        except _Truncated as error:
            failures.append(f"{url}: attempt {attempt}: {error}")
            continue  # the partial file stays: the next attempt resumes it if the server can
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
            raise _GiveUpOnUrl from None
        try:
            verify(part, remote)
        except ChecksumError as error:
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {error}")
            raise _GiveUpOnUrl from None
        os.replace(part, target)
        return target
    part.unlink(missing_ok=True)
    raise _GiveUpOnUrl


def _transfer(url: str, part: Path, remote: RemoteFile, progress: bool) -> None:
    """Stream ``url`` into ``part``, resuming an existing partial file when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "tinytorch-data"})
    if have and url.startswith(("http://", "https://")):
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        resumed = getattr(response, "status", 200) == 206
        if not resumed:
            have = 0
        total = _expected_size(response, have, remote)
        received = have
        bar = progress_bar(f"downloading {remote.name}", total, transfer=True, completed=have, enabled=progress)
        with open(part, "ab" if resumed else "wb") as out, bar as advance:
            try:
                while block := response.read(CHUNK):
                    out.write(block)
                    received += len(block)
                    advance(len(block))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as error:
                raise _Truncated(f"connection broke off after {received} bytes ({type(error).__name__})") from None
    if total is not None and received < total:
        raise _Truncated(f"received {received} of {total} bytes")


def _expected_size(response, have: int, remote: RemoteFile) -> int | None:
    """The full file size: from ``Content-Range``/``Content-Length``, else the spec's ``size``."""
    content_range = response.headers.get("Content-Range", "")
    match = re.search(r"/(\d+)$", content_range)
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    if length is not None and length.isdigit():
        return have + int(length)
    return remote.size
