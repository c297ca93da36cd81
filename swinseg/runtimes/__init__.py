"""Where a normalized batch becomes a segmentor's decode logits: torch eager, ``torch.compile``,
ONNX Runtime or OpenVINO. Nothing else happens here: preprocessing, slide windows, TTA views,
the resize back, argmax, confidence and huge-image streaming stay in :mod:`swinseg.predict`,
the same code for every backend.

A :class:`Runtime` carries what prediction reads of a segmentor (classes, preprocessing, test
windows, class names and palette) and its ``decode``: (B, 3, h, w) normalized float32 ->
(B, num_classes, h/4, w/4) float32 logits. ``predict``, ``inference``, ``swinseg predict``,
``test`` and ``benchmark`` take it as they take the torch model.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from ..ops import dtype_name, parse_dtype
from .base import Runtime, SegmentorInfo

__all__ = ["Runtime", "SegmentorInfo", "load_runtime", "runs_as"]


_RUNTIMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def load_runtime(model: Any, options: Any) -> Any:
    """``model`` (a segmentor) run by ``options.backend`` in ``options.dtype``: the model itself
    for ``torch``, else a :class:`Runtime`, made once per model, backend and dtype (the graph
    itself is cached on disk by weights). A runtime given is returned as it is."""
    if isinstance(model, Runtime):
        return model
    weights = next(model.parameters()).dtype
    if options.backend == "torch" and (options.dtype is None or parse_dtype(options.dtype) == weights):
        return model
    key = (options.backend, options.dtype, options.calibrate)
    made = _RUNTIMES.setdefault(model, {})
    if key not in made:
        if options.backend in ("torch", "compile") and options.dtype is not None and parse_dtype(options.dtype) != weights:
            cast = copy.deepcopy(model).to(parse_dtype(options.dtype)).eval()  # the caller's model stays as it is
            made[key] = cast if options.backend == "torch" else load_runtime(cast, options)
        elif options.backend == "compile":
            from .compiled import compiled_runtime

            made[key] = compiled_runtime(model, options)
        else:
            from .graphs import graph_runtime

            made[key] = graph_runtime(model, options)
    return made[key]


def runs_as(model: Any) -> tuple[str, str]:
    """``(backend, precision)`` that compute ``model``'s logits, for reports: a runtime's own (an
    exported graph given as MODEL runs on its engine; an INT8 graph in int8), else torch in the
    dtype of its weights."""
    if isinstance(model, Runtime):
        return model.backend, model.precision
    return "torch", dtype_name(next(model.parameters()).dtype)
