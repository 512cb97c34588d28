"""fetch(): lookup order, download over HTTP and file://, sha256, retries, offline errors.

A small HTTP server on 127.0.0.1 plays the data set's home; it can break a transfer off
half-way and can honour (or ignore) ``Range`` requests, so resuming is tested too.
"""

import gzip
import hashlib
import http.server
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tt_data import ChecksumError, DataNotFoundError, RemoteFile, datasets, fetch

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
