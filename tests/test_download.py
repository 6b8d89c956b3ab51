"""Tests of dlnotes.download against a real HTTP server on 127.0.0.1 (no other network)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dlnotes import download
from dlnotes.download import CacheError, ChecksumError, DownloadError, Remote

# Read at import time: the autouse fixture below removes the variable from every test's
# environment, but the mirror test (l) wants the folder CI configured.
MIRROR_ENV = os.environ.get("DLNOTES_MIRROR", "").strip()

NAME = "test-blob"
FILENAME = "test-data/blob.bin"


def payload(size: int = 50_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def checksum(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def files_below(folder: Path) -> list[Path]:
    """Every file (not folder) below ``folder``, hidden temporary files included."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---------------------------------------------------------------- a loopback HTTP server


class Server:
    """Routes map a path to ``behaviour(handler, attempt)``; ``hits`` counts requests per path."""

    def __init__(self, httpd: http.server.ThreadingHTTPServer):
        self.httpd = httpd
        self.routes: dict[str, object] = {}
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()  # wakes handlers that are sleeping to cause a timeout
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{path}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())


def serve(body: bytes):
    def behaviour(handler, attempt):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return behaviour


def truncated(body: bytes, keep: int):
    """Promise ``len(body)`` bytes, send ``keep`` of them, close the connection."""
    def behaviour(handler, attempt):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:keep])
        handler.wfile.flush()
        handler.close_connection = True
    return behaviour


def stalled(server: Server, seconds: float):
    """Send nothing for ``seconds`` (or until the test ends)."""
    def behaviour(handler, attempt):
        server.release.wait(seconds)
    return behaviour


def by_attempt(*behaviours):
    """The first request gets the first behaviour, and so on; the last one repeats."""
    def behaviour(handler, attempt):
        behaviours[min(attempt, len(behaviours) - 1)](handler, attempt)
    return behaviour


@pytest.fixture
def server():
    holder: dict[str, Server] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            srv = holder["server"]
            path = self.path.lstrip("/")
            with srv.lock:
                attempt = srv.hits[path]
                srv.hits[path] += 1
            behaviour = srv.routes.get(path)
            if behaviour is None:
                self.send_error(404)
                return
            try:
                behaviour(self, attempt)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        def log_message(self, format, *args):  # keep the test output quiet
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    srv = holder["server"] = Server(httpd)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch, tmp_path):
    """No mirror, a temporary cache, and no proxy between urllib and 127.0.0.1."""
    monkeypatch.delenv("DLNOTES_MIRROR", raising=False)
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "env-cache"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def register(monkeypatch, url: str, checksums, *, name: str = NAME, filename: str = FILENAME) -> Remote:
    remote = Remote(url, tuple(checksums), filename, "a test file")
    monkeypatch.setitem(download.REGISTRY, name, remote)
    return remote


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FAST = dict(retries=2, backoff=0, quiet=True)


# ---------------------------------------------------------------- (a) success


def test_download_lands_in_cache_and_is_reused(server, monkeypatch, cache, capsys):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])

    path = download.fetch(NAME, cache=cache, retries=0, backoff=0)
    assert path == cache / FILENAME
    assert path.read_bytes() == body
    assert server.hits["blob"] == 1
    assert "downloading test-blob" in capsys.readouterr().err
    assert files_below(cache) == [path]  # no temporary file left next to it

    again = download.fetch(NAME, cache=cache, retries=0, backoff=0)
    assert again == path and again.read_bytes() == body
    assert server.hits["blob"] == 1  # the verified cached copy was used
    assert capsys.readouterr().err == ""


def test_cache_defaults_to_dlnotes_cache(server, monkeypatch, tmp_path):
    body = payload(1000)
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    path = download.fetch(NAME, **FAST)
    assert path == tmp_path / "env-cache" / FILENAME
    assert path.read_bytes() == body


def test_quiet_prints_nothing(server, monkeypatch, cache, capsys):
    body = payload(1000)
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    download.fetch(NAME, cache=cache, **FAST)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- (b) checksum mismatch


