"""Which implementation of an operation runs: chosen per device, machine, dtype and shape class.

A choice is made once per key (operation, device type, dtype, shape class; the batch size only
where every kernel computes each image the same way, so that an image's result does not depend
on its batch), in this order:

1. forced: :func:`configure` (``configure(attention="sdpa")``) or the environment variable
   ``SWINSEG_KERNELS`` (``attention=sdpa,conv3x3=direct``); then choices restored from a training
   checkpoint (:func:`restore`), so that a resumed run computes what the killed one did;
2. made before: in this process, or on this machine (same CPU, torch version and thread count)
   by an earlier process, kept in ``$SWINSEG_HOME/kernels/<signature>-r<REVISION>.json``;
3. timed (the default, without gradients): every candidate runs on the real inputs, one warm-up
   call then ``ROUNDS`` interleaved rounds; the fastest wins unless the default is within
   ``MARGIN`` of it (a busy machine's noise should not move a choice, which then stays). The
   random state is restored afterwards, so timing draws nothing;
4. with timing off (``configure(tune=False)`` or ``SWINSEG_KERNELS=tune=off``), for calls that
   need a gradient (training), off the CPU and in a process that is one of several: the default.

Timing is for CPUs alone. On a GPU it would run again for every new window count (every new
input size of keep-ratio evaluation, TTA and video) and every rank of a DDP run would time on
its own, so that ranks could compute the same image differently; the GPU candidates (PyTorch's
fused attention against bmm) differ little there. For the same reason the processes of a
``torchrun`` job use the choices kept on disk or the defaults, never their own timings.

The timing runs where the work runs, on the actual tensors: a kernel that is fast in isolation
can be slow on the real data (denormal probabilities from the shift mask slow some CPUs'
matrix products several times over).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write, home
from .machine import signature

__all__ = [
    "ENV",
    "MARGIN",
    "ROUNDS",
    "STATE",
    "KernelState",
    "choices",
    "choose",
    "configure",
    "forced",
    "forced_kernel",
    "interleaved_times",
    "read_environment",
    "register",
    "restore",
    "synchronize",
]

ENV = "SWINSEG_KERNELS"
ROUNDS = 3
MARGIN = 0.10
# Part of the per-machine file's name: raise it whenever a candidate's implementation changes, so
# that choices timed on the old ones are made again.
REVISION = 4

_candidates: dict[str, tuple[str, ...]] = {}


@dataclass
class KernelState:
    """What the chooser holds in a process: forced kernels (per operation), choices restored from
    a training checkpoint and choices made (per key), the per-machine files read (per machine
    signature), and whether to time (None until ``SWINSEG_KERNELS`` is read)."""

    forced: dict[str, str] = field(default_factory=dict)
    restored: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)
    on_disk: dict[str, dict[str, str]] = field(default_factory=dict)
    tune: bool | None = None


STATE = KernelState()


def register(op: str, names: tuple[str, ...]) -> None:
    """Declare the candidate implementations of ``op`` (each ops module does, at import)."""
    _candidates[op] = names


def _check(op: str, name: str) -> None:
    if op not in _candidates:
        raise ValueError(f"unknown kernel operation {op!r}; operations: {', '.join(sorted(_candidates))}")
    if name not in _candidates[op]:
        raise ValueError(f"unknown {op} kernel {name!r}; choose one of: {', '.join(_candidates[op])}")


def read_environment() -> None:
    """Read ``SWINSEG_KERNELS`` into :data:`STATE`, once (every use of the state does, first).
    Call it before tracing: a first read inside ``torch.compile`` changes state the graph's guards
    check, and the next call would compile again."""
    if STATE.tune is not None:
        return
    STATE.tune = True
    for item in filter(None, (s.strip() for s in os.environ.get(ENV, "").split(","))):
        op, sep, name = item.partition("=")
        if not sep:
            raise ValueError(f"{ENV}: expected OP=KERNEL or tune=on|off items separated by commas, got {item!r}")
        if op == "tune":
            if name not in ("on", "off"):
                raise ValueError(f"{ENV}: tune must be 'on' or 'off', got {name!r}")
            STATE.tune = name == "on"
            continue
        _check(op, name)
        STATE.forced[op] = name


def configure(tune: bool | None = None, **force: str | None) -> None:
    """Turn timing on or off, and force (``attention="bmm"``) or release (``attention=None``)
    an operation's kernel for the rest of the process. Choices already made are forgotten."""
    read_environment()
    for op, name in force.items():
        if name is None:
            STATE.forced.pop(op, None)
        else:
            _check(op, name)
            STATE.forced[op] = name
    if tune is not None:
        STATE.tune = tune
    STATE.chosen.clear()


