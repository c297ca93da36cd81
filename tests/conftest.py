"""Shared fixtures. timm needs torchvision, whose only build for this torch cannot load its
compiled ops; defining the two operator schemas it registers at import lets it import.

Property tests draw the same examples on every run, so that a suite that passed once passes in
CI; ``HYPOTHESIS_PROFILE=explore`` draws new ones."""

from __future__ import annotations

import functools
import http.server
import os
import tempfile
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def _define_torchvision_schemas() -> None:
    try:
        torch.ops.torchvision.nms  # noqa: B018
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _define_torchvision_schemas.lib = lib  # keep the registration alive


_define_torchvision_schemas()
torch.set_num_threads(min(torch.get_num_threads(), 2))
# kernel choices (and downloads) of the suite stay out of the user's ~/.cache/swinseg
os.environ.setdefault("SWINSEG_HOME", tempfile.mkdtemp(prefix="swinseg-test-home-"))


@pytest.fixture(autouse=True)
def _kernel_state_per_test():
    """No test sees kernel choices another left in the process (forced, or restored from a
    training checkpoint): a test's numbers never depend on the order tests run in. Choices kept
    on disk stay: they are this machine's."""
    from swinseg.ops.tuning import STATE

    forced, restored = dict(STATE.forced), dict(STATE.restored)
    yield
    STATE.forced, STATE.restored = forced, restored
    STATE.chosen.clear()


@pytest.fixture
def swinseg_home(tmp_path, monkeypatch) -> Path:
    """An empty download cache."""
    monkeypatch.setenv("SWINSEG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def http_server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yields ``(directory, base_url)``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
