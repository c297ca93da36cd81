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

from typing import Any

from .base import Runtime, SegmentorInfo

__all__ = ["Runtime", "SegmentorInfo", "load_runtime"]


def load_runtime(model: Any, options: Any) -> Any:
    """``model`` (a segmentor) run by ``options.backend`` in ``options.dtype``: the model itself
    for ``torch``, else a :class:`Runtime`. A runtime given is returned as it is."""
    if isinstance(model, Runtime) or options.backend == "torch":
        return model
    if options.backend == "compile":
        from .compiled import compiled_runtime

        return compiled_runtime(model, options)
    from .graphs import graph_runtime

    return graph_runtime(model, options)
