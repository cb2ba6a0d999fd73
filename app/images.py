"""Read image files of any common format and depth, and convert pixels to a model's format."""

from __future__ import annotations

import os

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """Pixels of an image file as OpenCV decodes them (any depth/channels); ``None`` if unreadable."""
    try:
        buffer = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) if buffer.size else None


def to_bgr8(image: np.ndarray) -> np.ndarray:
    """``uint8 (H, W, 3)`` BGR from gray, BGRA, 16-bit or float pixels."""
    image = to_uint8(image)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return image


def to_model_pixels(image: np.ndarray, size_hw: tuple[int, int], channels: int) -> np.ndarray:
    """A whole image as one model input: ``uint8 (H, W, channels)``, resized, gray or BGR."""
    image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 1 and image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif channels == 3 and (image.ndim == 2 or image.shape[2] == 1):
        image = cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    height, width = size_hw
    if image.shape[:2] != (height, width):
        shrinking = image.shape[0] > height
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return image.reshape(height, width, channels)
