"""Image-level inference for segmentors and classifiers: images in (paths, arrays, tensors),
label maps or class probabilities out, at the images' own size.

Each model carries its :class:`~swinseg.data.transforms.Preprocessing` record
(``model.preprocessing``); everything here goes through it. The models themselves stay
tensor-level (``EncoderDecoder.inference``, ``SwinTransformer.forward``).

>>> from swinseg.predict import inference, predict_logits, tta_probs
>>> labels = inference(segmentor, "image.jpg")              # (H, W) int64 class ids
>>> probs = inference(classifier, "image.jpg")              # (num_classes,) probabilities
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .data.imagenet import imagenet_classes
from .data.io import ImageLike, as_rgb
from .data.transforms import Preprocessing, scale_size
from .models.heads import resize
from .models.segmentor import EncoderDecoder, resized_rows, row_strips

__all__ = [
    "Prediction",
    "TTA_RATIOS",
    "classify",
    "inference",
    "predict",
    "predict_logits",
    "predict_outputs",
    "preprocess",
    "set_test_mode",
    "summarize",
    "top_classes",
    "tta_probs",
    "upsampled_argmax",
]

# MMSegmentation's ADE20K tta_pipeline: scale ratios relative to the original image.
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def set_test_mode(model: EncoderDecoder, mode: str | None, crop: int | None = None, stride: int | None = None) -> None:
    """Set the segmentor's ``test_cfg``: ``mode`` ('whole' or 'slide'; None keeps it), slide
    windows of ``crop`` x ``crop`` at ``stride`` (None: the model's). A crop or stride without a
    mode asks for slide windows: it sets ``slide``; with ``whole`` it is refused."""
    if mode is None and crop is None and stride is None:
        return
    if mode not in (None, "whole", "slide"):
        raise ValueError(f"inference mode must be 'whole' or 'slide', got {mode!r}")
    if mode == "whole":
        if crop is not None or stride is not None:
            raise ValueError("--crop and --stride set slide windows: they do nothing with --mode whole (use --mode slide, or drop them)")
        model.test_cfg.update(mode="whole")
        return
    crop = model.test_cfg["crop_size"][0] if crop is None else crop
    stride = model.test_cfg["stride"][0] if stride is None else stride
    if min(crop, stride) <= 0:
        raise ValueError(f"--crop and --stride must be positive, got {crop} and {stride}")
    model.test_cfg.update(mode="slide", crop_size=[crop, crop], stride=[stride, stride])


def preprocess(
    model: nn.Module, image: ImageLike, scale: float | Sequence[int] | None = None, preprocessing: Preprocessing | None = None
) -> Tensor:
    """One image -> (1, 3, h, w) input on the model's device and in its dtype, by
    ``preprocessing`` (default ``model.preprocessing``); ``scale`` (a factor or a (long, short)
    size) replaces a segmentor's test scale."""
    x = (preprocessing or model.preprocessing)(as_rgb(image), scale)
    weight = next(model.parameters())
    return x.unsqueeze(0).to(weight.device, weight.dtype)


@torch.no_grad()
def predict_logits(model: EncoderDecoder, image: ImageLike, mode: str | None = None) -> Tensor:
    """(num_classes, H, W) logits of one image at its original size: test pipeline, inference
    (``mode`` or the model's ``test_cfg``), bilinear resize back."""
    rgb = as_rgb(image)
    logits = model.inference(preprocess(model, rgb), mode)
    return resize(logits, rgb.shape[:2], model.decode_head.align_corners)[0]


@torch.no_grad()
def tta_probs(
    model: EncoderDecoder, image: ImageLike, ratios: Sequence[float] = TTA_RATIOS, flip: bool = True, mode: str | None = None
) -> Tensor:
    """(num_classes, H, W) class probabilities of one image averaged over multi-scale + flip
    views, as MMSegmentation's ``SegTTAModel``: each view's softmax at the original size (flip
    undone), then the mean.

    A view at ratio ``r`` is resized keeping the ratio into ``(int(w*r+0.5), int(h*r+0.5))``
    (mmcv rounds twice: the target scale, then the fitted size).
    """
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    total: Tensor | None = None
    views = 0
    for ratio in ratios:
        x = preprocess(model, rgb, scale=scale_size(width, height, ratio))
        for flipped in (False, True) if flip else (False,):
            logits = model.inference(x.flip(-1) if flipped else x, mode)
            if flipped:
                logits = logits.flip(-1)
            probs = resize(logits, (height, width), model.decode_head.align_corners).softmax(1)[0]
            total = probs if total is None else total + probs
            views += 1
    if total is None:
        raise ValueError("test-time augmentation needs at least one scale ratio")
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
    model: EncoderDecoder,
    images: ImageLike | Sequence[ImageLike],
    mode: str | None = None,
    tta: bool = False,
    batch_size: int = 1,
    confidence: bool = False,
    entropy: bool = False,
    topk: int = 0,
) -> list[Prediction]:
    """A :class:`Prediction` per image at its original size: labels, and the confidence,
    entropy and top-``topk`` classes asked for.

    ``images``: paths, (H, W, 3) RGB arrays or (3, H, W) RGB tensors in 0..255. Consecutive
    images whose resized inputs share a size are inferred together, up to ``batch_size``.
    ``tta`` averages the multi-scale + flip views of :func:`tta_probs`. The model is in eval
    mode while predicting.
    """
    if topk < 0:
        raise ValueError(f"topk must be 0 or more, got {topk}")
    wanted = dict(confidence=confidence, entropy=entropy, topk=topk)
    images, _ = _as_list(images)
    was_training = model.training
    model.eval()
    try:
        if tta:
            return [
                summarize(probs, probs.shape[1:], probabilities=True, **wanted)
                for probs in (tta_probs(model, im, mode=mode) for im in images)
            ]
        out: list[Prediction] = []
        pending: list[tuple[Tensor, tuple[int, int]]] = []
        for image in images:
            rgb = as_rgb(image)
            x = preprocess(model, rgb)
            if pending and (len(pending) == batch_size or pending[0][0].shape != x.shape):
                out += _infer_batch(model, pending, mode, wanted)
                pending = []
            pending.append((x, rgb.shape[:2]))
        return out + (_infer_batch(model, pending, mode, wanted) if pending else [])
    finally:
        model.train(was_training)


