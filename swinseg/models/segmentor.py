"""Encoder-decoder segmentor (Swin backbone + UPerHead + auxiliary FCNHead) with MMSegmentation's
tensor-level method names: ``extract_feat``, ``encode_decode``, ``inference`` (whole / slide),
``loss``. Images in, label maps out: :mod:`swinseg.predict`."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..configs.defaults import DATA_PREPROCESSOR, TEST_CFG, TEST_PIPELINE
from ..configs.rules import MODEL_RULES, check_rules
from ..data.classes import default_dataset_meta
from ..data.transforms import Preprocessing
from .heads import FCNHead, UPerHead, resize
from .swin import SwinTransformer

__all__ = ["Decode", "EncoderDecoder", "infer_logits", "resized_rows", "row_strips", "seg_cross_entropy", "slide_grid", "slide_logits"]


def resized_rows(logits: Tensor, size: Sequence[int], top: int, bottom: int, align_corners: bool = False) -> Tensor:
    """Rows ``top:bottom`` of the bilinear resize of (B, C, h, w) ``logits`` to ``size`` (H, W),
    from just the source rows they need: (B, C, bottom - top, W), differentiable. The width is
    resized by ``F.interpolate`` and the rows blended with its weights."""
    h = logits.shape[-2]
    height, width = size
    y = torch.arange(top, bottom, dtype=torch.promote_types(logits.dtype, torch.float32), device=logits.device)
    if align_corners:
        src = y * ((h - 1) / (height - 1) if height > 1 else 0.0)
    else:
        src = ((y + 0.5) * (h / height) - 0.5).clamp(min=0)
    y0 = src.floor().long().clamp(max=h - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    first, last = _source_rows(h, height, top, bottom, align_corners)
    band = resize(logits[:, :, first : last + 1], (last - first + 1, width), align_corners)
    weight = (src - y0).view(-1, 1).to(band.dtype)
    # index_select, not advanced indexing: its backward adds rows back (index_add_) instead of an
    # accumulating index_put, several times slower on a CPU
    return band.index_select(2, y0 - first) * (1 - weight) + band.index_select(2, y1 - first) * weight


def _source_rows(h: int, height: int, top: int, bottom: int, align_corners: bool) -> tuple[int, int]:
    """First and last source rows that output rows ``top:bottom`` read, computed in Python (reading
    them from the index tensor would wait for the device once per strip); one row of margin
    each side covers the float32 rounding of the tensor's positions. A wider band is exact:
    its height is not resized."""
    scale = ((h - 1) / (height - 1) if height > 1 else 0.0) if align_corners else h / height
    start = top * scale if align_corners else max((top + 0.5) * scale - 0.5, 0.0)
    end = (bottom - 1) * scale if align_corners else max((bottom - 0.5) * scale - 0.5, 0.0)
    return max(math.floor(start) - 1, 0), min(math.floor(end) + 2, h - 1)


def row_strips(height: int, per_row: int, max_elements: int) -> list[tuple[int, int]]:
    """``(top, bottom)`` bands of rows covering ``height`` rows, each of about ``max_elements`` values."""
    rows = max(1, max_elements // max(per_row, 1))
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


class _UpsampledCrossEntropy(torch.autograd.Function):
    """Sum of the pixel cross-entropies of resized logits, strip by strip; the gradient with
    respect to the low-resolution logits is accumulated in the forward pass, so that no
    full-resolution tensor is kept for the backward pass."""

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, labels: Tensor, ignore_index: int, align_corners: bool, max_elements: int
    ) -> tuple[Tensor, Tensor]:
        B, C = logits.shape[:2]
        H, W = labels.shape[-2:]
        src = logits.detach().to(torch.promote_types(logits.dtype, torch.float32)).requires_grad_()
        total = torch.zeros((), dtype=src.dtype, device=logits.device)
        correct = torch.zeros((), dtype=torch.int64, device=logits.device)
        with torch.enable_grad():
            for top, bottom in row_strips(H, B * C * W, max_elements):
                strip = resized_rows(src, (H, W), top, bottom, align_corners)
                target = labels[:, top:bottom]
                loss = F.cross_entropy(strip, target, ignore_index=ignore_index, reduction="sum")
                loss.backward()
                total += loss.detach()
                # the label's logit is the largest (as argmax == label, ties aside), without argmax's slow strided scan
                scores = strip.detach()
                picked = scores.gather(1, target.clamp(0, C - 1).unsqueeze(1)).squeeze(1)
                correct += ((picked >= scores.amax(1)) & (target != ignore_index)).sum()
        ctx.save_for_backward(src.grad)
        ctx.dtype = logits.dtype
        ctx.mark_non_differentiable(correct)
        return total, correct

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor, grad_correct: Tensor) -> tuple[Tensor | None, ...]:
        (grad,) = ctx.saved_tensors
        return (grad * grad_total).to(ctx.dtype), None, None, None, None


def slide_grid(length: int, crop: int, stride: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the windows along one axis, as MMSegmentation's slide inference places
    them: ``max(length - crop + stride - 1, 0) // stride + 1`` windows, clamped to the end."""
    count = max(length - crop + stride - 1, 0) // stride + 1
    return [(max(min(i * stride + crop, length) - crop, 0), min(i * stride + crop, length)) for i in range(count)]


