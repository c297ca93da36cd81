"""Progress a person can see wherever the command runs.

On a terminal: tqdm's bar. Elsewhere (a log file, CI, nohup) a bar's carriage returns make one
endless line or nothing at all, so a plain line is printed every ``INTERVAL`` seconds instead,
in tqdm's own format. Steps without a count (an ONNX export, a FLOP count) get :func:`working`:
a line when they start and one every ``INTERVAL`` seconds while they last.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm

__all__ = ["INTERVAL", "Lines", "progress_bar", "working"]

INTERVAL = 10.0
LINE = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}]"


class Lines:
    """The part of tqdm's interface swinseg uses, printing a plain line every ``interval`` s."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        unit_scale: bool = False,
        stream: IO[str] | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.iterable, self.desc, self.unit, self.unit_scale = iterable, desc, unit, unit_scale
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.n = total, initial
        self.stream, self.interval = stream, interval
        self.start = self.last = time.monotonic()
        self.printed: float | None = None  # the count of the last line printed

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self) -> str:
        """tqdm's text for the count so far, without the bar."""
        elapsed = time.monotonic() - self.start
        style = LINE if self.total else None
        return tqdm.format_meter(
            self.n, self.total, elapsed, prefix=self.desc, unit=self.unit, unit_scale=self.unit_scale, bar_format=style
        )

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self.write(self.line())
            self.printed = self.n

    def reset(self, total: float | None = None) -> None:
        self.n, self.total = 0, total
        self.start = self.last = time.monotonic()

    def write(self, message: str, file: IO[str] | None = None) -> None:
        print(message, file=file or self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        """The last count, when earlier lines were printed (a short task stays silent)."""
        if self.printed is not None and self.printed != self.n:
            self.write(self.line())
        self.printed = None


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    unit: str = "it",
    total: float | None = None,
    enabled: bool = True,
    lines: bool = True,
    **options: Any,
) -> tqdm | Lines:
    """A tqdm bar on a terminal; else :class:`Lines` (``lines=False``: nothing, for work that
    prints its own log lines). ``enabled=False``: silent either way."""
    if sys.stderr.isatty() or not (enabled and lines):
        return tqdm(iterable, desc=desc, unit=unit, total=total, disable=not enabled, dynamic_ncols=True, **options)
    kept = {k: v for k, v in options.items() if k in ("initial", "unit_scale")}
    return Lines(iterable, total=total, desc=desc, unit=unit, **kept)


@contextmanager
def working(what: str, *, stream: IO[str] | None = None, interval: float = INTERVAL) -> Iterator[None]:
    """Say that ``what`` has started, then how long it has been running every ``interval`` s
    (every second, in place, on a terminal) until the block ends."""
    out = stream or sys.stderr
    tty = out.isatty()
    done = threading.Event()
    start = time.monotonic()
    print(f"{what} ...", file=out, flush=True)

    def beat() -> None:
        while not done.wait(1.0 if tty else interval):
            elapsed = f"{what}: {time.monotonic() - start:.0f} s"
            print("\r" + elapsed if tty else elapsed, end="" if tty else "\n", file=out, flush=True)

    thread = threading.Thread(target=beat, name="swinseg-working", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if tty:
            print("\r\033[K", end="", file=out, flush=True)
