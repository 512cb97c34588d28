"""fetch(): lookup order, download over HTTP and file://, sha256 (checked once per state of a
file), retries, malformed mirrors, offline errors; confined file names and safe unpacking.

A small HTTP server on 127.0.0.1 plays the data set's home; it can break a transfer off
half-way and can honour (or ignore) ``Range`` requests, so resuming is tested too.
"""

import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tt_data import (
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    RemoteFile,
    UnsafePathError,
    datasets,
    download,
    extract,
    fetch,
)
from tt_data.download import DataSpecError, cache_path

PAYLOAD = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()
SHARED_DATA = os.environ.get("TT_DATA_DIR")  # read before the fixtures hide it


class Server:
    """What the test server serves and how it misbehaves."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate_next = 0  # this many responses stop half-way
        self.ranges = True  # honour Range requests
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def server():
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state.requests.append((self.path, self.headers.get("Range")))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if state.ranges and self.headers.get("Range"):
                start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if state.truncate_next:
                state.truncate_next -= 1
                self.wfile.write(body[start:start + (len(body) - start) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body[start:])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """An empty cache and no TT_DATA_DIR (unless a test sets one)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TT_CACHE_DIR", str(cache))
    monkeypatch.delenv("TT_DATA_DIR", raising=False)
    return tmp_path, cache


def remote(*urls, sha=SHA, **kw):
    return RemoteFile("blob.bin", "things", tuple(urls), sha, **kw)


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/blob.bin"


# -- downloading -----------------------------------------------------------------------------


def test_http_download_lands_verified_in_the_cache_once(server, dirs):
    _, cache = dirs
    server.files["/blob.bin"] = PAYLOAD
    path = fetch(remote(server.url + "/blob.bin"), progress=True)
    assert path == cache / "things" / "blob.bin"
    assert path.read_bytes() == PAYLOAD
    assert not (cache / "things" / "blob.bin.part").exists()
    assert fetch(remote(server.url + "/blob.bin")) == path
    assert len(server.requests) == 1  # the second fetch found the cached copy


def test_file_url_download(dirs):
    tmp, cache = dirs
    source = tmp / "source.bin"
    source.write_bytes(PAYLOAD)
    path = fetch(remote(source.as_uri()), progress=False)
    assert path.read_bytes() == PAYLOAD and path.parent == cache / "things"


def test_bad_checksum_is_rejected_and_nothing_is_kept(server, dirs):
    _, cache = dirs
    server.files["/blob.bin"] = PAYLOAD[:-1] + b"x"
    with pytest.raises(DataNotFoundError, match="sha256 of the file is"):
        fetch(remote(server.url + "/blob.bin"), progress=False)
    assert list((cache / "things").iterdir()) == []