@contextmanager
def forced(tune: bool | None = None, **force: str) -> Iterator[None]:
    """:func:`configure` within a block only (e.g. ``conv3x3="direct"`` while counting FLOPs)."""
    read_environment()
    saved = dict(STATE.forced), dict(STATE.chosen), STATE.tune
    configure(tune, **force)
    try:
        yield
    finally:
        STATE.forced, STATE.chosen, STATE.tune = saved


def forced_kernel(op: str) -> str | None:
    """The kernel forced for ``op`` (:func:`configure` or ``SWINSEG_KERNELS``), if any."""
    read_environment()
    return STATE.forced.get(op)


def choices() -> dict[str, str]:
    """Every choice made in this process: ``{key: kernel}`` (for logs and training checkpoints)."""
    return dict(STATE.chosen)


def restore(recorded: dict[str, str]) -> None:
    """Use ``recorded`` choices (from :func:`choices`, e.g. kept in a training checkpoint) for
    their keys, unless an operation is forced."""
    for key, name in recorded.items():
        _check(key.split("/")[0], name)
    STATE.restored.update(recorded)
    STATE.chosen.update({k: v for k, v in recorded.items() if k.split("/")[0] not in STATE.forced})


def _cache_file(device: torch.device) -> Path:
    return home() / "kernels" / f"{signature(device)}-r{REVISION}.json"


def _disk(device: torch.device) -> dict[str, str]:
    sig = signature(device)
    if sig not in STATE.on_disk:
        try:
            STATE.on_disk[sig] = json.loads(_cache_file(device).read_text())
        except (OSError, ValueError):
            STATE.on_disk[sig] = {}
    return STATE.on_disk[sig]


def _remember(device: torch.device, key: str, name: str) -> None:
    table = _disk(device)
    table[key] = name
    try:
        atomic_write(_cache_file(device), lambda tmp: tmp.write_text(json.dumps(table, indent=1, sort_keys=True)))
    except OSError as e:
        warnings.warn(f"kernel choices are not kept across runs: cannot write {_cache_file(device)}: {e}", stacklevel=3)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (GPUs run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(calls: dict[str, Callable[[], Any]], device: torch.device, warmup: int, rounds: int) -> dict[str, list[float]]:
    """Seconds of each call over ``rounds`` interleaved rounds (one call of each per round, so that
    a drifting clock or cache state hits all alike), after ``warmup`` calls of each."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _time(candidates: dict[str, Callable[[], Any]], device: torch.device) -> dict[str, float]:
    """Best time of each candidate over ``ROUNDS`` interleaved rounds, after one warm-up call each."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return {name: min(t) for name, t in interleaved_times(candidates, device, 1, ROUNDS).items()}


def _several_processes() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def choose(
    op: str,
    shape: str,
    dtype: torch.dtype,
    device: torch.device,
    candidates: dict[str, Callable[[], Any]],
    default: str,
    timeable: bool = True,
) -> str:
    """The kernel of ``op`` for this shape class (``shape``: what each operation's speed depends
    on, without the batch size unless the kernels compute each image alike),
    ``dtype`` and ``device``. ``candidates`` maps each applicable kernel to a call on the real
    inputs (used only when timing); ``default`` is the choice with timing off, and where timing
    cannot run (``timeable=False``: a training step, whose blocks run under selective activation
    checkpointing, where an extra forward and backward pass is not allowed)."""
    read_environment()
    key = f"{op}/{device.type}/{str(dtype).removeprefix('torch.')}/{shape}"
    cpu = device.type == "cpu"
    name = STATE.forced.get(op) or STATE.chosen.get(key) or STATE.restored.get(key) or (_disk(device).get(key) if cpu else None)
    if name is None or name not in candidates:
        name = default
        if STATE.tune and timeable and len(candidates) > 1 and cpu and not _several_processes():
            times = _time(candidates, device)
            fastest = min(times, key=times.__getitem__)
            if times[default] > times[fastest] * (1 + MARGIN):
                name = fastest
            _remember(device, key, name)
    STATE.chosen[key] = name
    return name