def _infer_batch(model: EncoderDecoder, batch: list[tuple[Tensor, tuple[int, int]]], mode: str | None, wanted: dict) -> list[Prediction]:
    logits = model.inference(torch.cat([x for x, _ in batch]), mode)
    align = model.decode_head.align_corners
    return [summarize(lg, size, align, **wanted) for lg, (_, size) in zip(logits, batch, strict=True)]


def predict(
    model: EncoderDecoder, images: ImageLike | Sequence[ImageLike], mode: str | None = None, tta: bool = False, batch_size: int = 1
) -> list[Tensor]:
    """Label maps (H, W) int64 on the CPU, one per image at its original size (:func:`predict_outputs`)."""
    return [p.labels for p in predict_outputs(model, images, mode, tta, batch_size)]


@torch.no_grad()
def classify(model: nn.Module, images: ImageLike | Sequence[ImageLike], size: int | None = None) -> list[Tensor]:
    """(num_classes,) float32 class probabilities on the CPU, one per image, by the classifier's
    preprocessing (official evaluation resize and centre crop, to ``size`` when given)."""
    if getattr(model, "num_classes", 0) <= 0 or isinstance(model, EncoderDecoder):
        raise ValueError("classify needs a classifier (a SwinTransformer with num_classes > 0)")
    images, _ = _as_list(images)
    was_training = model.training
    model.eval()
    try:
        pre = replace(model.preprocessing, size=(size,)) if size else None
        return [model(preprocess(model, image, preprocessing=pre))[0].float().softmax(-1).cpu() for image in images]
    finally:
        model.train(was_training)


def inference(
    model: nn.Module,
    images: ImageLike | Sequence[ImageLike],
    mode: str | None = None,
    tta: bool = False,
    batch_size: int = 1,
    confidence: bool = False,
    entropy: bool = False,
    topk: int = 0,
) -> Tensor | Prediction | list[Tensor] | list[Prediction]:
    """``swinseg.inference(model, "image.jpg")``: a segmentor's (H, W) label map at the image's
    size (:func:`predict`), or a classifier's (num_classes,) probabilities (:func:`classify`).
    With ``confidence``, ``entropy`` or ``topk``, a segmentor gives a :class:`Prediction`
    instead. One image gives one result; a list gives a list."""
    batch, single = _as_list(images)
    if not isinstance(model, EncoderDecoder):
        out = classify(model, batch)
    elif confidence or entropy or topk:
        out = predict_outputs(model, batch, mode, tta, batch_size, confidence, entropy, topk)
    else:
        out = predict(model, batch, mode=mode, tta=tta, batch_size=batch_size)
    return out[0] if single else out


def top_classes(probs: Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes of (num_classes,) ``probs`` as (name, probability):
    ImageNet-1K names for 1000 classes, else ``class <i>``."""
    names = imagenet_classes() if probs.numel() == 1000 else None
    top = probs.topk(min(k, probs.numel()))
    return [(names[i] if names else f"class {i}", p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
