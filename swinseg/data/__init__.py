"""Data: image reading, preprocessing and class names."""

from .imagenet import IMAGENET_MEAN, IMAGENET_STD, classification_input, imagenet_classes
from .io import read_image

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "classification_input", "imagenet_classes", "read_image"]
