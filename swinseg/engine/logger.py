"""Training logs: a console progress bar with MMEngine-style lines every ``interval`` iterations,
``scalars.jsonl`` (one JSON object per log, as MMEngine's ``vis_data/scalars.json``) and
TensorBoard event files under ``tensorboard/``."""

from __future__ import annotations

import datetime
import json
import resource
import threading
import time
import warnings
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..data.io import write_image
from ..files import atomic_write, write_failure
from ..ops.tuning import synchronize
from ..progress import progress_bar

__all__ = ["TrainLogger", "peak_memory_mb", "read_scalars"]


def _quiet_event_writer(args: threading.ExceptHookArgs) -> None:
    """TensorBoard's writer thread prints the traceback of a failed write (a full disk), then
    raises the error again in the next ``flush``, where :class:`TrainLogger` names the folder
    in one line; its traceback is left out, every other thread's is printed as before."""
    if type(args.thread).__name__ != "_AsyncWriterThread":
        _quiet_event_writer.default(args)


_quiet_event_writer.default = threading.excepthook


def peak_memory_mb(device: torch.device) -> int:
    """Peak memory so far in MB: allocated CUDA memory on GPUs, the process's peak resident
    memory on CPUs (Linux's VmHWM where there is one: getrusage's ru_maxrss also holds the
    high-water mark of the process that forked this one before exec)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device) / 2**20)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def read_scalars(path: Path) -> list[dict[str, Any]]:
    """The records of a ``scalars.jsonl`` file (a partly written last line is skipped)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class TrainLogger:
    """Collects per-iteration values and writes their means over each window of ``interval``
    iterations. Only the process that is ``enabled`` (rank 0) writes anything; ``progress``
    shows the bar (on a terminal)."""

    def __init__(self, work_dir: Path, max_iters: int, start_iter: int, interval: int, enabled: bool = True, progress: bool = True) -> None:
        self.work_dir, self.max_iters, self.interval, self.enabled = work_dir, max_iters, interval, enabled
        self.window: dict[str, list[float | torch.Tensor]] = defaultdict(list)
        self.writer = None
        self.bar = None
        if not enabled:
            return
        self.scalars = work_dir / "scalars.jsonl"
        self.kernels_file = work_dir / "kernels.jsonl"
        if self.scalars.is_file():  # a resumed run replaces what came after its checkpoint
            kept = [r for r in read_scalars(self.scalars) if r.get("iter", 0) <= start_iter]
            atomic_write(self.scalars, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in kept)))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(work_dir / "tensorboard"), purge_step=start_iter + 1)
            if threading.excepthook is not _quiet_event_writer:
                _quiet_event_writer.default = threading.excepthook
                threading.excepthook = _quiet_event_writer
        except ImportError:
            warnings.warn(
                "tensorboard is not installed (pip install 'swinseg[train]'): logging to the console and scalars.jsonl only", stacklevel=2
            )
        self.bar = progress_bar(total=max_iters, initial=start_iter, desc="train", unit="it", enabled=progress, lines=False)
        self.started = time.perf_counter()
        self.start_iter = start_iter
        # (time, iteration) at the last log lines: the ETA's rate leaves out the first window (start-up,
        # first kernel timings) once there are two, and follows the recent pace
        self.marks: deque[tuple[float, int]] = deque(maxlen=10)
        self.restart_clock()

    def restart_clock(self) -> None:
        """Start timing iterations anew (after a validation or a checkpoint, which are not iterations)."""
        self.clock, self.timed = time.perf_counter(), 0

    def update(self, values: dict[str, float | torch.Tensor]) -> None:
        """Add one iteration's values: numbers, or 0-d tensors left on the device until :meth:`log`."""
        for key, value in values.items():
            self.window[key].append(value)
        self.timed += 1
        if self.bar is not None:
            self.bar.update(1)

    def log(self, iteration: int, device: torch.device) -> None:
        """Write the window's means for ``iteration`` (1-based count of finished iterations)."""
        if not self.enabled:
            self.window.clear()
            return
        lr = self.window.pop("lr")[-1]
        means: dict[str, Any] = {k: sum(v) / len(v) for k, v in self.window.items() if not isinstance(v[0], torch.Tensor)}
        tensors = [k for k, v in self.window.items() if isinstance(v[0], torch.Tensor)]
        if tensors:  # one wait for the device for the whole window
            values = torch.stack([torch.stack(self.window[k]).double().mean() for k in tensors]).tolist()
            means = dict(zip(tensors, values, strict=True)) | means
        self.window.clear()
        synchronize(device)  # GPUs run ahead: the time is the iterations' when their work is done
        if self.timed:
            means["time"] = (time.perf_counter() - self.clock) / self.timed
        self.restart_clock()
        means["memory"] = peak_memory_mb(device)
        self.marks.append((time.perf_counter(), iteration))
        (t0, i0), (t1, i1) = self.marks[0] if len(self.marks) > 1 else (self.started, self.start_iter), self.marks[-1]
        eta = (t1 - t0) / max(i1 - i0, 1) * (self.max_iters - iteration)
        parts = [f"lr: {lr:.4e}", f"eta: {datetime.timedelta(seconds=int(eta))}"]
        parts += [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in means.items()]
        self._write(f"Iter(train) [{iteration:>{len(str(self.max_iters))}}/{self.max_iters}]  " + "  ".join(parts))
        self._record({"mode": "train", "iter": iteration, "lr": lr, **means})

    def log_val(self, iteration: int, metrics: dict[str, Any], table: str) -> None:
        if not self.enabled:
            return
        summary = {k: v for k, v in metrics.items() if k != "per_class"}
        self._write(f"Iter(val) [{iteration}]\n{table}")
        self._record({"mode": "val", "iter": iteration, **summary})

    def log_images(self, iteration: int, pictures: dict[str, np.ndarray]) -> None:
        """(H, W, 3) uint8 RGB ``pictures`` by name, to ``vis/iter_<iteration>/<name>.jpg`` and
        TensorBoard (``val/<name>``), as MMSegmentation's SegVisualizationHook."""
        if not (self.enabled and pictures):
            return
        folder = self.work_dir / "vis" / f"iter_{iteration}"
        for name, picture in pictures.items():
            write_image(folder / f"{name}.jpg", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
            if self.writer is not None:
                self.writer.add_image(f"val/{name}", picture, iteration, dataformats="HWC")

    def log_kernels(self, iteration: int, choices: dict[str, str]) -> None:
        """Kernel choices made since the last call (:func:`swinseg.ops.choices`): a one-line
        count per operation and kernel, the full list appended to ``kernels.jsonl``."""
        if not (self.enabled and choices):
            return
        counts: dict[str, int] = defaultdict(int)
        for key, kernel in choices.items():
            counts[f"{key.split('/')[0]} {kernel}"] += 1
        summary = ", ".join(f"{name} x{n}" for name, n in sorted(counts.items()))
        self._write(f"Kernels [{iteration}]  {len(choices)} new choices: {summary} (all in {self.kernels_file.name})")
        _append_line(self.kernels_file, {"iter": iteration, "choices": dict(sorted(choices.items()))})

    def _write(self, line: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def _record(self, record: dict[str, Any]) -> None:
        _append_line(self.scalars, record)
        if self.writer is not None:
            prefix = record["mode"]
            try:
                for key, value in record.items():
                    if key not in ("mode", "iter") and isinstance(value, (int, float)):
                        self.writer.add_scalar(f"{prefix}/{key}", value, record["iter"])
                self.writer.flush()
            except OSError as e:
                self.writer = None  # its file is broken; close() must not raise again
                raise write_failure(self.work_dir / "tensorboard", e) from None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError as e:
                raise write_failure(self.work_dir / "tensorboard", e) from None


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """One JSON line appended to ``path``; a failed write is a one-line error naming it."""
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise write_failure(path, e) from None
