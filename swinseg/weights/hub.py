"""Downloads into a cache directory, verified by SHA-256 before they are used."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from ..files import atomic_write, home, partial_path
from ..progress import Lines, progress_bar

__all__ = ["cache_dir", "download", "hash_from_filename", "is_url"]

_CHUNK = 1 << 20
_RETRIES = 5


def cache_dir() -> Path:
    """``$SWINSEG_HOME/checkpoints`` (default ``~/.cache/swinseg/checkpoints``)."""
    return home() / "checkpoints"


def is_url(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and urlparse(source).scheme in ("http", "https", "file")


def hash_from_filename(name: str) -> str | None:
    """The SHA-256 prefix that MMSegmentation (and torch.hub) put in file names: ``name-<hex>.pth``."""
    m = re.search(r"-([0-9a-f]{8,64})\.(?:pth|pt|bin|safetensors)$", name)
    return m.group(1) if m else None


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path: Path, expected: str, url: str) -> None:
    actual = sha256sum(path)
    if not actual.startswith(expected.lower()):
        path.unlink(missing_ok=True)
        raise RuntimeError(
            f"checksum mismatch for {url}: expected SHA-256 starting with {expected}, got {actual}; "
            f"the corrupt download was deleted, try again"
        )


def download(url: str, sha256: str | None = None, directory: Path | None = None, progress: bool = True, retries: int = _RETRIES) -> Path:
    """Return the local copy of ``url``, downloading it into the cache when absent.

    The file is written to a temporary name, checked against ``sha256`` (or the hash prefix in
    its file name) and only then renamed into place, so an interrupted or corrupt download is
    never used. A connection cut mid-file is resumed with an HTTP Range request, up to
    ``retries`` times; a server that ignores Range sends the file again from the start. When the
    download has a hash, its partial file outlives a failed call and the next call resumes it
    (without a hash, a partial file could belong to an older version of the file, so it is
    discarded). A file placed in the cache by hand is used as it is (after the same check).
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    directory = directory or cache_dir()
    filename = os.path.basename(urlparse(url).path)
    if not filename:
        raise ValueError(f"cannot name a cache file after URL {url!r}")
    expected = sha256 or hash_from_filename(filename)
    target = directory / filename
    if target.exists():
        if expected:
            _check_hash(target, expected, url)
        return target
    if not expected:
        partial_path(target).unlink(missing_ok=True)
    return atomic_write(target, lambda tmp: _fetch(url, tmp, target, expected, progress, retries), keep_partial=bool(expected))


class _Cut(Exception):
    """A response ended before the whole file arrived; the bytes received are kept, and
    ``validator`` (the response's ETag or Last-Modified) says which version they belong to."""

    def __init__(self, message: str, validator: str | None = None) -> None:
        super().__init__(message)
        self.validator = validator


def _fetch(url: str, tmp: Path, target: Path, expected: str | None, progress: bool, retries: int) -> None:
    """Fill ``tmp`` (renamed to ``target`` once complete) from ``url``, resuming after each cut, then check its hash."""
    validator: str | None = None
    with progress_bar(unit="B", unit_scale=True, desc=target.name, enabled=progress) as bar:
        for attempt in range(retries + 1):
            try:
                _fetch_rest(url, tmp, target, validator, bar)
                break
            except _Cut as cut:
                validator = cut.validator
                if attempt == retries:
                    kept = f"{tmp.stat().st_size} bytes are kept in {tmp} and the next call resumes" if expected else "nothing was cached"
                    raise ConnectionError(f"download of {url} was cut {retries + 1} times, last {cut}; {kept}, try again") from None
    if expected:
        _check_hash(tmp, expected, url)


def _fetch_rest(url: str, tmp: Path, target: Path, validator: str | None, bar: tqdm | Lines) -> None:
    """One request for what ``tmp`` lacks: a Range request from its length (``If-Range``: only if
    the file is unchanged), appended on ``206 Partial Content``, restarted on a full ``200``."""
    offset = tmp.stat().st_size if tmp.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if offset and validator:
        headers["If-Range"] = validator
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # the partial file is not a prefix of this one: start over
            tmp.unlink()
            raise _Cut("when resuming: the server refused the range") from None
        raise ConnectionError(f"cannot download {url} (HTTP {e.code} {e.reason}); place the file at {target} by hand") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ConnectionError(
            f"cannot download {url} ({reason}); without network, fetch the file elsewhere and place it at {target}"
        ) from None
    with response:
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        content_range = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range") or "")
        resumed = response.status == 206 and content_range is not None and int(content_range.group(1)) == offset
        if resumed:
            total = int(content_range.group(2)) if content_range.group(2) != "*" else None
        else:
            offset, length = 0, response.headers.get("Content-Length")
            total = int(length) if length else None
        bar.reset(total=total)
        bar.update(offset)
        with open(tmp, "ab" if resumed else "wb") as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _Cut(f"after {out.tell()} bytes ({e!r})", validator) from None
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise _Cut(f"after {out.tell()} of {total} bytes", validator)
