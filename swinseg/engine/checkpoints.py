"""Training checkpoints in a work directory: ``iter_<N>.pth`` written atomically (MMEngine's
names), ``last_checkpoint`` pointing at the newest, the last K kept, and the best by a metric
kept as ``best_<metric>_iter_<N>.pth`` with its score in ``best.json``."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write, remove_partials
from ..weights.io import read_checkpoint, write_file

__all__ = ["rng_state", "set_rng_state", "save_state", "load_state", "latest_checkpoint", "prune", "BestKeeper"]

_ITER = re.compile(r"^iter_(\d+)\.pth$")


def rng_state() -> dict[str, Any]:
    """Every global random state a training step may draw from, as weights-only-loadable data."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        # the saving machine may have had more GPUs than this one sees: restore those that exist
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def save_state(work_dir: Path, iteration: int, state: dict[str, Any]) -> Path:
    """Write ``iter_<iteration>.pth`` atomically, then point ``last_checkpoint`` at it."""
    path = write_file(state, work_dir / f"iter_{iteration}.pth")
    atomic_write(work_dir / "last_checkpoint", lambda tmp: tmp.write_text(str(path.resolve())))
    return path


def load_state(path: str | Path) -> dict[str, Any]:
    """A training checkpoint, loaded with ``weights_only``; an error names a file that is not one."""
    obj, _ = read_checkpoint(path)
    missing = [k for k in ("state_dict", "optimizer", "iteration") if k not in obj]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint (no {', '.join(missing)}); to start from its weights, set pretrained")
    return obj


def latest_checkpoint(work_dir: Path) -> Path | None:
    """The newest training checkpoint of ``work_dir``: ``last_checkpoint``'s target, else the
    highest ``iter_<N>.pth``; None when there is none."""
    pointer = work_dir / "last_checkpoint"
    if pointer.is_file():
        target = Path(pointer.read_text().strip())
        if target.is_file():
            return target
    found = sorted((int(m.group(1)), p) for p in work_dir.glob("iter_*.pth") if (m := _ITER.match(p.name)))
    return found[-1][1] if found else None


def prune(work_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` ``iter_<N>.pth`` files (``keep < 0``: keep all), and the
    partial files of writes that a killed run left behind."""
    remove_partials(work_dir, "*.pth")
    if keep < 0:
        return
    found = sorted((int(m.group(1)), p) for p in work_dir.glob("iter_*.pth") if (m := _ITER.match(p.name)))
    for _, path in found[: max(len(found) - keep, 0)]:
        path.unlink(missing_ok=True)


class BestKeeper:
    """Keeps the model of the best validation score as ``best_<metric>_iter_<N>.pth``."""

    def __init__(self, work_dir: Path, metric: str | None) -> None:
        self.work_dir, self.metric = work_dir, metric
        self.record_path = work_dir / "best.json"
        self.record: dict[str, Any] = json.loads(self.record_path.read_text()) if self.record_path.is_file() else {}

    def update(self, iteration: int, metrics: dict[str, Any], model_state: dict[str, Any]) -> Path | None:
        """Save ``model_state`` if ``metrics[metric]`` beats the best so far; returns its path."""
        if not self.metric:
            return None
        if self.metric not in metrics:
            raise KeyError(f"train.save_best: no metric {self.metric!r} (have {', '.join(k for k in metrics if k != 'per_class')})")
        score = metrics[self.metric]
        if self.record and not score > self.record["score"]:
            return None
        path = write_file(model_state, self.work_dir / f"best_{self.metric}_iter_{iteration}.pth")
        previous = self.record.get("file")
        self.record = {"metric": self.metric, "score": score, "iteration": iteration, "file": path.name}
        atomic_write(self.record_path, lambda tmp: tmp.write_text(json.dumps(self.record)))
        if previous and previous != path.name:
            (self.work_dir / previous).unlink(missing_ok=True)
        return path
