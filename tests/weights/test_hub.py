"""Downloads against a local HTTP server: hash check, cache, and no network."""

from __future__ import annotations

import hashlib
import http.server
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


class _CuttingHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file, sends the first half, then drops the connection."""

    payload = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload[: len(self.payload) // 2])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("hashed", [True, False])
def test_a_connection_cut_mid_file_leaves_nothing_in_the_cache(swinseg_home, tmp_path, hashed):
    path, digest = _publish(tmp_path, SwinTransformer(**SMALL))
    handler = type("Handler", (_CuttingHandler,), {"payload": path.read_bytes()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    name = path.name if hashed else "plain.pth"
    try:
        with pytest.raises(ConnectionError, match=f"{name} .*nothing was cached, try again"):
            download(f"http://127.0.0.1:{server.server_address[1]}/{name}", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert not any(cache_dir().iterdir())  # no partial file, nothing a later run would use
