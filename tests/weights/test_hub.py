"""Downloads against a local HTTP server: hash check, cache, and no network."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import re
import socket
import threading

import pytest
import torch

import swinseg
from swinseg import SwinTransformer
from swinseg.configs.schema import full_config
from swinseg.models import zoo
from swinseg.weights import cache_dir, download
from swinseg.weights.formats import from_native

from ..helpers import randomize_

SMALL = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4))


def _publish(root, model, stem="weights"):
    """Write an official-layout checkpoint named like MMSegmentation's: ``stem-<sha256[:8]>.pth``."""
    tmp = root / "tmp.pth"
    torch.save({"model": from_native(model.state_dict(), "official")}, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = root / f"{stem}-{digest[:8]}.pth"
    tmp.rename(path)
    return path, digest


def test_download_checks_hash_and_caches(swinseg_home, http_server):
    root, url = http_server
    path, digest = _publish(root, randomize_(SwinTransformer(**SMALL, num_classes=5)))
    local = download(f"{url}/{path.name}", progress=False)
    assert local == cache_dir() / path.name and local.parent.is_relative_to(swinseg_home)
    assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    path.unlink()  # the cached copy is used from now on
    model = SwinTransformer(**SMALL, num_classes=5)
    report = swinseg.load_checkpoint(model, f"{url}/{path.name}")
    assert report.format == "official" and not report.missing


def test_wrong_hash_removes_file_and_says_so(swinseg_home, http_server):
    root, url = http_server
    path, digest = _publish(root, SwinTransformer(**SMALL))
    bad = root / f"weights-{'0' * 8}.pth"
    path.rename(bad)
    with pytest.raises(RuntimeError, match="checksum mismatch.*expected SHA-256 starting with 00000000.*deleted"):
        download(f"{url}/{bad.name}", progress=False)
    assert not any(cache_dir().iterdir())
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        download(f"{url}/{bad.name}", sha256="f" * 64, progress=False)
    assert not any(cache_dir().iterdir())


def test_explicit_hash_is_checked(swinseg_home, http_server):
    root, url = http_server
    path, digest = _publish(root, SwinTransformer(**SMALL))
    plain = root / "plain.pth"
    path.rename(plain)
    assert download(f"{url}/plain.pth", sha256=digest, progress=False).exists()


def test_no_network_says_where_to_put_the_file(swinseg_home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    with pytest.raises(ConnectionError) as err:
        download(f"http://127.0.0.1:{port}/swin_tiny_patch4_window7_224.pth", progress=False)
    assert str(cache_dir() / "swin_tiny_patch4_window7_224.pth") in str(err.value)
    assert not any(cache_dir().iterdir())


def test_pretrained_named_model_downloads_its_weights(swinseg_home, http_server, monkeypatch):
    root, url = http_server
    source = randomize_(SwinTransformer(**SMALL, num_classes=5, always_partition=False))
    path, digest = _publish(root, source)
    spec = zoo.ModelSpec("tiny_test_model", SwinTransformer, full_config(SwinTransformer, **SMALL, num_classes=5), url=f"{url}/{path.name}")
    monkeypatch.setitem(zoo._REGISTRY, spec.name, spec)
    model = swinseg.create_model("tiny_test_model", pretrained=True).eval()
    source.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_registered_models_point_at_official_releases():
    for name in swinseg.list_models("swin_*"):
        url = zoo.get_spec(name).url
        assert url.startswith("https://github.com/SwinTransformer/storage/releases/download/v1.0.")
        assert url.rsplit("/", 1)[1].startswith(name.removesuffix("_22k"))


class _FlakyHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``payload``, honouring ``Range`` when ``ranges``; each of the first ``cuts`` responses
    announces its whole length, sends ``cut`` bytes and drops the connection. Records each
    request's ``(Range, If-Range)`` and the bytes sent."""

    payload, cut, cuts, ranges = b"", 0, 0, True

    def do_GET(self) -> None:
        self.server.requests.append((self.headers.get("Range"), self.headers.get("If-Range")))
        asked = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(asked.group(1)) if asked and self.ranges else 0
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(self.payload) - 1}/{len(self.payload)}")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        if len(self.server.requests) <= self.cuts:
            body = body[: self.cut]
        self.wfile.write(body)
        self.server.sent += len(body)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def _flaky_server(payload: bytes, cut: int = 0, cuts: int = 0, ranges: bool = True):
    handler = type("Handler", (_FlakyHandler,), {"payload": payload, "cut": cut, "cuts": cuts, "ranges": ranges})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests, server.sent = [], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def test_a_cut_download_resumes_from_the_cut(swinseg_home, tmp_path):
    path, digest = _publish(tmp_path, SwinTransformer(**SMALL))
    payload = path.read_bytes()
    third = len(payload) // 3
    with _flaky_server(payload, cut=third, cuts=2) as (url, server):
        local = download(f"{url}/{path.name}", progress=False)
    assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    assert server.requests == [(None, None), (f"bytes={third}-", '"v1"'), (f"bytes={2 * third}-", '"v1"')]
    assert server.sent == len(payload)  # nothing was sent twice


def test_a_server_that_ignores_range_gets_a_fresh_start(swinseg_home, tmp_path):
    path, digest = _publish(tmp_path, SwinTransformer(**SMALL))
    payload = path.read_bytes()
    half = len(payload) // 2
    with _flaky_server(payload, cut=half, cuts=1, ranges=False) as (url, server):
        local = download(f"{url}/{path.name}", progress=False)
    assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    assert [r for r, _ in server.requests] == [None, f"bytes={half}-"] and server.sent == half + len(payload)


def test_a_hashed_download_cut_too_often_resumes_in_the_next_call(swinseg_home, tmp_path):
    path, digest = _publish(tmp_path, SwinTransformer(**SMALL))
    payload = path.read_bytes()
    step = len(payload) // 10
    with _flaky_server(payload, cut=step, cuts=100) as (url, server):
        with pytest.raises(ConnectionError, match=f"{path.name} was cut 3 times.*{3 * step} bytes are kept .*resumes"):
            download(f"{url}/{path.name}", progress=False, retries=2)
    assert not (cache_dir() / path.name).exists()  # nothing usable is in the cache
    with _flaky_server(payload) as (url, server):
        local = download(f"{url}/{path.name}", progress=False)
    assert hashlib.sha256(local.read_bytes()).hexdigest() == digest
    assert server.requests == [(f"bytes={3 * step}-", None)] and server.sent == len(payload) - 3 * step
    assert [p.name for p in cache_dir().iterdir()] == [path.name]


def test_an_unhashed_download_cut_too_often_leaves_nothing(swinseg_home, tmp_path):
    payload = _publish(tmp_path, SwinTransformer(**SMALL))[0].read_bytes()
    with _flaky_server(payload, cut=len(payload) // 2, cuts=100) as (url, server):
        with pytest.raises(ConnectionError, match="plain.pth was cut 2 times.*nothing was cached, try again"):
            download(f"{url}/plain.pth", progress=False, retries=1)
    assert not any(cache_dir().iterdir())  # no partial file: an unhashed one cannot be trusted later