Decode = Callable[[Tensor], Tensor]  # normalized (B, 3, h, w) -> (B, classes, h/4, w/4) float32 logits


def slide_logits(
    decode: Decode, inputs: Tensor, crop_size: Sequence[int], stride: Sequence[int], num_classes: int, align_corners: bool
) -> Tensor:
    """(B, num_classes, H, W) logits from overlapping crops of (B, 3, H, W) ``inputs``: the
    :func:`slide_grid` windows, each window's ``decode`` logits resized to it, summed into
    place and divided by the number of windows covering each pixel."""
    (h_crop, w_crop), (h_stride, w_stride) = crop_size, stride
    if min(h_crop, w_crop, h_stride, w_stride) <= 0:
        raise ValueError(f"slide inference needs positive crop_size and stride, got {list(crop_size)}, {list(stride)}")
    batch, _, height, width = inputs.shape
    dtype = torch.promote_types(inputs.dtype, torch.float32)
    logits = inputs.new_zeros((batch, num_classes, height, width), dtype=dtype)
    count = inputs.new_zeros((1, 1, height, width), dtype=dtype)
    for y1, y2 in slide_grid(height, h_crop, h_stride):
        for x1, x2 in slide_grid(width, w_crop, w_stride):
            logits[:, :, y1:y2, x1:x2] += resize(decode(inputs[:, :, y1:y2, x1:x2]), (y2 - y1, x2 - x1), align_corners)
            count[:, :, y1:y2, x1:x2] += 1
    return logits / count


def infer_logits(
    decode: Decode,
    inputs: Tensor,
    mode: str,
    crop_size: Sequence[int],
    stride: Sequence[int],
    num_classes: int,
    align_corners: bool,
) -> Tensor:
    """(B, 3, H, W) normalized -> (B, num_classes, H, W) logits: ``decode`` of the whole image
    resized to it (``mode`` 'whole') or :func:`slide_logits` ('slide').

    Each image of a batch is computed on its own, so that its logits are bit-identical alone or
    in any batch: matrix-product libraries choose their algorithm (and so the rounding) by the
    number of rows, which a batch multiplies (oneDNN does for the pyramid pooling's 1x1
    convolutions, whose rows are batch x bins^2). On a CPU batching gains nothing measurable
    (BENCHMARKS.md)."""
    if inputs.ndim != 4 or inputs.shape[1] != 3 or inputs.numel() == 0:
        raise ValueError(f"inputs must be normalized (B, 3, H, W) images, got shape {tuple(inputs.shape)}")
    if mode not in ("whole", "slide"):
        raise ValueError(f"inference mode must be 'whole' or 'slide', got {mode!r}")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs contain NaN or Inf values")
    out = []
    for image in inputs.split(1):
        if mode == "whole":
            out.append(resize(decode(image), image.shape[-2:], align_corners))
        else:
            out.append(slide_logits(decode, image, crop_size, stride, num_classes, align_corners))
    return out[0] if len(out) == 1 else torch.cat(out)


