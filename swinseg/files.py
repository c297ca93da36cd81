"""File-system rules shared by every writer: where swinseg keeps its files, and writing a file
so that a reader (or a run killed at any moment) sees the old file or the new one, never a part."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "WriteError",
    "atomic_write",
    "check_writable",
    "exclusive",
    "home",
    "partial_path",
    "remove_partials",
    "removed_if_left_empty",
    "write_failure",
]

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


class WriteError(OSError):
    """A file or folder that cannot be written: a full disk, a file size limit, a read-only or
    missing folder. Its text is the one-line message; ``errno`` the cause's, when known."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def _is_write_failure(error: Exception) -> bool:
    """Whether ``error`` is the disk refusing bytes: an OSError with an errno, or the messages of
    torch.save's and safetensors' writers, which drop the errno."""
    if isinstance(error, OSError):
        return error.errno is not None
    text = str(error)
    return any(mark in text for mark in ("PytorchStreamWriter", "inline_container", "I/O error"))


def _free_space(path: Path) -> str:
    folder = next((p for p in (path, *path.parents) if p.is_dir()), Path("/"))
    return f"{shutil.disk_usage(folder).free / 2**20:.0f} MiB free there"


def _size_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def write_failure(path: Path, error: Exception) -> WriteError:
    """One line naming ``path``, why writing it failed, any file size limit and the free space beside it."""
    if isinstance(error, OSError) and error.errno:
        reason = os.strerror(error.errno)
    else:
        reason = "the writer failed: " + (str(error).strip().splitlines() or ["?"])[0]
    if (limit := _size_limit()) is not None:
        reason += f"; files are limited to {limit} bytes here (ulimit -f)"
    return WriteError(f"cannot write {path}: {reason} ({_free_space(path)})", getattr(error, "errno", None) or errno.EIO)


def check_writable(folder: Path, what: str) -> Path:
    """Create ``folder`` if needed and write a probe file in it, so that a missing, read-only or
    full folder is reported before work starts, not when the first result is written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".swinseg-probe") as probe:
            probe.write(b"\0")
            probe.flush()
    except OSError as e:
        raise WriteError(f"{what} {folder} is not writable: {e.strerror or e}", e.errno) from None
    return folder


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[Path], None], keep_suffix: bool = False, keep_partial: bool = False) -> Path:
    """Run ``write`` on :func:`partial_path` of ``path``, flush it to disk, then rename it into
    place. If ``write`` raises (a failed download, a full disk), nothing is replaced, and the
    partial file is deleted unless ``keep_partial`` (a download resumes from it); a failure of
    the disk becomes a :class:`WriteError` naming ``path``."""
    tmp = partial_path(path, keep_suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it: some writers make their files private (0600)
        os.replace(tmp, path)
    except WriteError:
        raise
    except Exception as e:
        if _is_write_failure(e):
            raise write_failure(path, e) from None
        raise
    finally:
        if not keep_partial:
            tmp.unlink(missing_ok=True)
    return path


@contextmanager
def removed_if_left_empty(folder: Path) -> Iterator[None]:
    """If the block fails, remove ``folder`` when it did not exist before and is still empty
    (a run refused at its start leaves nothing behind)."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only an empty folder goes
        raise


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
