"""File-system rules shared by every writer: where swinseg keeps its files, and writing a file
so that a reader (or a run killed at any moment) sees the old file or the new one, never a part."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "exclusive", "home", "partial_path", "remove_partials"]

_PARTIAL = ".{name}.tmp"


def home() -> Path:
    """``$SWINSEG_HOME`` (default ``~/.cache/swinseg``): downloaded weights, kernel choices."""
    return Path(os.environ.get("SWINSEG_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "swinseg"))


def partial_path(path: Path, keep_suffix: bool = False) -> Path:
    """The temporary file beside ``path`` that :func:`atomic_write` fills before renaming it;
    ending in ``path``'s own suffix with ``keep_suffix`` (for writers that pick the format by
    it, as OpenCV's video writer does)."""
    return path.with_name(_PARTIAL.format(name=path.name) + (path.suffix if keep_suffix else ""))


def remove_partials(folder: Path, pattern: str = "*") -> None:
    """Delete the partial files that writes of ``pattern`` names, killed mid-way, left in ``folder``."""
    for partial in folder.glob(_PARTIAL.format(name=pattern)):
        partial.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], None], keep_suffix: bool = False, keep_partial: bool = False) -> Path:
    """Run ``write`` on :func:`partial_path` of ``path``, flush it to disk, then rename it into
    place. If ``write`` raises (a failed download, a full disk), nothing is replaced, and the
    partial file is deleted unless ``keep_partial`` (a download resumes from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path, keep_suffix)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if not keep_partial:
            tmp.unlink(missing_ok=True)
    return path


@contextmanager
def exclusive(folder: Path, holder: str = "swinseg train") -> Iterator[None]:
    """Hold ``folder/.lock`` for the block. Another process that asks for it meanwhile gets an
    error naming this one's PID. The lock is the operating system's (``flock``): a killed holder
    releases it, so a lock file left by a killed run is simply taken over. (Where ``fcntl`` is
    missing, as on Windows, nothing is locked.)"""
    try:
        import fcntl
    except ImportError:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RuntimeError(
                f"{folder} is in use by {f.read().strip() or 'another process'}; wait for it or use another work dir"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"PID {os.getpid()} ({holder}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)
