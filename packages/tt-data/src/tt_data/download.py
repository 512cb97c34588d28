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

Every copy found is checked against its sha256 once: the result is remembered by path, size
and modification time in ``<cache>/verified.json``, so later runs (and later processes) skip
re-reading a file nobody has touched, and a file that changed is checked again.

File names are confined: a :class:`RemoteFile` whose ``name`` or ``folder`` would leave the
cache directory (``..``, an absolute path) is refused when it is created. :func:`extract`
unpacks a tar archive only inside its target folder (tarfile's ``data`` filter; on a Python
without it, a check of every member that admits only plain files and folders).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from tt_core.errors import TinyTorchError

from ._progress import progress_bar

CHUNK = 1 << 20
TIMEOUT = 30  # seconds without data before a transfer counts as broken
URL_SCHEMES = ("https", "http", "file")
VERIFIED_RECORD = "verified.json"  # in the cache directory: files whose sha256 matched, by state


class DataError(TinyTorchError):
    """A data file that is missing, corrupt, malformed or unsafe; the message names the file
    and says how to fix it."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file is neither in ``TT_DATA_DIR`` nor in the cache, and could not be downloaded."""


class ChecksumError(DataError, ValueError):
    """A data file whose sha256 is not the published one (corrupt, truncated or a different file)."""


class DataFormatError(DataError, ValueError):
    """A data file that is not in the format its data set expects."""


class DataSpecError(DataError, ValueError):
    """A :class:`RemoteFile` whose description cannot be right (no URL list, a malformed sha256...)."""


class UnsafePathError(DataError, ValueError):
    """A file name that would leave its folder: a download spec's name or folder, or an archive member."""


class _Truncated(Exception):
    """The server closed the connection before sending the whole file."""


@dataclass(frozen=True)
class RemoteFile:
    """One data file: where it lives locally and where it can be downloaded.

    Args:
        name: the file name, e.g. ``"train-images-idx3-ubyte.gz"`` (a plain name: no ``/``).
        folder: its folder under ``TT_DATA_DIR`` and under the cache, e.g. ``"mnist"`` or
            ``"tinytalks/splits"`` (relative, without ``..``).
        urls: where to download it, tried in order (``https://``, ``http://`` or ``file://``).
        sha256: the expected digest (64 hex digits).
        size: the file's size in bytes, when known (progress bar, truncation check).
        checksum_of: ``"file"`` (the bytes on disk) or ``"gunzip"`` (the decompressed bytes).

    Raises:
        UnsafePathError: ``name`` or ``folder`` could lead outside the data folder (``..``, an
            absolute path, a backslash, a drive letter).
        DataSpecError: ``urls`` is not a sequence of strings, ``sha256`` is not 64 hex digits,
            or ``checksum_of`` is neither ``"file"`` nor ``"gunzip"``.
    """

    name: str
    folder: str
    urls: tuple[str, ...]
    sha256: str
    size: int | None = None
    checksum_of: Literal["file", "gunzip"] = "file"

    def __post_init__(self) -> None:
        _check_relative(self.name, "name", nested=False)
        _check_relative(self.folder, "folder", nested=True)
        if isinstance(self.urls, (str, bytes)) or not all(isinstance(url, str) for url in self.urls):
            raise DataSpecError(f"RemoteFile {self.name!r}: urls must be a tuple of URL strings, "
                                f"e.g. ('https://host/{self.name}',); got {self.urls!r}")
        if not (isinstance(self.sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256)):
            raise DataSpecError(f"RemoteFile {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}")
        if self.checksum_of not in ("file", "gunzip"):
            raise DataSpecError(f"RemoteFile {self.name!r}: checksum_of must be 'file' or 'gunzip', "
                                f"got {self.checksum_of!r}")
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "sha256", self.sha256.lower())

    @property
    def relative(self) -> str:
        return f"{self.folder}/{self.name}"


