"""Checking uploaded media before any pixel is decoded: type, pixel count, duration.

An image's header is read with Pillow: it gives the format and size cheaply, so a 100-megapixel
"bomb" is refused before it is decoded. The pixels are then decoded by ``emolens.images``, the
decoder of ``emolens analyze``: the same EXIF rule, 16-bit and alpha handled the same way. Videos
are opened with the same ``VideoSource`` as ``emolens analyze`` and refused when their frames or
duration exceed the limits.

Status codes: a declared type that is neither an accepted image/video type nor
``application/octet-stream`` is 415, as is content in another format (an image sent as a video
too); content that does not decode is 422; beyond a limit is 413.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from emolens import images
from emolens.errors import EmolensError
from emolens.serve.config import Limits
from emolens.serve.errors import ApiError
from emolens.sources import VideoSource

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
ANY_TYPE = "application/octet-stream"
# Pillow's formats that decode as one of those: MPO is a JPEG with more images after it (many phones and
# cameras write it); Pillow's first frame is the photo itself.
DECODED_FORMATS = {*IMAGE_TYPES.values(), "MPO"}


def media_type(content_type: str | None) -> str:
    """``image/jpeg`` from ``image/jpeg; charset=...``; empty when none was declared."""
    return (content_type or "").split(";")[0].strip().lower()


def check_image_type(content_type: str | None) -> None:
    """415 unless the declared type is an accepted image type, octet-stream, or absent."""
    declared = media_type(content_type)
    if declared and declared != ANY_TYPE and declared not in IMAGE_TYPES:
        raise ApiError(415, f"unsupported content type {declared!r}: send image/jpeg, image/png or image/webp")


def check_video_type(content_type: str | None) -> None:
    """415 unless the declared type is ``video/*``, octet-stream, or absent."""
    declared = media_type(content_type)
    if declared and declared != ANY_TYPE and not declared.startswith("video/"):
        raise ApiError(415, f"unsupported content type {declared!r}: send a video (video/mp4, video/webm, ...)")


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """``uint8 (H, W, 3)`` BGR pixels of a JPEG, PNG or WebP, turned upright by its EXIF orientation.

    Raises:
        ApiError: 415 another format, 413 more than ``limits.pixels``, 422 empty, not an image or truncated.
    """
    if not data:
        raise ApiError(422, "empty upload: send the image's bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        if isinstance(error, UnidentifiedImageError):
            raise ApiError(422, "not an image: the upload is not a JPEG, PNG or WebP file") from None
        raise ApiError(413, f"image too large: more than {limits.pixels} pixels") from None
    if image.format not in DECODED_FORMATS:
        raise ApiError(415, f"unsupported image format {image.format}: send JPEG, PNG or WebP")
    width, height = image.size
    if width * height > limits.pixels:
        raise ApiError(413, f"image too large: {width}x{height} is {width * height} pixels, "
                            f"the limit is {limits.pixels}")
    pixels = images.decode_image(data)
    if pixels is None:
        raise ApiError(422, "cannot decode the image (truncated or corrupt)")
    return images.to_bgr8(pixels)


def _image_format(path: Path) -> str | None:
    """The format of the file at ``path`` when it is an image ``POST /v1/images`` reads (its header only), else None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(IMAGE_TYPES.values())) as image:  # an MPO opens as JPEG
                return image.format
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
            return None


def open_video(path: Path, limits: Limits, every: int = 1) -> VideoSource:
    """The upload at ``path`` opened for reading (one frame in ``every``), after checking its frame size
    and duration.

    Raises:
        ApiError: 415 an image (OpenCV would read it as a one-frame video), 422 not a readable video, 413 frames or
            duration beyond the limits.
    """
    if still := _image_format(path):
        raise ApiError(415, f"the upload is a {still} image, not a video: send images to POST /v1/images")
    try:
        source = VideoSource(path, every)
    except EmolensError:
        raise ApiError(422, "cannot read the video: not a video, truncated, or a codec this server lacks") from None
    width, height = source.size_wh
    duration = source.frame_count / source.fps if source.fps else 0.0
    problem = None
    if width * height > limits.pixels:
        problem = f"video frames too large: {width}x{height}, the limit is {limits.pixels} pixels"
    elif duration > limits.video_s:
        problem = f"video too long: {duration:.0f} s, the limit is {limits.video_s:.0f} s"
    if problem:
        source.close()
        raise ApiError(413, problem)
    return source