def test_next_mirror_is_tried_after_a_bad_one(server, dirs):
    server.files["/bad/blob.bin"] = b"not it"
    server.files["/good/blob.bin"] = PAYLOAD
    urls = (server.url + "/missing/blob.bin", server.url + "/bad/blob.bin", server.url + "/good/blob.bin")
    assert fetch(remote(*urls), progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/missing/blob.bin", "/bad/blob.bin", "/good/blob.bin"]


def test_truncated_transfer_is_resumed_with_a_range_request(server, dirs):
    server.files["/blob.bin"] = PAYLOAD
    server.truncate_next = 1
    assert fetch(remote(server.url + "/blob.bin"), progress=False).read_bytes() == PAYLOAD
    (_, first), (_, second) = server.requests
    assert first is None and second == f"bytes={len(PAYLOAD) // 2}-"


def test_truncated_transfer_restarts_when_the_server_ignores_range(server, dirs):
    server.files["/blob.bin"] = PAYLOAD
    server.truncate_next, server.ranges = 2, False
    assert fetch(remote(server.url + "/blob.bin"), progress=False).read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_a_transfer_that_always_breaks_off_fails_after_the_retries(server, dirs):
    _, cache = dirs
    server.files["/blob.bin"] = PAYLOAD
    server.truncate_next, server.ranges = 10, False
    with pytest.raises(DataNotFoundError, match=r"attempt 3: received \d+ of 102400 bytes"):
        fetch(remote(server.url + "/blob.bin"), progress=False, retries=3)
    assert len(server.requests) == 3
    assert list((cache / "things").iterdir()) == []


def test_truncated_file_url_is_detected_by_its_size(dirs):
    tmp, _ = dirs
    source = tmp / "short.bin"
    source.write_bytes(PAYLOAD[:1000])
    with pytest.raises(DataNotFoundError, match="sha256"):
        fetch(remote(source.as_uri()), progress=False)


# -- lookup order and offline errors ----------------------------------------------------------


def test_offline_error_says_which_file_to_put_where(dirs):
    _, cache = dirs
    with pytest.raises(DataNotFoundError) as info:
        fetch(remote(closed_port_url()), progress=False)
    message = str(info.value)
    assert "things/blob.bin is missing" in message
    assert str(cache / "things" / "blob.bin") in message
    assert "TT_DATA_DIR" in message and SHA in message
    with pytest.raises(DataNotFoundError, match="download=False"):
        fetch(remote(closed_port_url()), download=False)


def test_tt_data_dir_comes_first_and_is_never_overwritten(dirs, monkeypatch):
    tmp, cache = dirs
    (tmp / "data" / "things").mkdir(parents=True)
    prepared = tmp / "data" / "things" / "blob.bin"
    prepared.write_bytes(PAYLOAD)
    (cache / "things").mkdir(parents=True)
    (cache / "things" / "blob.bin").write_bytes(b"stale")
    monkeypatch.setenv("TT_DATA_DIR", str(tmp / "data"))
    assert fetch(remote(), download=False) == prepared
    prepared.write_bytes(b"corrupt")
    with pytest.raises(ChecksumError, match="expected " + SHA):
        fetch(remote())
    assert prepared.read_bytes() == b"corrupt"


def test_a_corrupt_cached_copy_is_downloaded_again(server, dirs):
    _, cache = dirs
    server.files["/blob.bin"] = PAYLOAD
    (cache / "things").mkdir(parents=True)
    (cache / "things" / "blob.bin").write_bytes(b"half a fi")
    assert fetch(remote(server.url + "/blob.bin"), progress=False).read_bytes() == PAYLOAD


def test_gunzip_checksum_accepts_any_recompression(dirs):
    tmp, _ = dirs
    content = b"IDX bytes " * 1000
    sha = hashlib.sha256(content).hexdigest()
    for level, mtime in ((1, 0), (9, 12345)):
        source = tmp / f"level{level}.gz"
        source.write_bytes(gzip.compress(content, compresslevel=level, mtime=mtime))
        target = fetch(replace(remote(source.as_uri(), sha=sha, checksum_of="gunzip")), progress=False)
        assert gzip.decompress(target.read_bytes()) == content
        target.unlink()


# -- the catalogue's own downloads ------------------------------------------------------------


def test_mnist_downloads_from_a_mirror_into_the_cache(server, dirs, monkeypatch):
    if SHARED_DATA is None:
        pytest.skip("TT_DATA_DIR is unset: this test serves its MNIST files over HTTP")
    source = Path(SHARED_DATA) / "mnist"
    _, cache = dirs
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        server.files["/mirror/" + name] = (source / name).read_bytes()
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", (server.url + "/nowhere/", server.url + "/mirror/"))
    images, labels = datasets.load_arrays("mnist", "test", progress=False)
    assert images.shape == (10000, 1, 28, 28) and labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert (cache / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()
    assert np.bincount(labels).tolist()[:3] == [980, 1135, 1032]



# -- malformed mirrors -----------------------------------------------------------------------


def test_malformed_urls_fall_through_to_the_next_mirror(server, dirs):
    server.files["/blob.bin"] = PAYLOAD
    urls = ("htp:/nowhere/blob.bin", "not a url", "http://[::1/blob.bin", "ftp://host/blob.bin", "https:///blob.bin",
            "http://127.0.0.1:notaport/blob.bin", server.url + "/blob.bin")
    assert fetch(remote(*urls), progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in server.requests] == ["/blob.bin"]


def test_every_malformed_url_is_named_when_none_works(dirs):
    with pytest.raises(DataNotFoundError) as info:
        fetch(remote("htp:/nowhere/blob.bin", "http://[::1/blob.bin"), progress=False)
    message = str(info.value)
    assert "'htp:/nowhere/blob.bin': not a download URL: it must start with https://" in message
    assert "'http://[::1/blob.bin': not a valid URL" in message
    assert "things/blob.bin is missing" in message


# -- verified once, remembered across processes -----------------------------------------------


@pytest.fixture
def prepared(dirs, monkeypatch):
    """``blob.bin`` in a fresh TT_DATA_DIR, and a counter of the times a file is hashed."""
    tmp, cache = dirs
    folder = tmp / "data" / "things"
    folder.mkdir(parents=True)
    (folder / "blob.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("TT_DATA_DIR", str(tmp / "data"))
    hashed = []
    real = download.sha256_of
    monkeypatch.setattr(download, "sha256_of", lambda path, gunzip=False: hashed.append(Path(path)) or real(path, gunzip))
    return folder / "blob.bin", cache, hashed


def test_a_verified_file_is_remembered_by_path_size_and_mtime(prepared, monkeypatch):
    path, cache, hashed = prepared
    assert fetch(remote(), download=False) == path and hashed == [path]
    entry = json.loads((cache / "verified.json").read_text())["files"][str(path.resolve())]
    assert entry == {"size": len(PAYLOAD), "mtime_ns": path.stat().st_mtime_ns, "sha256": SHA, "of": "file"}
    monkeypatch.setattr(download, "_verified", set())  # as in a new process: only verified.json remembers
    assert fetch(remote(), download=False) == path and hashed == [path]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: checked again
    assert fetch(remote(), download=False) == path and hashed == [path, path]


def test_a_changed_file_is_caught_although_it_passed_before(prepared, monkeypatch):
    path, _, hashed = prepared
    fetch(remote(), download=False)
    monkeypatch.setattr(download, "_verified", set())
    flipped = bytearray(PAYLOAD)
    flipped[len(flipped) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(ChecksumError, match="expected " + SHA):
        fetch(remote(), download=False)
    assert len(hashed) == 2


def test_an_unreadable_record_is_ignored_and_rewritten(prepared):
    path, cache, _ = prepared
    cache.mkdir(parents=True)
    (cache / "verified.json").write_text("{not json")
    assert fetch(remote(), download=False) == path
    assert str(path.resolve()) in json.loads((cache / "verified.json").read_text())["files"]


def test_a_download_is_remembered_under_its_final_name(server, dirs, monkeypatch):
    _, cache = dirs
    server.files["/blob.bin"] = PAYLOAD
    path = fetch(remote(server.url + "/blob.bin"), progress=False)
    assert list(json.loads((cache / "verified.json").read_text())["files"]) == [str(path.resolve())]


@pytest.mark.parametrize("content", [b"IDX bytes, very compressible " * 4000, np.random.default_rng(0).bytes(60_000)],
                         ids=["deflated", "stored"])
def test_a_gzip_file_with_a_flipped_byte_is_named_with_what_was_expected_and_the_fix(dirs, monkeypatch, content):
    tmp, _ = dirs
    data = bytearray(gzip.compress(content))
    data[len(data) // 2] ^= 0x5A  # a flipped byte, not a truncation: the size is unchanged
    folder = tmp / "data" / "things"
    folder.mkdir(parents=True)
    (folder / "blob.gz").write_bytes(bytes(data))
    monkeypatch.setenv("TT_DATA_DIR", str(tmp / "data"))
    sha = hashlib.sha256(content).hexdigest()
    spec = RemoteFile("blob.gz", "things", ("https://example.org/blob.gz",), sha, checksum_of="gunzip")
    with pytest.raises(ChecksumError) as info:
        fetch(spec, download=False)
    first, *rest = str(info.value).splitlines()
    assert first.startswith(f"{folder / 'blob.gz'}: ")
    assert "cannot be decompressed as gzip" in first or f"expected {sha}" in first
    assert sha in str(info.value)
    assert rest[-1].strip().startswith("fix: replace it with a good copy of things/blob.gz from https://example.org/")


def test_a_corrupt_cached_copy_that_cannot_be_downloaded_again_says_so(dirs):
    _, cache = dirs
    (cache / "things").mkdir(parents=True)
    (cache / "things" / "blob.bin").write_bytes(b"half a fi")
    with pytest.raises(DataNotFoundError) as info:
        fetch(remote(closed_port_url()), progress=False)
    assert "a corrupt copy in the cache was removed" in str(info.value)
    assert not (cache / "things" / "blob.bin").exists()


# -- names confined to their folder ----------------------------------------------------------


@pytest.mark.parametrize("name, folder", [
    ("../../x", "things"), ("..", "things"), ("sub/x", "things"), ("/etc/passwd", "things"), ("a\\..\\b", "things"),
    ("x", "../outside"), ("x", "things/../../outside"), ("x", "/abs"), ("x", "C:/windows"), ("x", ""), ("", "things"),
    ("x", "things/"), ("./x", "things"),
])
def test_a_name_that_could_leave_the_cache_is_refused(dirs, name, folder):
    tmp, _ = dirs
    with pytest.raises(UnsafePathError if name and folder else DataSpecError, match="RemoteFile"):
        RemoteFile(name, folder, ("https://example.org/x",), SHA)
    assert sorted(p.name for p in tmp.iterdir()) == []  # nothing written anywhere


def test_nested_folders_are_fine_and_the_cache_path_is_checked_again(dirs):
    _, cache = dirs
    ok = RemoteFile("train.txt", "tinytalks/splits", (), SHA)
    assert cache_path(ok) == cache / "tinytalks" / "splits" / "train.txt"
    forged = RemoteFile("x", "things", (), SHA)
    object.__setattr__(forged, "name", "../../x")  # past the constructor's check
    with pytest.raises(UnsafePathError, match="outside the cache directory"):
        fetch(forged)


@pytest.mark.parametrize("fields, message", [
    ({"urls": "https://example.org/x"}, "urls must be a tuple"), ({"sha256": "abc"}, "64 hex digits"),
    ({"checksum_of": "gzip"}, "'file' or 'gunzip'"),
])
def test_a_malformed_spec_is_refused(fields, message):
    with pytest.raises(DataSpecError, match=message):
        RemoteFile(**{"name": "x", "folder": "things", "urls": (), "sha256": SHA, **fields})


def test_an_upper_case_digest_and_a_list_of_urls_are_normalised():
    spec = RemoteFile("x", "things", ["https://example.org/x"], SHA.upper())
    assert spec.sha256 == SHA and spec.urls == ("https://example.org/x",) and hash(spec)


# -- unpacking archives ------------------------------------------------------------------------


def make_tar(path, *members):
    """A .tar.gz of (name, bytes) files and (name, "->", target) symbolic links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, *rest in members:
            info = tarfile.TarInfo(name)
            if rest[0] == "->":
                info.type, info.linkname = tarfile.SYMTYPE, rest[1]
                tar.addfile(info)
            else:
                info.size = len(rest[0])
                tar.addfile(info, io.BytesIO(rest[0]))
    return path


@pytest.fixture(params=[True, False], ids=["data-filter", "no-filter"])
def filtering(request, monkeypatch):
    """Run a test with tarfile's data filter, and with the check used on Pythons without it."""
    if request.param and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python's tarfile has no data filter")
    monkeypatch.setattr(download, "_HAS_DATA_FILTER", request.param)
    return request.param


def test_a_safe_archive_is_unpacked_into_its_target(tmp_path, filtering):
    archive = make_tar(tmp_path / "a.tar.gz", ("top.txt", b"one"), ("deep/er/file.bin", PAYLOAD))
    files = extract(archive, tmp_path / "out")
    assert files == [tmp_path / "out" / "top.txt", tmp_path / "out" / "deep" / "er" / "file.bin"]
    assert files[0].read_bytes() == b"one" and files[1].read_bytes() == PAYLOAD


@pytest.mark.parametrize("evil", [("../escaped.txt", b"x"), ("sub/../../escaped.txt", b"x"),
                                  ("link", "->", "/etc/passwd"), ("link", "->", "../escaped.txt")])
def test_a_member_that_would_land_outside_is_refused_and_nothing_is_written(tmp_path, filtering, evil):
    archive = make_tar(tmp_path / "a.tar.gz", ("fine.txt", b"ok"), evil)
    with pytest.raises(UnsafePathError, match="refusing to unpack"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "fine.txt").exists()  # checked before anything is written


def test_an_absolute_member_never_lands_at_its_absolute_path(tmp_path, filtering):
    outside = tmp_path / "absolute.txt"
    archive = make_tar(tmp_path / "a.tar.gz", (str(outside), b"x"))
    try:
        files = extract(archive, tmp_path / "out")
    except UnsafePathError:
        assert not filtering  # without the filter, an absolute name is refused
    else:
        assert filtering and files == [tmp_path / "out" / str(outside).lstrip("/")]  # the filter strips the '/'
    assert not outside.exists()


def test_a_symlink_already_in_the_target_cannot_be_followed_out(tmp_path, filtering):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "door").symlink_to(tmp_path / "elsewhere")
    archive = make_tar(tmp_path / "a.tar.gz", ("door/planted.txt", b"x"))
    with pytest.raises(UnsafePathError):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "elsewhere" / "planted.txt").exists()


def test_a_file_that_is_not_an_archive_is_a_format_error(tmp_path):
    (tmp_path / "a.tar.gz").write_bytes(b"not a tar file at all")
    with pytest.raises(DataFormatError, match="not a readable tar archive"):
        extract(tmp_path / "a.tar.gz", tmp_path / "out")