def _check_relative(value: object, what: str, nested: bool) -> None:
    """Raise unless ``value`` is a relative path that cannot climb out of the folder it is joined to."""
    if not isinstance(value, str) or not value:
        raise DataSpecError(f"RemoteFile {what} must be a non-empty string, got {value!r}")
    parts = value.split("/")
    unsafe = (
        "\\" in value or "\0" in value or os.path.isabs(value) or re.match(r"[A-Za-z]:", value)
        or any(part in ("", ".", "..") for part in parts) or (not nested and len(parts) > 1)
    )
    if unsafe:
        shape = "a relative folder such as 'mnist' or 'tinytalks/splits'" if nested else \
            "a plain file name such as 'train.txt'"
        raise UnsafePathError(f"RemoteFile {what} {value!r} could lead outside the data folder: it must be {shape} "
                              "(no '..' or '.', no leading '/', no backslash or drive letter)")


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


def _within(path: Path, root: Path) -> bool:
    """Whether ``path`` lies inside ``root``, compared after normalising both (``..`` removed)."""
    root_text = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([root_text, os.path.normpath(os.path.abspath(path))]) == root_text


def cache_path(remote: RemoteFile) -> Path:
    """``<cache>/<folder>/<name>``: where ``remote`` is downloaded to.

    Raises:
        UnsafePathError: the path would lie outside the cache directory.
    """
    root = cache_dir()
    path = root / remote.folder / remote.name
    if not _within(path, root):
        raise UnsafePathError(f"{remote.relative!r} would be written outside the cache directory {root}")
    return path