def seg_cross_entropy(
    logits: Tensor, labels: Tensor, ignore_index: int = 255, align_corners: bool = False, max_elements: int = 2**22
) -> tuple[Tensor, Tensor]:
    """MMSegmentation's ``loss_ce`` and ``acc_seg`` of (B, C, h, w) logits resized bilinearly to
    the (B, H, W) labels: the cross-entropy averaged over ALL pixels, ignored ones counting as
    zero (``avg_non_ignore=False``), and the top-1 accuracy in percent over non-ignored pixels.

    Computed in strips of rows of about ``max_elements`` values: the resized logits, their
    log-softmax and its gradient (315 MB each for 2 x 150 x 512 x 512) never exist whole.
    """
    total, correct = _UpsampledCrossEntropy.apply(logits, labels, ignore_index, align_corners, max_elements)
    eps = torch.finfo(torch.float32).eps
    valid = (labels != ignore_index).sum().float()
    return total / labels.numel(), (correct.float() + eps) * (100.0 / (valid + eps))


class EncoderDecoder(nn.Module):
    """Swin + UPerNet as MMSegmentation's ``EncoderDecoder``; arguments are its config sections.

    Args:
        backbone: :class:`SwinTransformer` arguments.
        decode_head: :class:`UPerHead` arguments; ``in_channels=None`` takes the backbone's.
        auxiliary_head: :class:`FCNHead` arguments (loss only), or None.
        data_preprocessor: ``mean``/``std`` (RGB, 0..255 units) and the training batch
            ``size``, ``pad_val``, ``seg_pad_val``.
        test_cfg: ``mode`` ('whole' or 'slide'), and ``crop_size``/``stride`` (H, W) for slide.
        test_pipeline: ``scale`` that test images are resized into keeping their ratio.
        ignore_index: label value excluded from the loss and the accuracy.
    """

    def __init__(
        self,
        backbone: dict[str, Any] | None = None,
        decode_head: dict[str, Any] | None = None,
        auxiliary_head: dict[str, Any] | None = None,
        data_preprocessor: dict[str, Any] | None = None,
        test_cfg: dict[str, Any] | None = None,
        test_pipeline: dict[str, Any] | None = None,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        check_rules(
            dict(data_preprocessor=data_preprocessor, test_cfg=test_cfg, test_pipeline=test_pipeline, ignore_index=ignore_index),
            MODEL_RULES,
        )
        self.backbone = SwinTransformer(**(backbone or {}))
        channels = self.backbone.num_features
        decode_head = self._head_inputs("decode_head", decode_head or {}, channels, (0, 1, 2, 3))
        self.decode_head = UPerHead(**decode_head)
        self.auxiliary_head = None
        if auxiliary_head is not None:
            auxiliary_head = self._head_inputs("auxiliary_head", auxiliary_head, channels, 2)
            self.auxiliary_head = FCNHead(**auxiliary_head)
            if self.auxiliary_head.num_classes != self.decode_head.num_classes:
                raise ValueError(
                    f"auxiliary_head.num_classes={self.auxiliary_head.num_classes} differs from decode_head.num_classes="
                    f"{self.decode_head.num_classes}: both heads learn from the same labels"
                )
        self.data_preprocessor = copy.deepcopy({**DATA_PREPROCESSOR, **(data_preprocessor or {})})
        self.test_cfg = copy.deepcopy({**TEST_CFG, **(test_cfg or {})})
        self.test_pipeline = copy.deepcopy({**TEST_PIPELINE, **(test_pipeline or {})})
        self.ignore_index = ignore_index
        self.num_classes = self.decode_head.num_classes
        self.dataset_meta = default_dataset_meta(self.num_classes)
        self.config: dict[str, Any] = {
            "backbone": self.backbone.config,
            "decode_head": decode_head,
            "auxiliary_head": auxiliary_head,
            "data_preprocessor": self.data_preprocessor,
            "test_cfg": self.test_cfg,
            "test_pipeline": self.test_pipeline,
            "ignore_index": ignore_index,
        }

    @staticmethod
    def _head_inputs(name: str, cfg: dict[str, Any], channels: list[int], default_index: Any) -> dict[str, Any]:
        """The head config with ``in_channels`` taken from the backbone (or checked against it)."""
        cfg = dict(cfg)
        index = cfg.get("in_index", default_index)
        indices = [index] if isinstance(index, int) else list(index)
        if not all(-len(channels) <= i < len(channels) for i in indices):
            raise ValueError(f"{name}.in_index {index} is out of range for a backbone with {len(channels)} stages")
        expected = channels[index] if isinstance(index, int) else [channels[i] for i in indices]
        given = cfg.get("in_channels")
        if given is None:
            cfg["in_channels"] = expected
        elif (list(given) if not isinstance(given, int) else given) != expected:
            raise ValueError(
                f"{name}.in_channels={given} does not match the backbone's channels {expected} at in_index {index}; "
                f"leave it None to take the backbone's"
            )
        return cfg

    @property
    def preprocessing(self) -> Preprocessing:
        """The test pipeline: keep-ratio bilinear resize into ``test_pipeline['scale']``, then
        ``data_preprocessor``'s normalization (image-level inference: :mod:`swinseg.predict`)."""
        pre, scale = self.data_preprocessor, self.test_pipeline["scale"]
        size = tuple(scale) if isinstance(scale, (list, tuple)) else scale
        return Preprocessing("keep_ratio", size, "bilinear", tuple(pre["mean"]), tuple(pre["std"]))

    def extract_feat(self, inputs: Tensor) -> list[Tensor]:
        """Normalized (B, 3, H, W) -> the backbone's list of (B, C_i, H/2^(i+2), W/2^(i+2)) maps."""
        return self.backbone(inputs)

    def decode(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, num_classes, H/4, W/4) decode-head logits in at least float32
        (a bf16/fp16 model's logits are resized in float32)."""
        logits = self.decode_head(self.extract_feat(inputs))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))

    def encode_decode(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, num_classes, H, W): :meth:`decode` resized to the input."""
        return resize(self.decode(inputs), inputs.shape[-2:], self.decode_head.align_corners)

    def forward(self, inputs: Tensor, labels: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        """Logits as :meth:`encode_decode`; with ``labels``, the training losses of :meth:`loss`
        (one entry point, so that DistributedDataParallel sees the training forward)."""
        return self.encode_decode(inputs) if labels is None else self.loss(inputs, labels)

    @property
    def align_corners(self) -> bool:
        """How the decode head's logits are resized (bilinear, MMSegmentation's flag)."""
        return self.decode_head.align_corners

    def slide_inference(self, inputs: Tensor, crop_size: Sequence[int], stride: Sequence[int]) -> Tensor:
        """:func:`slide_logits` of :meth:`decode`."""
        return slide_logits(self.decode, inputs, crop_size, stride, self.num_classes, self.align_corners)

    def inference(
        self,
        inputs: Tensor,
        mode: str | None = None,
        crop_size: Sequence[int] | None = None,
        stride: Sequence[int] | None = None,
    ) -> Tensor:
        """(B, 3, H, W) normalized -> (B, num_classes, H, W) logits (:func:`infer_logits`), by
        ``test_cfg`` unless given."""
        mode = mode or self.test_cfg["mode"]
        crop_size, stride = crop_size or self.test_cfg["crop_size"], stride or self.test_cfg["stride"]
        return infer_logits(self.decode, inputs, mode, crop_size, stride, self.num_classes, self.align_corners)

    def loss(self, inputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
        """Training losses for normalized (B, 3, H, W) inputs and (B, H', W') labels:
        ``decode.loss_ce`` (weight 1), ``aux.loss_ce`` (weight 0.4) and their ``acc_seg``."""
        feats = self.extract_feat(inputs)
        losses = {}
        for name, head in (("decode", self.decode_head), ("aux", self.auxiliary_head)):
            if head is None:
                continue
            loss, accuracy = seg_cross_entropy(head(feats), labels, self.ignore_index, head.align_corners)
            losses[f"{name}.loss_ce"] = head.loss_weight * loss
            losses[f"{name}.acc_seg"] = accuracy
        return losses
