"""Read image files of any common format and depth, and convert pixels to a model's format.

``decode_image`` is the one image decoder of the app, the service, ``evaluate`` and the training
loaders (``read_image`` reads a file's bytes into it): it
applies the EXIF orientation, so a phone photo taken upright but stored rotated (the
camera writes ``Orientation`` = 6 instead of turning the pixels) comes out upright, as every
photo viewer shows it. OpenCV's ``IMREAD_UNCHANGED`` (needed to keep 16-bit and alpha)
ignores that tag; Pillow reads it from the file's header without decoding the pixels.
The header also gives the image's size, so an image of more than ``MAX_IMAGE_PIXELS`` (a
decompression bomb: a 1 MB PNG can declare 20000x20000 pixels, 1.2 GB once decoded to BGR)
is refused before any pixel is decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from emolens.errors import EmolensError
from emolens.native import captured_native_stderr

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"})


_EXIF_ORIENTATION = 0x0112
# Pillow's own decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS): above it Image.open refuses the file.
MAX_IMAGE_PIXELS = 178_956_970


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """Pixels of an image file (see ``decode_image``); ``None`` if it cannot be read."""
    try:
        return decode_image(np.fromfile(path, np.uint8))
    except OSError:
        return None


def decode_image(data: bytes | np.ndarray) -> np.ndarray | None:
    """Pixels of an encoded image (any format OpenCV reads, any depth and channels: 16-bit and alpha are
    kept for ``to_bgr8``), turned upright by its EXIF orientation; ``None`` if empty, damaged, truncated, or
    larger than ``MAX_IMAGE_PIXELS`` (told by its header, before decoding).

    A damaged image gives ``None`` without a word on the terminal (libpng prints its errors
    to stderr itself; they are caught).
    """
    buffer = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if not buffer.size or too_many_pixels(buffer):
        return None
    with captured_native_stderr():
        try:
            image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        except cv2.error:  # OpenCV's own size limit, for a header Pillow could not read
            return None
    if image is None:
        return None
    # bytes go to Pillow as they are (BytesIO shares them); an array or view is copied once for it
    return apply_orientation(image, exif_orientation(data if isinstance(data, bytes) else buffer.tobytes()))


def too_many_pixels(data, limit: int = MAX_IMAGE_PIXELS) -> bool:
    """Whether an encoded image's header declares more than ``limit`` pixels; its pixels are not decoded.

    ``data`` is the file's bytes (any bytes-like object). An image whose header Pillow cannot read
    is not judged here (``False``): OpenCV, which decodes it, has a limit of its own.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
    except Image.DecompressionBombError:  # over Pillow's own limit
        return True
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return False
    return width * height > limit


def exif_orientation(data: bytes) -> int:
    """The EXIF ``Orientation`` tag (1-8) of an encoded image; 1 (as stored) when absent or unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            orientation = header.getexif().get(_EXIF_ORIENTATION, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright for an EXIF orientation (1-8), as Pillow's ``ImageOps.exif_transpose`` does."""
    if orientation in (5, 6, 7, 8):  # stored on its side: swap the axes first
        image = image.swapaxes(0, 1)
    flips = {2: (False, True), 3: (True, True), 4: (True, False), 5: (False, False), 6: (False, True),
             7: (True, True), 8: (True, False)}.get(orientation, (False, False))
    if flips[0]:
        image = image[::-1]
    if flips[1]:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


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


def as_bgr8(image=None, rgb: np.ndarray | None = None) -> np.ndarray:
    """``uint8 (H, W, 3)`` BGR pixels from whatever a user hands the API, or a clear ``EmolensError``.

    Args:
        image: a path (``str`` or ``os.PathLike``), a PIL image (any mode), or a numpy array
            in OpenCV's BGR order (as ``cv2.imread`` returns it); gray, BGRA, 16-bit and
            float arrays are converted.
        rgb: a numpy array in RGB order instead (PIL, matplotlib, scikit-image, Qt).

    Raises:
        EmolensError: neither or both given, ``None`` (a failed ``cv2.imread``), a missing or
            unreadable file, or an array that is not an image.
    """
    if (image is None) == (rgb is None):
        if image is None:
            raise EmolensError("no image given (None): if it came from cv2.imread, that file could not be read; "
                               "pass the path itself for a precise message, e.g. analyze('photo.jpg')")
        raise EmolensError("give one image: a path, a PIL image or a BGR array as image, or an RGB array as rgb=")
    if rgb is not None:
        pixels = _check_array(rgb, "rgb")
        if pixels.ndim == 3 and pixels.shape[2] == 3:
            return cv2.cvtColor(to_uint8(pixels), cv2.COLOR_RGB2BGR)
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            return cv2.cvtColor(to_uint8(pixels), cv2.COLOR_RGBA2BGR)
        return to_bgr8(pixels)  # gray: no channel order
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise EmolensError(f"image not found: {path}")
        pixels = read_image(path)
        if pixels is None:
            raise EmolensError(f"cannot read image {path}: not an image, corrupt, a format OpenCV lacks, or over "
                               f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
        return np.ascontiguousarray(to_bgr8(pixels))
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image, without importing PIL
        return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(to_bgr8(_check_array(image, "image")))


def _check_array(pixels, name: str) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise EmolensError(f"cannot analyze a {type(pixels).__name__}: give a path, a PIL image or a numpy array")
    shaped = pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4))
    if not shaped or pixels.size == 0:
        raise EmolensError(f"{name} must be pixels of shape (H, W), (H, W, 3) or (H, W, 4), got {pixels.shape}")
    if not (np.issubdtype(pixels.dtype, np.integer) or np.issubdtype(pixels.dtype, np.floating)):
        raise EmolensError(f"{name} must hold numbers (uint8, uint16 or float), got {pixels.dtype}")
    return pixels
