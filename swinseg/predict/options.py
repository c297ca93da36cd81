"""How to predict, in one record that every prediction path takes (images, folders, video, huge
TIFFs, ``swinseg test``, ``benchmark``), built once from the command line or by the caller.

The model is never changed to pass an option: the test mode, windows and TTA views are read
from here, with the model's ``test_cfg`` as the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["BACKENDS", "PRECISIONS", "PredictOptions", "TTA_RATIOS", "as_options"]

# MMSegmentation's ADE20K tta_pipeline: scale ratios relative to the original image.
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
BACKENDS = ("torch", "compile", "onnxruntime", "openvino")
PRECISIONS = (None, "fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class PredictOptions:
    """``mode``: 'whole' or 'slide' (None: the model's ``test_cfg``); ``crop``/``stride``: slide
    windows (None: the model's; either one asks for slide). ``tta``: the mean of the softmax over
    ``tta_ratios`` x (``tta_flip``: with and without a horizontal flip). ``confidence``,
    ``entropy``, ``topk``: what a :class:`~swinseg.predict.Prediction` carries beside the
    labels; ``confidence_bits``: the depth of written confidence maps (8 or 16; needs
    ``confidence``). ``batch_size``: images decoded and written together (each is computed on its
    own). ``backend`` and ``dtype``: which runtime computes the logits (:mod:`swinseg.runtimes`);
    ``int8`` is OpenVINO's graph quantized by NNCF on the images of ``calibrate`` (a folder of
    images, or a config whose training images it takes)."""

    mode: str | None = None
    crop: int | None = None
    stride: int | None = None
    tta: bool = False
    tta_ratios: tuple[float, ...] = TTA_RATIOS
    tta_flip: bool = True
    confidence: bool = False
    entropy: bool = False
    topk: int = 0
    confidence_bits: int | None = None
    batch_size: int = 1
    backend: str = "torch"
    dtype: str | None = None
    calibrate: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in (None, "whole", "slide"):
            raise ValueError(f"mode must be 'whole' or 'slide', got {self.mode!r}")
        if self.mode == "whole" and (self.crop is not None or self.stride is not None):
            raise ValueError("crop and stride set slide windows: they do nothing with mode whole (use mode slide, or drop them)")
        for name in ("crop", "stride"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        object.__setattr__(self, "tta_ratios", tuple(float(r) for r in self.tta_ratios))
        if not self.tta_ratios or min(self.tta_ratios) <= 0:
            raise ValueError(f"tta_ratios must be positive scale ratios, got {list(self.tta_ratios)}")
        if isinstance(self.topk, bool) or not isinstance(self.topk, int) or self.topk < 0:
            raise ValueError(f"topk must be 0 or more, got {self.topk!r}")
        if self.confidence_bits is not None:
            if self.confidence_bits not in (8, 16):
                raise ValueError(f"confidence_bits must be 8 or 16, got {self.confidence_bits!r}")
            if not self.confidence:
                raise ValueError("confidence_bits sets the depth of confidence maps: it needs confidence=True")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, got {self.batch_size!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype not in PRECISIONS:
            raise ValueError(f"dtype must be fp32, bf16, fp16 or int8, got {self.dtype!r}")
        if self.dtype == "int8" and self.backend != "openvino":
            raise ValueError(f"dtype int8 is OpenVINO's quantized graph: it needs backend openvino, not {self.backend}")
        if self.dtype == "int8" and not self.calibrate:
            raise ValueError("dtype int8 needs calibrate: a folder of images, or a config whose training images calibrate the quantization")
        if self.calibrate and self.dtype != "int8":
            raise ValueError(
                f"calibrate calibrates dtype int8: it does nothing with dtype {self.dtype or 'fp32'} (drop it, or add dtype int8)"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **fields: Any) -> PredictOptions:
        """A training config's ``test`` section (``mode``, ``tta``), with ``fields`` given by the
        caller (the command line) taking precedence where they are set."""
        test = config["test"]
        merged = {"mode": test["mode"], "tta": test["tta"]} | {k: v for k, v in fields.items() if v is not None}
        if merged.get("mode") == "whole" and "mode" not in fields and (fields.get("crop") or fields.get("stride")):
            merged["mode"] = None  # crop/stride on the command line ask for slide over the config's whole
        return cls(**merged)

    @property
    def weights(self) -> str:
        """The dtype to load torch weights in: the options' for the torch backends; float32 for
        the graph backends, which export from float32 weights and convert on their own."""
        return (self.dtype or "fp32") if self.backend in ("torch", "compile") else "fp32"

    @property
    def bits(self) -> int:
        """The depth of confidence maps written to files: 0 without ``confidence``, else 8 unless set."""
        return (self.confidence_bits or 8) if self.confidence else 0

    def windows(self, test_cfg: Mapping[str, Any]) -> tuple[str, list[int], list[int]]:
        """``(mode, crop_size, stride)`` from these options over a model's ``test_cfg``."""
        slide = self.mode == "slide" or (self.mode is None and (self.crop is not None or self.stride is not None))
        mode = "slide" if slide else self.mode or test_cfg["mode"]
        crop = list(test_cfg["crop_size"]) if self.crop is None else [self.crop, self.crop]
        stride = list(test_cfg["stride"]) if self.stride is None else [self.stride, self.stride]
        return mode, crop, stride


def as_options(options: PredictOptions | None = None, **fields: Any) -> PredictOptions:
    """``options`` (default: all defaults) with ``fields`` replaced: the keyword arguments of the
    library's functions, e.g. ``inference(model, image, tta=True)``."""
    unknown = sorted(set(fields) - set(PredictOptions.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown prediction option {unknown[0]!r}: the options are {', '.join(PredictOptions.__dataclass_fields__)}")
    return replace(options or PredictOptions(), **fields) if fields else options or PredictOptions()