def test_checksum_mismatch_keeps_nothing(server, monkeypatch, cache):
    served, wanted = payload(seed=1), payload(seed=2)
    server.routes["blob"] = serve(served)
    expected, actual = checksum(wanted), checksum(served)
    register(monkeypatch, server.url("blob"), [expected])

    with pytest.raises(ChecksumError) as info:
        download.fetch(NAME, cache=cache, **FAST)
    message = str(info.value)
    assert "blob.bin" in message
    assert expected in message and actual in message
    assert server.hits["blob"] == 1  # a wrong checksum is not retried
    assert files_below(cache) == []  # neither the target nor a *.part file


# ---------------------------------------------------------------- (c) truncated transfer


def test_truncated_transfer_fails_after_retries(server, monkeypatch, cache):
    body = payload()
    server.routes["blob"] = truncated(body, keep=1000)
    register(monkeypatch, server.url("blob"), [checksum(body)])

    with pytest.raises(DownloadError, match=r"after 3 attempts.*truncated") as info:
        download.fetch(NAME, cache=cache, **FAST)
    assert info.type is DownloadError  # not a checksum problem: the length check caught it
    assert server.hits["blob"] == 3
    assert files_below(cache) == []


def test_truncated_first_attempt_is_retried(server, monkeypatch, cache):
    body = payload()
    server.routes["blob"] = by_attempt(truncated(body, keep=1000), serve(body))
    register(monkeypatch, server.url("blob"), [checksum(body)])

    path = download.fetch(NAME, cache=cache, **FAST)
    assert path.read_bytes() == body
    assert server.hits["blob"] == 2
    assert files_below(cache) == [path]


def test_http_error_is_retried_then_reported(server, monkeypatch, cache):
    register(monkeypatch, server.url("missing"), [checksum(b"x")])  # the server answers 404
    with pytest.raises(DownloadError, match=r"after 2 attempts.*404"):
        download.fetch(NAME, cache=cache, retries=1, backoff=0, quiet=True)
    assert server.hits["missing"] == 2
    assert files_below(cache) == []


# ---------------------------------------------------------------- (d) timeout


def test_timeout_raises_download_error(server, monkeypatch, cache):
    server.routes["slow"] = stalled(server, seconds=5)
    register(monkeypatch, server.url("slow"), [checksum(b"never sent")])

    start = time.monotonic()
    with pytest.raises(DownloadError, match="after 2 attempts"):
        download.fetch(NAME, cache=cache, timeout=0.3, retries=1, backoff=0, quiet=True)
    assert time.monotonic() - start < 3  # gave up on the timeout, did not wait for the server
    assert server.hits["slow"] == 2
    assert files_below(cache) == []


# ---------------------------------------------------------------- (e) connection refused


def test_connection_refused_tells_user_about_mirror(monkeypatch, cache):
    register(monkeypatch, f"http://127.0.0.1:{closed_port()}/blob", [checksum(b"x")])
    with pytest.raises(DownloadError, match=r"after 3 attempts.*no mirror is set.*set DLNOTES_MIRROR"):
        download.fetch(NAME, cache=cache, **FAST)
    assert files_below(cache) == []


def test_connection_refused_with_empty_mirror_says_mirror_lacks_file(monkeypatch, cache, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    register(monkeypatch, f"http://127.0.0.1:{closed_port()}/blob", [checksum(b"x")])
    with pytest.raises(DownloadError, match=r"has no blob\.bin.*DLNOTES_MIRROR") as info:
        download.fetch(NAME, cache=cache, mirror=mirror, **FAST)
    assert str(mirror) in str(info.value)


# ---------------------------------------------------------------- (f) mirror


@pytest.mark.parametrize("where", [FILENAME, "blob.bin", "deep/er/folder/blob.bin"])
def test_mirror_is_used_without_network(server, monkeypatch, cache, tmp_path, where):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    mirror = tmp_path / "mirror"
    (mirror / where).parent.mkdir(parents=True, exist_ok=True)
    (mirror / where).write_bytes(body)

    path = download.fetch(NAME, cache=cache, mirror=mirror, **FAST)
    assert path == cache / FILENAME
    assert path.read_bytes() == body
    assert server.total_hits == 0
    assert (mirror / where).read_bytes() == body  # the mirror's copy is left alone
    assert files_below(cache) == [path]


def test_mirror_from_environment(server, monkeypatch, cache, tmp_path):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "blob.bin").write_bytes(body)
    monkeypatch.setenv("DLNOTES_MIRROR", str(mirror))

    assert download.fetch(NAME, cache=cache, **FAST).read_bytes() == body
    assert server.total_hits == 0


