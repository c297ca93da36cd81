"""One dispatch for every operation with several kernels: each declares its kernels, where each
may run, its default and what its timed choices are keyed by; :mod:`~swinseg.ops.tuning` picks
among the kernels that may run.

Determinism: a choice's key holds what one image needs (shapes per image, never the batch), so
an image takes the same kernels alone and in any batch; together with the segmentor computing
each image of a batch on its own, its labels do not depend on the batch. Choices made by timing
are kept per machine, so a busy machine makes them once, not on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from .tuning import choose, forced_kernel, register

__all__ = ["Call", "Kernel", "OPERATIONS", "Operation", "explain"]


@dataclass(frozen=True)
class Call:
    """Where a call runs, as far as kernels care: its device, the dtype it computes in (None: mixed,
    as under autocast), whether it is part of a training step (gradients flow, or the module
    trains: dropout draws) and whether it is being traced (``torch.compile``, ONNX export)."""

    device: torch.device
    dtype: torch.dtype | None
    training: bool
    traced: bool

    @property
    def timeable(self) -> bool:
        """Timing runs candidates on the real inputs: only on a CPU, outside training and tracing."""
        return self.device.type == "cpu" and not self.training and not self.traced


def _anywhere(call: Call) -> bool:
    return True


@dataclass(frozen=True)
class Kernel:
    """One implementation: its name (as forced and recorded), the function, a short description,
    and where it may run."""

    name: str
    run: Callable[..., Any]
    doc: str
    eligible: Callable[[Call], bool] = _anywhere


OPERATIONS: dict[str, Operation] = {}


@dataclass(frozen=True)
class Operation:
    """An operation with several kernels computing the same thing to round-off.

    ``default`` runs where no choice is timed, forced, restored or kept (or the first kernel that
    may run, where it may not); ``default_doc`` says so where the caller picks the default by
    size. ``per`` names what timed choices are keyed by; None: never timed, the default unless
    forced, and nothing recorded.
    """

    name: str
    doc: str
    kernels: tuple[Kernel, ...]
    default: str
    per: str | None
    default_doc: str | None = None

    def __post_init__(self) -> None:
        register(self.name, tuple(k.name for k in self.kernels))
        OPERATIONS[self.name] = self

    def eligible(self, call: Call) -> tuple[Kernel, ...]:
        return tuple(k for k in self.kernels if k.eligible(call))

    def _default(self, kernels: tuple[Kernel, ...], default: str | None) -> str:
        names = [k.name for k in kernels]
        name = default or self.default
        return name if name in names else names[0]

    def pick(
        self,
        call: Call,
        shape: Callable[[], str] | None = None,
        args: tuple[Any, ...] = (),
        default: Callable[[], str] | None = None,
    ) -> Kernel:
        """The kernel for ``args`` (timed on them when a choice is made by timing). ``shape`` and
        ``default`` are called only where there is a choice: a traced graph meets no size test.
        An operation never timed (``per`` None) needs neither ``shape`` nor ``args``."""
        kernels = self.eligible(call)
        if len(kernels) == 1:
            return kernels[0]
        by_name = {k.name: k for k in kernels}
        fallback = self._default(kernels, default() if default else None)
        if self.per is None:
            return by_name.get(forced_kernel(self.name) or "", by_name[fallback])
        if shape is None:
            raise TypeError(f"operation {self.name!r} is timed per {self.per}: pick() needs its shape")
        candidates = {k.name: partial(k.run, *args) for k in kernels}
        key = shape() + ("-grad" if call.training else "")
        dtype = call.dtype if call.dtype is not None else torch.float32
        return by_name[choose(self.name, key, dtype, call.device, candidates, fallback, timeable=call.timeable)]

    def __call__(self, call: Call, shape: Callable[[], str], *args: Any, default: Callable[[], str] | None = None) -> Any:
        """Run the chosen kernel on ``args``; ``shape()`` is the shape class of one image."""
        return self.pick(call, shape, args, default).run(*args)

    def explain(self, call: Call) -> str:
        """What runs for ``call``: timed among several, or one kernel."""
        kernels = self.eligible(call)
        if len(kernels) > 1 and self.per is not None and call.timeable:
            return f"timed, per {self.per}"
        if len(kernels) > 1 and self.default_doc:
            return self.default_doc
        return f"`{self._default(kernels, None)}`"


_CPU, _GPU = torch.device("cpu"), torch.device("cuda")
CONTEXTS = {
    "CPU, inference": Call(_CPU, torch.float32, training=False, traced=False),
    "training (gradients)": Call(_CPU, torch.float32, training=True, traced=False),
    "GPU": Call(_GPU, torch.float32, training=False, traced=False),
    "`torch.compile`, ONNX": Call(_CPU, torch.float32, training=False, traced=True),
}


def explain() -> str:
    """The "which kernel runs when" table (Markdown), from the operations' own declarations."""
    rows = [["operation", "candidates", "default (timing off)", *CONTEXTS], ["---"] * (3 + len(CONTEXTS))]
    for op in OPERATIONS.values():
        candidates = ", ".join(f"`{k.name}` ({k.doc})" for k in op.kernels)
        rows.append([op.doc, candidates, op.default_doc or f"`{op.default}`", *(op.explain(call) for call in CONTEXTS.values())])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)
