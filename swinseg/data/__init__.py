"""Data: image reading, transforms, preprocessing records, datasets and class names."""

from .imagenet import imagenet_classes
from .io import read_image
from .transforms import Preprocessing

__all__ = ["Preprocessing", "imagenet_classes", "read_image"]