def test_mirror_with_wrong_content_raises(server, monkeypatch, cache, tmp_path):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    wrong = mirror / "sub" / "blob.bin"
    wrong.write_bytes(body[:-1] + b"!")

    with pytest.raises(ChecksumError) as info:
        download.fetch(NAME, cache=cache, mirror=mirror, **FAST)
    message = str(info.value)
    assert str(wrong) in message
    assert checksum(body) in message and checksum(wrong.read_bytes()) in message
    assert server.total_hits == 0
    assert files_below(cache) == []


# ---------------------------------------------------------------- (g) corrupt cache


def test_corrupt_cached_file_is_replaced(server, monkeypatch, cache):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    target = cache / FILENAME
    target.parent.mkdir(parents=True)
    target.write_bytes(b"half a file")

    path = download.fetch(NAME, cache=cache, **FAST)
    assert path == target
    assert path.read_bytes() == body
    assert server.hits["blob"] == 1
    assert files_below(cache) == [path]


def test_corrupt_cached_file_is_replaced_from_mirror(server, monkeypatch, cache, tmp_path):
    body = payload()
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    (cache / FILENAME).parent.mkdir(parents=True)
    (cache / FILENAME).write_bytes(b"stale")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "blob.bin").write_bytes(body)

    assert download.fetch(NAME, cache=cache, mirror=mirror, **FAST).read_bytes() == body
    assert server.total_hits == 0


# ---------------------------------------------------------------- (h) unknown name


def test_unknown_name_lists_known_names(cache):
    with pytest.raises(LookupError, match=r"'no-such-data'.*fashion-mnist-train-images.*timemachine"):
        download.fetch("no-such-data", cache=cache)


# ---------------------------------------------------------------- (i) unwritable cache


def test_unwritable_cache_raises_cache_error(server, monkeypatch, tmp_path):
    body = payload(1000)
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), [checksum(body)])
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache directory should be")

    with pytest.raises(CacheError, match="DLNOTES_CACHE"):
        download.fetch(NAME, cache=blocker, **FAST)
    assert server.total_hits == 0  # failed before the network, and was not retried
    assert blocker.read_text() == "a file where the cache directory should be"


def test_unwritable_cache_with_mirror_raises_cache_error(monkeypatch, tmp_path):
    body = payload(1000)
    register(monkeypatch, f"http://127.0.0.1:{closed_port()}/blob", [checksum(body)])
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "blob.bin").write_bytes(body)
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    with pytest.raises(CacheError, match=re.escape(str(blocker))):
        download.fetch(NAME, cache=blocker, mirror=mirror, **FAST)


# ---------------------------------------------------------------- (j) several checksums


@pytest.mark.parametrize("which", [0, 1])
def test_any_listed_checksum_is_accepted(server, monkeypatch, cache, which):
    body, other = payload(seed=3), payload(seed=4)
    served = (body, other)[which]
    server.routes["blob"] = serve(served)
    register(monkeypatch, server.url("blob"), [checksum(body, "sha1"), checksum(other, "sha256")])

    path = download.fetch(NAME, cache=cache, **FAST)
    assert path.read_bytes() == served
    # and the cached copy verifies against the same list on the next call
    assert download.fetch(NAME, cache=cache, **FAST) == path
    assert server.hits["blob"] == 1


