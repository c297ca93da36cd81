"""The HTTP application: ``POST /predict``, health, Prometheus metrics and a page to try it.

``create_app(load, options, settings)`` returns a FastAPI app. ``load()`` (run in a thread once
the server is up, so that ``/health/ready`` answers 503 meanwhile) gives the model or runtime;
one warm-up image runs before ready turns 200. Every error is a JSON ``{"error": ...}``.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations as
objects, and ``Request`` is imported inside :func:`create_app`, where the extra is needed.)
"""

import asyncio
import base64
import io
import time
import warnings
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..data.io import decode_image, label_dtype, quantize_confidence
from ..predict import PredictOptions, predict_outputs
from ..runtimes import runs_as
from .batcher import Batcher, QueueFull

__all__ = ["ServeSettings", "create_app"]

PAGE = Path(__file__).with_name("page.html")
QUERY = ("mode", "tta", "confidence", "topk", "format")


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching: see ``swinseg serve --help``."""

    max_batch_size: int = 8
    max_delay_ms: float = 10.0
    max_body_mb: float = 50.0
    max_pixels: int = 2**26  # 8192 x 8192
    max_queue: int = 64


class RequestError(Exception):
    """A request refused with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _flag(name: str, text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise RequestError(400, f"query option {name} must be true or false, got {text!r}")


def query_options(query: dict[str, str], base: PredictOptions) -> tuple[PredictOptions, str]:
    """``(options, format)`` from a request's query: ``base`` (the server's backend and dtype)
    with ``mode``, ``tta``, ``confidence``, ``topk``; ``format`` png or json."""
    unknown = sorted(set(query) - set(QUERY))
    if unknown:
        raise RequestError(400, f"unknown query option {unknown[0]!r}: the options are {', '.join(QUERY)}")
    fmt = query.get("format", "png")
    if fmt not in ("png", "json"):
        raise RequestError(400, f"format must be png or json, got {fmt!r}")
    fields: dict[str, Any] = {}
    if "mode" in query:
        fields["mode"] = query["mode"]
    for name in ("tta", "confidence"):
        if name in query:
            fields[name] = _flag(name, query[name])
    if "topk" in query:
        try:
            fields["topk"] = int(query["topk"])
        except ValueError:
            raise RequestError(400, f"query option topk must be an integer, got {query['topk']!r}") from None
    if fmt == "png" and (fields.get("confidence") or fields.get("topk")):
        raise RequestError(400, "confidence and topk come with format=json (format=png is the label map alone)")
    try:
        return replace(base, **fields), fmt
    except ValueError as e:
        raise RequestError(400, str(e)) from None


def check_header(body: bytes, max_pixels: int) -> None:
    """Refuse bytes that are not an image, a truncated JPEG or PNG, or an image declaring more
    than ``max_pixels`` pixels, from its header alone (before anything is decoded)."""
    from PIL import Image, UnidentifiedImageError

    if not body:
        raise RequestError(400, "the body is empty: send an image's bytes, or a multipart field 'image'")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(body)) as image:
                (width, height), kind = image.size, image.format
        except Image.DecompressionBombError:
            raise RequestError(413, f"the image declares more than {max_pixels} pixels (the limit, max_pixels)") from None
        except (UnidentifiedImageError, OSError, ValueError):
            raise RequestError(400, "the body is not an image (PNG, JPEG, BMP, TIFF, WebP...)") from None
    if width * height > max_pixels:
        raise RequestError(
            413, f"the image declares {width} x {height} = {width * height} pixels, over the limit of {max_pixels} (max_pixels)"
        )
    if kind == "PNG" and b"IEND" not in body[-16:]:
        raise RequestError(400, "the PNG image is truncated")
    if kind == "JPEG" and not body.rstrip(b"\0").endswith(b"\xff\xd9"):  # cut short, or data after its end
        try:
            with Image.open(io.BytesIO(body)) as image:
                image.load()  # raises on a file cut short, not on trailing data
        except OSError:
            raise RequestError(400, "the JPEG image is truncated") from None


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is {int(declared)} bytes, over the limit of {limit} (max_body_mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over the limit of {limit} bytes (max_body_mb)")
        chunks.append(chunk)
    return b"".join(chunks)


async def image_bytes(request: Any, limit: int) -> bytes:
    """The image of a request: the body itself, or its multipart form field ``image``."""
    from starlette.requests import Request

    body = await read_body(request, limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise RequestError(400, "the multipart form has no file field 'image'")
    return await upload.read()


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError("cannot encode a PNG")
    return data.tobytes()


def answer_json(output: Any, model: Any) -> dict[str, Any]:
    """The JSON answer: size, the classes present (id, name, colour, pixels), base64 PNGs of the
    labels, the 8-bit confidence and the top-k classes and probabilities when asked for."""
    labels = output.labels.numpy()
    meta = model.dataset_meta
    ids, counts = np.unique(labels, return_counts=True)
    out: dict[str, Any] = {
        "height": int(labels.shape[0]),
        "width": int(labels.shape[1]),
        "classes": [
            {"id": int(i), "name": meta["classes"][i], "color": list(meta["palette"][i]), "pixels": int(n)}
            for i, n in zip(ids, counts, strict=True)
        ],
        "labels_png": base64.b64encode(_png(labels.astype(label_dtype(model.num_classes)))).decode(),
    }
    if output.confidence is not None:
        out["confidence_png"] = base64.b64encode(_png(quantize_confidence(output.confidence, 8))).decode()
    if output.topk_classes is not None:
        ids_dtype = label_dtype(model.num_classes)
        out["topk_classes_png"] = [base64.b64encode(_png(c.numpy().astype(ids_dtype))).decode() for c in output.topk_classes]
        out["topk_probs_png"] = [base64.b64encode(_png(quantize_confidence(p, 8))).decode() for p in output.topk_probs]
    return out


class Metrics:
    """The Prometheus metrics, in a registry of the app's own."""

    def __init__(self, max_batch_size: int) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("swinseg_requests", "HTTP requests by path and status", ["path", "status"], registry=self.registry)
        self.latency = Histogram("swinseg_request_seconds", "time to answer POST /predict", registry=self.registry)
        buckets = sorted({1, 2, 4, 8, 16, 32, max_batch_size})
        self.batch = Histogram("swinseg_batch_size", "images per batch the model ran", buckets=buckets, registry=self.registry)
        self.queue = Gauge("swinseg_queue_depth", "requests waiting or being computed", registry=self.registry)


def create_app(load: Callable[[], Any], options: PredictOptions | None = None, settings: ServeSettings | None = None) -> Any:
    """The FastAPI application serving the model ``load()`` returns, by ``options`` (backend and
    dtype; requests set mode, tta, confidence, topk) within ``settings``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.exceptions import HTTPException

    base = options or PredictOptions()
    settings = settings or ServeSettings()
    metrics = Metrics(settings.max_batch_size)
    state: dict[str, Any] = {"model": None, "error": None}

    def run(images: list[np.ndarray], opts: PredictOptions) -> list[Any]:
        return predict_outputs(state["model"], images, opts)

    async def startup() -> None:
        def ready() -> Any:
            model = load()
            predict_outputs(model, np.zeros((64, 64, 3), np.uint8), base)  # warm-up: first-call costs before ready
            return model

        try:
            state["model"] = await asyncio.get_running_loop().run_in_executor(None, ready)
        except Exception as e:  # the server stays up and says why it is not ready
            state["error"] = f"{type(e).__name__}: {e}"

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        batcher = Batcher(run, settings.max_batch_size, settings.max_delay_ms / 1000, settings.max_queue, metrics.batch.observe)
        batcher.start()
        state["batcher"] = batcher
        loading = asyncio.get_running_loop().create_task(startup())
        yield
        loading.cancel()
        await batcher.drain()  # SIGTERM: the requests in flight are answered first

    app = FastAPI(title="swinseg", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            return error(405, f"{request.method} {request.url.path} is not allowed (use {allowed})", exc.headers)
        return error(exc.status_code, f"{request.url.path}: {exc.detail}", exc.headers)

    @app.middleware("http")
    async def count(request: Request, call_next: Callable) -> Any:
        response = await call_next(request)
        metrics.requests.labels(request.url.path, str(response.status_code)).inc()
        return response

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready() -> Any:
        if state["model"] is None:
            return error(503, f"not ready: {state['error']}" if state["error"] else "not ready: the model is loading")
        model = state["model"]
        backend, precision = runs_as(model)
        return {"status": "ready", "classes": model.num_classes, "backend": backend, "dtype": precision}

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queue.set(state["batcher"].depth)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/meta")
    async def meta() -> Any:
        if state["model"] is None:
            return error(503, "not ready: the model is loading")
        model = state["model"]
        return {"classes": list(model.dataset_meta["classes"]), "palette": [list(c) for c in model.dataset_meta["palette"]]}

    @app.post("/predict")
    async def predict_endpoint(request: Request) -> Any:
        start = time.perf_counter()
        try:
            opts, fmt = query_options(dict(request.query_params), base)
            if state["model"] is None:
                raise RequestError(503, "not ready: the model is loading", {"Retry-After": "1"})
            body = await image_bytes(request, int(settings.max_body_mb * 2**20))
            check_header(body, settings.max_pixels)
            try:
                image = decode_image(body, "the body")
            except ValueError as e:
                raise RequestError(400, str(e)) from None
            try:
                output = await state["batcher"].submit(image, opts)
            except QueueFull as e:
                raise RequestError(503, f"{e}: retry shortly", {"Retry-After": "1"}) from None
        except RequestError as e:
            return error(e.status, e.message, e.headers)
        except Exception as e:  # a request never takes the server down
            return error(500, f"{type(e).__name__}: {e}")
        finally:
            metrics.latency.observe(time.perf_counter() - start)
        model = state["model"]
        if fmt == "json":
            return JSONResponse(answer_json(output, model))
        return Response(_png(output.labels.numpy().astype(label_dtype(model.num_classes))), media_type="image/png")

    return app
