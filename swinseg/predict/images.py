"""Image-level inference for segmentors and classifiers: images in (paths, arrays, tensors),
label maps or class probabilities out, at the images' own size.

Each model carries its :class:`~swinseg.data.transforms.Preprocessing` record
(``model.preprocessing``); everything here goes through it, with the options of one
:class:`~swinseg.predict.options.PredictOptions`. ``model`` is a segmentor or a runtime
(:mod:`swinseg.runtimes`) that computes its decode logits: the windows, views, resizes and
argmax here are the same code for every backend.

>>> from swinseg.predict import inference, predict_logits, tta_probs
>>> labels = inference(segmentor, "image.jpg")              # (H, W) int64 class ids
>>> probs = inference(classifier, "image.jpg")              # (num_classes,) probabilities
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from ..data.imagenet import imagenet_classes
from ..data.io import ImageLike, as_rgb
from ..data.transforms import Preprocessing, scale_size
from ..models.heads import resize
from ..models.segmentor import EncoderDecoder, infer_logits, resized_rows, row_strips
from ..runtimes import load_runtime
from .options import PredictOptions, as_options

__all__ = [
    "Prediction",
    "classify",
    "image_logits",
    "input_placement",
    "inference",
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


def is_segmentor(model: Any) -> bool:
    """A segmentor or a runtime of one (it computes decode logits), not a classifier."""
    return isinstance(model, EncoderDecoder) or hasattr(model, "decode")


def input_placement(model: Any) -> tuple[torch.device, torch.dtype]:
    """The device and dtype a model's inputs go in: its weights', or a runtime's own."""
    if isinstance(model, nn.Module):
        weight = next(model.parameters())
        return weight.device, weight.dtype
    return model.device, model.dtype


@contextlib.contextmanager
def _evaluating(model: Any) -> Iterator[None]:
    """A torch model in eval mode for the block, then as it was; a runtime as it is."""
    if not isinstance(model, nn.Module):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def preprocess(
    model: nn.Module, image: ImageLike, scale: float | Sequence[int] | None = None, preprocessing: Preprocessing | None = None
) -> Tensor:
    """One image -> (1, 3, h, w) input on the model's device and in its dtype, by
    ``preprocessing`` (default ``model.preprocessing``); ``scale`` (a factor or a (long, short)
    size) replaces a segmentor's test scale."""
    x = (preprocessing or model.preprocessing)(as_rgb(image), scale)
    device, dtype = input_placement(model)
    return x.unsqueeze(0).to(device, dtype)


def image_logits(model: Any, inputs: Tensor, options: PredictOptions) -> Tensor:
    """(B, 3, h, w) normalized -> (B, num_classes, h, w) logits by the options' windows over the
    model's ``test_cfg``; each image on its own (:func:`~swinseg.models.segmentor.infer_logits`)."""
    mode, crop, stride = options.windows(model.test_cfg)
    return infer_logits(model.decode, inputs, mode, crop, stride, model.num_classes, model.align_corners)


@torch.no_grad()
def predict_logits(model: Any, image: ImageLike, options: PredictOptions | None = None, **fields: Any) -> Tensor:
    """(num_classes, H, W) logits of one image at its original size: test pipeline, inference
    (the options' windows), bilinear resize back."""
    options = as_options(options, **fields)
    model, rgb = load_runtime(model, options), as_rgb(image)
    logits = image_logits(model, preprocess(model, rgb), options)
    return resize(logits, rgb.shape[:2], model.align_corners)[0]


@torch.no_grad()
def tta_probs(model: Any, image: ImageLike, options: PredictOptions | None = None, **fields: Any) -> Tensor:
    """(num_classes, H, W) class probabilities of one image averaged over multi-scale + flip
    views (the options' ``tta_ratios`` and ``tta_flip``), as MMSegmentation's ``SegTTAModel``:
    each view's softmax at the original size (flip undone), then the mean.

    A view at ratio ``r`` is resized keeping the ratio into ``(int(w*r+0.5), int(h*r+0.5))``
    (mmcv rounds twice: the target scale, then the fitted size).
    """
    options = as_options(options, **fields)
    model, rgb = load_runtime(model, options), as_rgb(image)
    height, width = rgb.shape[:2]
    total: Tensor | None = None
    views = 0
    for ratio in options.tta_ratios:
        x = preprocess(model, rgb, scale=scale_size(width, height, ratio))
        for flipped in (False, True) if options.tta_flip else (False,):
            logits = image_logits(model, x.flip(-1) if flipped else x, options)
            if flipped:
                logits = logits.flip(-1)
            probs = resize(logits, (height, width), model.align_corners).softmax(1)[0]
            total = probs if total is None else total + probs
            views += 1
    return total / views