def test_checksum_hex_is_case_insensitive(server, monkeypatch, cache):
    body = payload(1000)
    server.routes["blob"] = serve(body)
    register(monkeypatch, server.url("blob"), ["md5:" + hashlib.md5(body).hexdigest().upper()])
    assert download.fetch(NAME, cache=cache, **FAST).read_bytes() == body


def test_mismatch_with_two_checksums_names_both(server, monkeypatch, cache):
    served = payload(seed=5)
    server.routes["blob"] = serve(served)
    expected = [checksum(b"a", "sha1"), checksum(b"b", "sha256")]
    register(monkeypatch, server.url("blob"), expected)
    with pytest.raises(ChecksumError, match=rf"{expected[0]} or {expected[1]}, got {checksum(served, 'sha1')}"):
        download.fetch(NAME, cache=cache, **FAST)
    assert files_below(cache) == []


def test_a_prefix_checksum_matches_the_digests_first_digits_only(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not really weights")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert download._matches(path, (f"sha256-prefix:{digest[:8]}",)) == (True, f"sha256:{digest}")
    wrong = f"{int(digest[:8], 16) ^ 1:08x}"
    assert download._matches(path, (f"sha256-prefix:{wrong}",))[0] is False
    assert download._matches(path, (f"sha256:{digest[:8]}",))[0] is False  # without the suffix: the full digest


# ---------------------------------------------------------------- (k) the registry itself

HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64}


@pytest.mark.parametrize("name", sorted(download.REGISTRY))
def test_registry_entry_is_well_formed(name):
    remote = download.REGISTRY[name]
    assert remote.checksums, name
    for entry in remote.checksums:
        algorithm, sep, digest = entry.partition(":")
        if algorithm.endswith(download.PREFIX):  # only the first digits are published: at least 8 of them
            algorithm = algorithm.removesuffix(download.PREFIX)
            assert algorithm in HEX_LENGTH and re.fullmatch(rf"[0-9a-f]{{8,{HEX_LENGTH[algorithm]}}}", digest), entry
            continue
        assert sep and algorithm in HEX_LENGTH, entry
        assert re.fullmatch(rf"[0-9a-f]{{{HEX_LENGTH[algorithm]}}}", digest), entry
    assert len(set(remote.checksums)) == len(remote.checksums)
    assert remote.url.startswith(("http://", "https://")), remote.url
    upstream = urllib.parse.unquote(remote.url.rsplit("/", 1)[-1])
    if upstream != Path(remote.filename).name:  # saved under another name: the description says which
        assert upstream in remote.description and Path(upstream).suffix == Path(remote.filename).suffix, name
    relative = Path(remote.filename)
    assert not relative.is_absolute() and ".." not in relative.parts


def test_registry_filenames_are_unique():
    filenames = [r.filename for r in download.REGISTRY.values()]
    assert len(filenames) == len(set(filenames))
    # the mirror is searched by base name, so those must be unique too
    basenames = [Path(f).name for f in filenames]
    assert len(basenames) == len(set(basenames))


# ---------------------------------------------------------------- (l) the real mirror


@pytest.mark.skipif(not MIRROR_ENV, reason="DLNOTES_MIRROR is not set (CI sets it to ../shared/data)")
def test_real_mirror_copies_verify(tmp_path):
    mirror = Path(MIRROR_ENV).expanduser()
    assert mirror.is_dir(), f"DLNOTES_MIRROR={MIRROR_ENV} is not a folder"
    found = []
    for name, remote in sorted(download.REGISTRY.items()):
        copy = download._find_in_mirror(mirror, remote)
        if copy is None:
            continue
        ok, actual = download._matches(copy, remote.checksums)
        assert ok, f"{copy} does not match {name}: expected {remote.checksums}, got {actual}"
        # and fetch installs it into a cache without any network (the URLs are never opened)
        path = download.fetch(name, cache=tmp_path / "cache", mirror=mirror, retries=0, quiet=True)
        assert path.read_bytes() == copy.read_bytes()
        found.append(name)
    assert len(found) >= 5, f"only {found} found in {mirror}"
