"""``swinseg serve``: a model behind HTTP (FastAPI on uvicorn, Prometheus metrics), with dynamic
batching, hard limits on bad requests, a graceful stop on SIGTERM, and a page to try it.

Needs the ``serve`` extra: ``pip install 'swinseg[serve]'``.
"""

from __future__ import annotations

import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from ..predict import PredictOptions
from .app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app", "serve"]


def serve(
    load: Callable[[], Any],
    options: PredictOptions | None = None,
    settings: ServeSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve ``load()``'s model on ``host:port`` (port 0: any free one) until SIGTERM or Ctrl-C,
    which stop accepting, answer the requests in flight, then return."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError("swinseg serve needs the serve extra: pip install 'swinseg[serve]'") from None
    app = create_app(load, options, settings)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)  # before the address is printed: a client that connects at once waits, it is not refused
    bound = sock.getsockname()[1]
    print(f"serving on http://{host}:{bound} (ready once the model is loaded: GET /health/ready)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=30, access_log=False)
    # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again against the handlers
    # it found: these take it as done, so a stop asked for is a clean exit (status 0)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stopped: every request in flight was answered", file=sys.stderr)
