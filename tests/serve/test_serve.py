"""``swinseg serve``: a real server process on 127.0.0.1 (an ephemeral port): the labels
``swinseg predict`` writes, concurrent clients batched, every bad request refused in one JSON
line without harm, SIGTERM with a request in flight, and the page in headless Chromium."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

import swinseg

from ..helpers import chromium, tiny_segmentor

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


def _environment(tmp):
    """The server's and the reference ``swinseg predict``'s: one SWINSEG_HOME and no kernel timing,
    so that both processes run the same kernels (timing on a loaded machine can pick others,
    whose round-off moves near-tie pixels of random weights)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "SWINSEG_HOME": str(tmp / "home"), "SWINSEG_KERNELS": "tune=off"}


def _start(checkpoint, *flags):
    env = _environment(checkpoint.parent)
    proc = subprocess.Popen(
        [sys.executable, "-m", "swinseg.cli", "serve", str(checkpoint), "--port", "0", *flags],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match, line + proc.stderr.read()
    url = f"http://127.0.0.1:{match.group(1)}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{url}/health/ready", timeout=5)
        except httpx.ConnectError:  # the process is still starting
            time.sleep(0.2)
            continue
        if ready.status_code == 200:
            return proc, url
        assert ready.status_code == 503 and "error" in ready.json()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server never got ready")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    model = tiny_segmentor(5)
    model.dataset_meta = {
        "classes": ["sky", "road", "tree", "car", "person"],
        "palette": [[70, 130, 180], [128, 64, 128], [0, 160, 0], [0, 0, 142], [220, 20, 60]],
    }
    checkpoint = swinseg.save_checkpoint(model, tmp / "tiny.safetensors")
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(48, 64)] * 3 + [(40, 72)]):
        path = tmp / f"img{i}.png"
        cv2.imwrite(str(path), cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0))
        images.append(path)
    command = [sys.executable, "-m", "swinseg.cli", "predict", str(checkpoint), *map(str, images), "--out", str(tmp / "expected")]
    subprocess.run(command, env=_environment(tmp), check=True, capture_output=True)
    expected = {p.name: (tmp / "expected" / p.name).read_bytes() for p in images}
    return tmp, checkpoint, images, expected


