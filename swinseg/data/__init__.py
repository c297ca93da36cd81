"""Data: image reading, preprocessing and class names."""

from .imagenet import classification_input, imagenet_classes
from .io import read_image

__all__ = ["classification_input", "imagenet_classes", "read_image"]
