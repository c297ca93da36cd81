"""Images in, label maps out: one path for every input kind, with one options record.

- :mod:`.options`: :class:`PredictOptions` (mode, windows, TTA, confidence, batch, backend), the
  label and confidence integer types;
- :mod:`.images`: preprocess, whole/slide logits, TTA, labels/confidence/entropy/top-k at the
  original size, classification;
- :mod:`.tiled`: TIFF/BigTIFF scenes streamed at native resolution;
- :mod:`.video`: videos in, overlaid videos out;
- :mod:`.files`: folders and globs, under ``torchrun`` too (``swinseg predict``).
"""

from .images import (
    Prediction,
    classify,
    image_logits,
    inference,
    input_placement,
    is_segmentor,
    predict,
    predict_logits,
    predict_outputs,
    preprocess,
    summarize,
    top_classes,
    tta_probs,
    upsampled_argmax,
)
from .options import BACKENDS, PRECISIONS, TTA_RATIOS, PredictOptions, as_options

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "TTA_RATIOS",
    "PredictOptions",
    "Prediction",
    "as_options",
    "classify",
    "image_logits",
    "inference",
    "input_placement",
    "is_segmentor",
    "predict",
    "predict_logits",
    "predict_outputs",
    "preprocess",
    "summarize",
    "top_classes",
    "tta_probs",
    "upsampled_argmax",
]
