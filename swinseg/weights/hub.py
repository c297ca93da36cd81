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

from ..files import atomic_write, home

__all__ = ["cache_dir", "download", "hash_from_filename", "is_url"]

_CHUNK = 1 << 20


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


def download(url: str, sha256: str | None = None, directory: Path | None = None, progress: bool = True) -> Path:
    """Return the local copy of ``url``, downloading it into the cache when absent.

    The file is written to a temporary name, checked against ``sha256`` (or the hash prefix in
    its file name) and only then renamed into place, so an interrupted or corrupt download is
    never used. A file placed in the cache by hand is used as it is (after the same check).
    """
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
    return atomic_write(target, lambda tmp: _fetch(url, tmp, target, expected, progress))


def _fetch(url: str, tmp: Path, target: Path, expected: str | None, progress: bool) -> None:
    """Stream ``url`` into ``tmp`` (renamed to ``target`` once complete), then check its length and hash."""
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ConnectionError(
            f"cannot download {url} ({reason}); without network, fetch the file elsewhere and place it at {target}"
        ) from None
    with response, open(tmp, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        try:
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise ConnectionError(
                f"download of {url} was interrupted after {out.tell()} bytes ({e!r}); nothing was cached, try again"
            ) from None
        if total is not None and out.tell() != total:
            raise ConnectionError(f"download of {url} stopped after {out.tell()} of {total} bytes; nothing was cached, try again")
    if expected:
        _check_hash(tmp, expected, url)
