"""swinseg: Swin Transformer classification and segmentation in plain PyTorch.

>>> import swinseg
>>> model = swinseg.create_model("swin_tiny_patch4_window7_224")          # official classifier
>>> backbone = swinseg.SwinTransformer()                                   # MMSegmentation backbone
>>> report = swinseg.load_checkpoint(backbone, "swin_tiny_patch4_window7_224.pth")
>>> seg = swinseg.create_model("swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512", pretrained=True)
>>> labels = swinseg.inference(seg, "image.jpg")                          # (H, W) class ids
>>> swinseg.ops.choices()                                                  # the kernels chosen on this machine
"""

from . import ops
from .models import EncoderDecoder, SwinTransformer, create_model, list_models, swin_b, swin_l, swin_s, swin_t
from .predict import PredictOptions, inference
from .weights import LoadReport, convert_checkpoint, load_checkpoint, save_checkpoint

__version__ = "0.1.0"

__all__ = [
    "EncoderDecoder",
    "LoadReport",
    "PredictOptions",
    "SwinTransformer",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "inference",
    "list_models",
    "load_checkpoint",
    "ops",
    "save_checkpoint",
    "swin_b",
    "swin_l",
    "swin_s",
    "swin_t",
]