@pytest.fixture(scope="module")
def server(files):
    _, checkpoint, _, _ = files
    proc, url = _start(checkpoint, "--max-body-mb", "0.5", "--max-pixels", "1000000", "--max-delay-ms", "100", "--max-batch-size", "8")
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_the_labels_are_what_swinseg_predict_writes(server, files):
    _, _, images, expected = files
    for path in images:
        response = httpx.post(f"{server}/predict", content=path.read_bytes(), headers={"content-type": "image/png"}, timeout=60)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        assert response.content == expected[path.name]
    multipart = httpx.post(f"{server}/predict?format=json&confidence=true&topk=2", files={"image": images[0].read_bytes()}, timeout=60)
    answer = multipart.json()
    labels = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(answer["labels_png"]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(labels, cv2.imdecode(np.frombuffer(expected[images[0].name], np.uint8), cv2.IMREAD_UNCHANGED))
    assert sum(c["pixels"] for c in answer["classes"]) == labels.size and len(answer["topk_probs_png"]) == 2
    assert {c["name"] for c in answer["classes"]} <= {"sky", "road", "tree", "car", "person"} and "confidence_png" in answer


def test_16_concurrent_clients_are_batched_and_all_answered_right(server, files):
    _, _, images, expected = files
    same_size = images[:3]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        jobs = [pool.submit(httpx.post, f"{server}/predict", content=same_size[i % 3].read_bytes(), timeout=120) for i in range(16)]
        answers = [job.result() for job in jobs]
    assert all(a.status_code == 200 and a.content == expected[same_size[i % 3].name] for i, a in enumerate(answers))
    text = httpx.get(f"{server}/metrics").text
    ran = float(re.search(r"^swinseg_batch_size_count (\S+)", text, re.M).group(1))
    singles = float(re.search(r'^swinseg_batch_size_bucket\{le="1.0"\} (\S+)', text, re.M).group(1))
    assert ran > singles, "no batch held more than one image"
    assert re.search(r'^swinseg_requests_total\{path="/predict",status="200"\} \d+', text, re.M)
    assert "swinseg_request_seconds_bucket" in text and "swinseg_queue_depth" in text


def _png_header(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_bad_requests_are_4xx_json_and_the_server_lives_on(server, files):
    _, _, images, expected = files
    jpeg = cv2.imencode(".jpg", cv2.imread(str(images[0])))[1].tobytes()
    cases = [
        (httpx.post, dict(content=os.urandom(600 * 1024)), 413, "over the limit"),
        (httpx.post, dict(content=_png_header(60000, 60000)), 413, "pixels"),
        (httpx.post, dict(content=b"not an image at all"), 400, "not an image"),
        (httpx.post, dict(content=b""), 400, "empty"),
        (httpx.post, dict(content=jpeg[: len(jpeg) // 2]), 400, "truncated"),
        (httpx.post, dict(content=images[0].read_bytes()[:200]), 400, "truncated"),
        (httpx.get, {}, 405, "GET /predict is not allowed"),
        (httpx.post, dict(content=images[0].read_bytes(), params={"mode": "sliding"}), 400, "mode"),
        (httpx.post, dict(content=images[0].read_bytes(), params={"confidence": "true"}), 400, "format=json"),
        (httpx.post, dict(content=images[0].read_bytes(), params={"colour": "red"}), 400, "unknown query option 'colour'"),
        (httpx.post, dict(files={"picture": images[0].read_bytes()}), 400, "'image'"),
    ]
    for method, kwargs, status, named in cases:
        response = method(f"{server}/predict", timeout=60, **kwargs)
        assert response.status_code == status, (named, response.text)
        assert named in response.json()["error"] and "\n" not in response.json()["error"]
    assert httpx.get(f"{server}/health/live").json() == {"status": "live"}
    trailing = httpx.post(f"{server}/predict", content=jpeg + b"camera data after the end", timeout=60)
    assert trailing.status_code == 200  # data after a JPEG's end is not a truncation
    again = httpx.post(f"{server}/predict", content=images[1].read_bytes(), timeout=60)
    assert again.content == expected[images[1].name]


def test_a_full_queue_is_503_with_retry_after(files):
    _, checkpoint, images, _ = files
    proc, url = _start(checkpoint, "--max-queue", "1", "--max-delay-ms", "300")
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(httpx.post, f"{url}/predict", content=images[0].read_bytes(), timeout=60) for _ in range(6)]
            answers = [job.result() for job in jobs]
        full = [a for a in answers if a.status_code == 503]
        assert full and all(a.headers["retry-after"] == "1" and "queue is full" in a.json()["error"] for a in full)
        assert any(a.status_code == 200 for a in answers)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_sigterm_answers_the_request_in_flight_then_exits_0(files):
    _, checkpoint, images, expected = files
    proc, url = _start(checkpoint, "--max-delay-ms", "1500")  # the request waits 1.5 s for company
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        job = pool.submit(httpx.post, f"{url}/predict", content=images[0].read_bytes(), timeout=60)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        answer = job.result()
    assert answer.status_code == 200 and answer.content == expected[images[0].name]
    assert proc.wait(timeout=60) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health/live", timeout=5)


def test_the_page_segments_a_chosen_image_in_chromium(server, files, tmp_path):
    _, _, images, _ = files
    with chromium(1100, 900) as driver:
        driver.get(server + "/")
        driver.find_element("id", "file").send_keys(str(images[3]))
        deadline = time.monotonic() + 60
        while "classes" not in driver.find_element("id", "status").text and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "72 x 40" in driver.find_element("id", "status").text, driver.find_element("id", "status").text
        legend = driver.find_elements("css selector", "#legend li")
        assert legend and all(any(n in item.text for n in ("sky", "road", "tree", "car", "person")) for item in legend)
        canvas = driver.find_element("id", "overlay")
        size = driver.execute_script("const c = arguments[0]; return [c.width, c.height]", canvas)
        assert size == [72, 40]
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(driver).move_to_element(canvas).perform()
        assert re.search(r"\(\d+, \d+\): \d \w+, probability 0\.\d\d", driver.find_element("id", "hover").text)
        driver.save_screenshot(str(tmp_path / "page.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