def locate(remote: RemoteFile) -> Path | None:
    """The first existing copy: ``$TT_DATA_DIR/<folder>/<name>``, then the cache; else None."""
    for root in search_roots():
        path = root / remote.folder / remote.name
        if path.is_file():
            return path
    return None


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place, so a
    crash never leaves half a file under the real name (the temp file is removed on error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- checking --------------------------------------------------------------------------------


def sha256_of(path: str | os.PathLike, gunzip: bool = False) -> str:
    """The sha256 (hex) of a file, or of its decompressed content when ``gunzip``."""
    digest = hashlib.sha256()
    opener = gzip.open if gunzip else open
    with opener(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


_verified: set[tuple] = set()  # (path, size, mtime_ns, sha256, checksum_of) checked in this process


def verify(path: Path, remote: RemoteFile, *, remember: bool = True) -> None:
    """Check that ``path`` holds the file ``remote`` describes, reading it only when needed.

    A file whose state (resolved path, size, modification time) passed the check before,
    in this process or -- through ``<cache>/verified.json`` -- in an earlier one, is not read
    again; any change to the file makes it be checked anew.

    Args:
        path: the copy to check.
        remote: what it must be (its ``sha256``, of the file or of its decompressed content).
        remember: record a passed check in ``verified.json`` (a temporary download is not).

    Raises:
        ChecksumError: the digest differs, or the file cannot be read (a ``.gz`` that does not
            decompress); the message names the file, the expected sha256 and the fix.
    """
    try:
        where, state = _state(path, remote)
    except OSError as error:
        raise ChecksumError(_bad_file_message(path, remote, f"cannot be read ({error.strerror or error})")) from None
    key = (where, *state.values())
    if key in _verified:
        return
    if _read_record().get(where) == state:
        _verified.add(key)
        return
    gunzip = remote.checksum_of == "gunzip"
    try:
        actual = sha256_of(path, gunzip=gunzip)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        what = "decompressed as gzip" if gunzip else "read"
        raise ChecksumError(_bad_file_message(path, remote, f"corrupt, it cannot be {what} "
                                              f"({type(error).__name__}: {error})")) from None
    if actual != remote.sha256:
        what = "decompressed content" if gunzip else "file"
        raise ChecksumError(_bad_file_message(path, remote, f"sha256 of the {what} is {actual}, "
                                              f"expected {remote.sha256}"))
    _verified.add(key)
    if remember:
        _remember(where, state)


def _state(path: Path, remote: RemoteFile) -> tuple[str, dict]:
    """What a passed check is remembered by: the resolved path, and the file's size and
    modification time with the digest it matched."""
    stat = path.stat()
    return str(path.resolve()), {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": remote.sha256,
                                 "of": remote.checksum_of}


def _bad_file_message(path: Path, remote: RemoteFile, problem: str) -> str:
    lines = [f"{path}: {problem}"]
    if "expected" not in problem:
        what = "its decompressed content" if remote.checksum_of == "gunzip" else "it"
        lines.append(f"  expected {remote.relative} with sha256 {remote.sha256} (of {what})")
    source = f" from {remote.urls[0]}" if remote.urls else ""
    if _within(path, cache_dir()):
        lines.append(f"  fix: delete it; it is then downloaded again{source}")
    else:
        again = "downloaded into the cache" if remote.urls else f"looked for in the cache ({cache_dir()})"
        lines.append(f"  fix: replace it with a good copy of {remote.relative}{source}, or remove it "
                     f"(or unset TT_DATA_DIR) so that it is {again}")
    return "\n".join(lines)


def _read_record() -> dict[str, dict]:
    """``verified.json``'s entries (path -> state); empty when it is missing or unreadable."""
    try:
        files = json.loads((cache_dir() / VERIFIED_RECORD).read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _remember(where: str, state: dict) -> None:
    """Add one passed check to ``verified.json``, dropping entries of files that are gone."""
    files = {path: entry for path, entry in _read_record().items() if os.path.exists(path)}
    files[where] = state
    text = json.dumps({"files": files}, indent=1, sort_keys=True).encode("utf-8")
    try:
        write_atomically(cache_dir() / VERIFIED_RECORD, lambda f: f.write(text))
    except OSError:
        pass  # a read-only cache: the file is simply checked again by the next process


# -- fetching --------------------------------------------------------------------------------


def fetch(remote: RemoteFile, *, download: bool = True, progress: bool = True, retries: int = 3) -> Path:
    """The path of a verified copy of ``remote``, downloading it into the cache if needed.

    Args:
        remote: the file.
        download: allow downloading (``False``: only look in ``TT_DATA_DIR`` and the cache).
        progress: show a progress bar while downloading.
        retries: attempts per URL when a transfer breaks off (at least 1).

    Returns:
        The copy in ``TT_DATA_DIR``, else the one in the cache (downloaded there if needed).

    Raises:
        ChecksumError: the copy in ``TT_DATA_DIR`` is not the expected file (it is never
            overwritten; a bad copy in the cache is deleted and downloaded again).
        DataNotFoundError: no copy and no download (offline, or every URL failed); the
            message says where to put the file.
        UnsafePathError: the file's place would lie outside the cache directory.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise DataSpecError(f"retries must be a positive integer, got {retries!r}")
    target = cache_path(remote)
    notes: list[str] = []
    path = locate(remote)
    if path is not None:
        try:
            verify(path, remote)
            return path
        except ChecksumError as error:
            if not _within(path, cache_dir()):
                raise  # a prepared folder is the user's: report, never overwrite
            path.unlink(missing_ok=True)  # a bad cached copy is ours: download it again
            notes.append(f"a corrupt copy in the cache was removed ({str(error).splitlines()[0]})")
    failures: list[str] = []
    if download:
        for url in remote.urls:
            try:
                return _download(url, remote, target, progress, retries, failures)
            except _GiveUpOnUrl:
                continue
    raise DataNotFoundError(_missing_message(remote, target, notes, failures, download))


def _missing_message(remote: RemoteFile, target: Path, notes: list[str], failures: list[str],
                     download: bool) -> str:
    where = data_dir()
    lines = [f"data file {remote.relative} is missing."]
    lines.append(f"  looked in TT_DATA_DIR ({where / remote.folder if where else 'TT_DATA_DIR is not set'}) "
                 f"and in the cache ({target.parent})")
    lines.extend(f"  {note}" for note in notes)
    if not download:
        lines.append("  downloading was switched off (download=False)")
    elif failures:
        lines.append("  downloading failed:")
        lines.extend(f"    {failure}" for failure in failures)
    elif not remote.urls:
        lines.append("  it has no download address: it must be put in place by hand")
    lines.append(f"  fix: download {remote.urls[0] if remote.urls else remote.name} "
                 f"(sha256 {remote.sha256}{' of the decompressed content' if remote.checksum_of == 'gunzip' else ''})")
    lines.append(f"  and put it at {target}, or set TT_DATA_DIR to a folder that holds {remote.relative}")
    return "\n".join(lines)


class _GiveUpOnUrl(Exception):
    """This URL cannot deliver the file; try the next one."""


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be downloaded from (not a URL, an unsupported scheme), or None."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as error:
        return f"not a valid URL ({error})"
    if parts.scheme.lower() not in URL_SCHEMES:
        return "not a download URL: it must start with https://, http:// or file://"
    if parts.scheme.lower() != "file" and not parts.hostname:
        return "the URL names no host"
    return None


def _download(url: str, remote: RemoteFile, target: Path, progress: bool, retries: int,
              failures: list[str]) -> Path:
    """Download ``url`` to ``target`` via ``<target>.part``; retry/resume a broken transfer."""
    problem = _url_problem(url)
    if problem is not None:
        failures.append(f"{url!r}: {problem}")
        raise _GiveUpOnUrl
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, retries + 1):
        try:
            _transfer(url, part, remote, progress)
        except _Truncated as error:
            failures.append(f"{url}: attempt {attempt}: {error}")
            continue  # the partial file stays: the next attempt resumes it if the server can
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
            raise _GiveUpOnUrl from None
        try:
            verify(part, remote, remember=False)
        except ChecksumError as error:
            part.unlink(missing_ok=True)
            failures.append(f"{url}: {str(error).splitlines()[0]}")
            raise _GiveUpOnUrl from None
        os.replace(part, target)
        _remember(*_state(target, remote))
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


# -- unpacking -------------------------------------------------------------------------------

_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")  # Python 3.12, and 3.8.17 / 3.9.17 / 3.10.12 / 3.11.4 on


def extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Unpack a tar archive (plain, ``.gz``, ``.bz2`` or ``.xz``) into ``target``, never outside it.

    Every member is checked before anything is written, so an unsafe archive leaves nothing
    behind. With tarfile's ``data`` filter (most Pythons) a member may not climb out of
    ``target`` (``..``, a link pointing outside, a device file); leading ``/`` are stripped and
    permission bits are made safe. On a Python without the filter, only plain files and folders
    whose resolved place is inside ``target`` are admitted, and links are refused.

    Args:
        archive: the tar file.
        target: the folder to unpack into (created when missing).

    Returns:
        The paths of the extracted files (not folders), in the order of the archive.

    Raises:
        UnsafePathError: a member would land outside ``target``, or is of a kind that is not
            extracted; the message names the member.
        DataFormatError: ``archive`` is not a readable tar archive.
    """
    archive, target = Path(archive), Path(target)
    check = _filtered_member if _HAS_DATA_FILTER else _plain_member
    try:
        with tarfile.open(archive) as tar:
            members = [check(member, target, archive) for member in tar.getmembers()]
            target.mkdir(parents=True, exist_ok=True)
            if _HAS_DATA_FILTER:
                tar.extractall(target, members=members, filter="data")
            else:
                for member in members:
                    _extract_plain(tar, member, target)
    except getattr(tarfile, "FilterError", ()) as error:  # a link made by an earlier member
        raise UnsafePathError(f"refusing to unpack {archive}: {error}") from None
    except (tarfile.TarError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{archive} is not a readable tar archive ({type(error).__name__}: {error})") from None
    return [target / member.name for member in members if member.isfile()]


def _filtered_member(member: tarfile.TarInfo, target: Path, archive: Path) -> tarfile.TarInfo:
    try:
        return tarfile.data_filter(member, str(target))
    except tarfile.FilterError as error:
        raise UnsafePathError(f"refusing to unpack {archive}: {error}; nothing was extracted") from None


def _plain_member(member: tarfile.TarInfo, target: Path, archive: Path) -> tarfile.TarInfo:
    """The check used without tarfile's filter: a file or folder that resolves inside ``target``."""
    if not (member.isfile() or member.isdir()):
        raise UnsafePathError(f"refusing to unpack {archive}: member {member.name!r} is a link or special file, "
                              "and this Python's tarfile has no data filter to check where it points; "
                              "nothing was extracted")
    root = os.path.realpath(target)
    place = os.path.realpath(os.path.join(root, member.name))
    if os.path.isabs(member.name) or os.path.commonpath([root, place]) != root:
        raise UnsafePathError(f"refusing to unpack {archive}: member {member.name!r} would land outside {target}; "
                              "nothing was extracted")
    return member


def _extract_plain(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    place = Path(os.path.realpath(target)) / member.name
    if member.isdir():
        place.mkdir(parents=True, exist_ok=True)
        return
    place.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) as source, open(place, "wb") as out:
        shutil.copyfileobj(source, out)
    place.chmod(0o755 if member.mode & 0o100 else 0o644)