@dataclass
class Prediction:
    """One image's outputs at its original size, on the CPU: ``labels`` (H, W) int64 class ids;
    when asked for, ``confidence`` (H, W) float32, the probability of the predicted class;
    ``entropy`` (H, W) float32, of the class distribution in nats; ``topk_classes`` (K, H, W)
    int64 and ``topk_probs`` (K, H, W) float32, the K most probable classes, the first being
    ``labels``. Probabilities are the softmax of the logits, or under TTA the mean of the views'."""

    labels: Tensor
    confidence: Tensor | None = None
    entropy: Tensor | None = None
    topk_classes: Tensor | None = None
    topk_probs: Tensor | None = None


def _strips(
    scores: Tensor, size: Sequence[int], align_corners: bool, resized: bool, max_elements: int
) -> Iterator[tuple[int, int, Tensor]]:
    """``(top, bottom, (C, bottom - top, W) scores)`` covering the (C, H, W) image: the bilinear
    resize of (C, h, w) ``scores`` to ``size``, or ``scores`` themselves when ``resized``; in
    strips of rows of about ``max_elements`` values (a 20000 x 20000 image with 150 classes would
    otherwise need 240 GB)."""
    height, width = size
    classes = scores.shape[0]
    if classes * height * width <= max_elements:
        yield 0, height, scores if resized else resize(scores[None], size, align_corners)[0]
        return
    for top, bottom in row_strips(height, classes * width, max_elements):
        yield top, bottom, scores[:, top:bottom] if resized else resized_rows(scores[None], size, top, bottom, align_corners)[0]


def summarize(
    scores: Tensor,
    size: Sequence[int],
    align_corners: bool = False,
    probabilities: bool = False,
    confidence: bool = False,
    entropy: bool = False,
    topk: int = 0,
    max_elements: int = 2**26,
) -> Prediction:
    """A :class:`Prediction` from (C, h, w) logits resized bilinearly to ``size`` (H, W), or from
    (C, H, W) ``probabilities`` already at that size (TTA), strip by strip (:func:`_strips`)."""
    height, width = size
    classes = scores.shape[0]
    out = Prediction(torch.empty((height, width), dtype=torch.int64))
    if confidence:
        out.confidence = torch.empty((height, width))
    if entropy:
        out.entropy = torch.empty((height, width))
    k = min(topk, classes)
    if k:
        out.topk_classes, out.topk_probs = torch.empty((k, height, width), dtype=torch.int64), torch.empty((k, height, width))
    for top, bottom, strip in _strips(scores, size, align_corners, probabilities, max_elements):
        _fill(out, slice(top, bottom), strip, probabilities, k)
        del strip  # before the next strip is made: one strip in memory at a time
    return out


def _fill(out: Prediction, rows: slice, strip: Tensor, probabilities: bool, k: int) -> None:
    """Write the rows ``rows`` of ``out`` from the (C, rows, W) ``strip`` of logits or probabilities."""
    labels = strip.max(0).indices  # argmax over classes (the first of equal maxima), without its slow strided scan
    out.labels[rows] = labels.cpu()
    if out.confidence is None and out.entropy is None and not k:
        return
    probs = strip if probabilities else strip.float().softmax(0)
    best = probs.gather(0, labels[None])[0]
    if out.confidence is not None:
        out.confidence[rows] = best.cpu()
    if out.entropy is not None:
        logs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log() if probabilities else strip.float().log_softmax(0)
        out.entropy[rows] = -(probs * logs).sum(0).cpu()
    if k:
        values, indices = probs.topk(k, dim=0)
        values[0], indices[0] = best, labels  # the first is the label map's class, ties included
        out.topk_classes[:, rows], out.topk_probs[:, rows] = indices.cpu(), values.cpu()


