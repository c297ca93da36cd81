"""Dynamic batching: requests that arrive within ``max_delay`` of the first one, with images of
one size and the same options, go to the model together (up to ``max_batch_size``), in one
worker thread, never on the event loop.

Each image of a batch is still computed on its own (:func:`swinseg.predict.predict_outputs`),
so a label never depends on which requests shared its batch; a batch saves the queueing and the
per-call overhead.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Batcher", "QueueFull"]


class QueueFull(RuntimeError):
    """The queue holds ``max_queue`` requests: the caller should retry later."""


@dataclass
class _Item:
    image: np.ndarray
    options: Any
    future: asyncio.Future
    arrived: float = field(default_factory=time.perf_counter)

    @property
    def key(self) -> Hashable:
        return (self.image.shape, self.options)


class Batcher:
    """Groups :meth:`submit` calls and runs ``run(images, options) -> outputs`` on them in one thread.

    ``on_batch(size)`` is called with each batch's size (for metrics); ``max_queue`` bounds the
    requests waiting, beyond which :meth:`submit` raises :class:`QueueFull`.
    """

    def __init__(
        self,
        run: Callable[[list[np.ndarray], Any], list[Any]],
        max_batch_size: int = 8,
        max_delay: float = 0.01,
        max_queue: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.run, self.max_batch_size, self.max_delay, self.max_queue = run, max_batch_size, max_delay, max_queue
        self.on_batch = on_batch or (lambda size: None)
        self.pending: collections.deque[_Item] = collections.deque()
        self.wakeup = asyncio.Event()
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="swinseg-model")
        self.task: asyncio.Task | None = None
        self.running = 0  # images in the batch the model is computing

    @property
    def depth(self) -> int:
        """Requests waiting or being computed."""
        return len(self.pending) + self.running

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, image: np.ndarray, options: Any) -> Any:
        """The output for ``image`` by ``options``, once its batch has run."""
        if self.depth >= self.max_queue:
            raise QueueFull(f"the queue is full ({self.max_queue} requests)")
        item = _Item(image, options, asyncio.get_running_loop().create_future())
        self.pending.append(item)
        self.wakeup.set()
        return await item.future

    async def drain(self) -> None:
        """Finish every request accepted so far, then stop the worker."""
        while self.depth:
            await asyncio.sleep(0.01)
        if self.task is not None:
            self.task.cancel()
        self.worker.shutdown(wait=True)

    def _take(self) -> list[_Item]:
        """The oldest request and the waiting ones that may share its batch (same size and options)."""
        first = self.pending.popleft()
        batch, rest = [first], collections.deque()
        while self.pending:
            item = self.pending.popleft()
            (batch if item.key == first.key and len(batch) < self.max_batch_size else rest).append(item)
        self.pending.extendleft(reversed(rest))
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.pending:
                self.wakeup.clear()
                await self.wakeup.wait()
            # wait up to max_delay after the oldest arrival for others to join it
            deadline = self.pending[0].arrived + self.max_delay
            while len(self.pending) < self.max_batch_size and time.perf_counter() < deadline:
                await asyncio.sleep(min(0.002, max(deadline - time.perf_counter(), 0)))
            batch = self._take()
            self.running = len(batch)
            self.on_batch(len(batch))
            try:
                outputs = await loop.run_in_executor(self.worker, self.run, [i.image for i in batch], batch[0].options)
            except Exception as e:  # one bad batch answers its requests with the error; the server goes on
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
            else:
                for item, output in zip(batch, outputs, strict=True):
                    if not item.future.done():
                        item.future.set_result(output)
            finally:
                self.running = 0
