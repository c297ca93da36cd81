"""swinseg: Swin Transformer classification and segmentation in plain PyTorch.

>>> import swinseg
>>> model = swinseg.create_model("swin_tiny_patch4_window7_224")          # official classifier
>>> backbone = swinseg.SwinTransformer()                                   # MMSegmentation backbone
>>> report = swinseg.load_checkpoint(backbone, "swin_tiny_patch4_window7_224.pth")
"""

from .checkpoint import LoadReport, convert_checkpoint, load_checkpoint, save_checkpoint
from .models import SwinTransformer, list_models, swin_b, swin_l, swin_s, swin_t
from .models.factory import create_model

__version__ = "0.1.0"

__all__ = [
    "LoadReport",
    "SwinTransformer",
    "__version__",
    "convert_checkpoint",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
    "swin_b",
    "swin_l",
    "swin_s",
    "swin_t",
]