def upsampled_argmax(logits: Tensor, size: Sequence[int], align_corners: bool = False, max_elements: int = 2**26) -> Tensor:
    """argmax over classes of (C, h, w) ``logits`` resized bilinearly to ``size``, as an (H, W)
    int64 CPU tensor, in bounded memory (:func:`summarize`)."""
    return summarize(logits, size, align_corners, max_elements=max_elements).labels


def _as_list(images: ImageLike | Sequence[ImageLike]) -> tuple[list[ImageLike], bool]:
    single = isinstance(images, (str, Tensor)) or not isinstance(images, Sequence)
    return ([images] if single else list(images)), single


@torch.no_grad()
def predict_outputs(
    model: Any, images: ImageLike | Sequence[ImageLike], options: PredictOptions | None = None, **fields: Any
) -> list[Prediction]:
    """A :class:`Prediction` per image at its original size: labels, and the confidence,
    entropy and top-k classes the options ask for.

    ``images``: paths, (H, W, 3) RGB arrays or (3, H, W) RGB tensors in 0..255. ``options``
    (or its fields as keywords, e.g. ``tta=True``): :class:`PredictOptions`. A torch model is in
    eval mode while predicting.
    """
    options = as_options(options, **fields)
    model = load_runtime(model, options)
    wanted = dict(confidence=options.confidence, entropy=options.entropy, topk=options.topk)
    images, _ = _as_list(images)
    out: list[Prediction] = []
    with _evaluating(model):
        for image in images:
            if options.tta:
                probs = tta_probs(model, image, options)
                out.append(summarize(probs, probs.shape[1:], probabilities=True, **wanted))
                continue
            rgb = as_rgb(image)
            logits = image_logits(model, preprocess(model, rgb), options)
            out.append(summarize(logits[0], rgb.shape[:2], model.align_corners, **wanted))
    return out


def predict(model: Any, images: ImageLike | Sequence[ImageLike], options: PredictOptions | None = None, **fields: Any) -> list[Tensor]:
    """Label maps (H, W) int64 on the CPU, one per image at its original size (:func:`predict_outputs`)."""
    return [p.labels for p in predict_outputs(model, images, options, **fields)]


@torch.no_grad()
def classify(model: nn.Module, images: ImageLike | Sequence[ImageLike], size: int | None = None) -> list[Tensor]:
    """(num_classes,) float32 class probabilities on the CPU, one per image, by the classifier's
    preprocessing (official evaluation resize and centre crop, to ``size`` when given)."""
    if getattr(model, "num_classes", 0) <= 0 or is_segmentor(model):
        raise ValueError("classify needs a classifier (a SwinTransformer with num_classes > 0)")
    images, _ = _as_list(images)
    with _evaluating(model):
        pre = replace(model.preprocessing, size=(size,)) if size else None
        return [model(preprocess(model, image, preprocessing=pre))[0].float().softmax(-1).cpu() for image in images]


def inference(
    model: Any, images: ImageLike | Sequence[ImageLike], options: PredictOptions | None = None, **fields: Any
) -> Tensor | Prediction | list[Tensor] | list[Prediction]:
    """``swinseg.inference(model, "image.jpg")``: a segmentor's (H, W) label map at the image's
    size (:func:`predict`), or a classifier's (num_classes,) probabilities (:func:`classify`).
    ``options`` or its fields as keywords (``tta=True``, ``mode="slide"``...): a
    :class:`PredictOptions`. With ``confidence``, ``entropy`` or ``topk``, a segmentor gives a
    :class:`Prediction` instead. One image gives one result; a list gives a list."""
    batch, single = _as_list(images)
    if not is_segmentor(model):
        out = classify(model, batch)
    else:
        options = as_options(options, **fields)
        outputs = predict_outputs(model, batch, options)
        out = outputs if options.confidence or options.entropy or options.topk else [p.labels for p in outputs]
    return out[0] if single else out


def top_classes(probs: Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of (num_classes,) ``probs`` as (name, probability):
    ImageNet-1K names for 1000 classes, else ``class <i>``."""
    names = imagenet_classes() if probs.numel() == 1000 else None
    top = probs.topk(min(k, probs.numel()))
    return [(names[i] if names else f"class {i}", p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
