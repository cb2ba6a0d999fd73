"""Cut each detected face out of a frame, framed the way the classifier was trained.

The crop geometry comes from the model card (``CropGeometry``): a square around the
detector's box, scaled and shifted to match FER2013's centred framing, turned so that
the eyes are level, and padded by replicating edge pixels where it leaves the frame.
``emolens evaluate`` runs the same function, so evaluation measures what the app does.

Example::

    crops = crop_faces(bgr_image, faces, card)   # uint8 (n, 48, 48, 1) for a gray 48x48 model
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from emolens.card import CropGeometry, ModelCard
from emolens.types import Faces

# Above this shrink factor a single bilinear warp aliases; we warp to an intermediate
# size first and average down with INTER_AREA.
_MAX_DIRECT_SHRINK = 2.0


def crop_faces(image: np.ndarray, faces: Faces, card: ModelCard) -> np.ndarray:
    """``uint8 (n, H, W, C)`` classifier inputs for the faces of a BGR or gray image."""
    height, width = card.input_hw
    out = np.empty((len(faces), height, width, card.channels), np.uint8)
    for index in range(len(faces)):
        crop = _crop_one(image, card.channels, faces.xyxy[index], faces.keypoints[index], card.crop, (width, height))
        out[index] = crop.reshape(height, width, card.channels)
    return out


def crop_square(xyxy: np.ndarray, keypoints: np.ndarray, geometry: CropGeometry) -> tuple[float, float, float, float]:
    """Centre x, centre y, side (pixels) and roll (radians) of one face's crop square."""
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    box_width = x1 - x0
    roll = 0.0
    if geometry.roll and np.any(keypoints):
        # Keypoint 0 is the person's right eye (image left), 1 the left eye.
        (rx, ry), (lx, ly) = keypoints[0], keypoints[1]
        roll = math.atan2(float(ly - ry), float(lx - rx))
    cos, sin = math.cos(roll), math.sin(roll)
    dx, dy = geometry.offset_x * box_width, geometry.offset_y * box_width
    centre_x = (x0 + x1) / 2 + cos * dx - sin * dy
    centre_y = (y0 + y1) / 2 + sin * dx + cos * dy
    return centre_x, centre_y, geometry.scale * box_width, roll


def _crop_one(image: np.ndarray, channels: int, xyxy: np.ndarray, keypoints: np.ndarray, geometry: CropGeometry,
              size_wh: tuple[int, int]) -> np.ndarray:
    centre_x, centre_y, side, roll = crop_square(xyxy, keypoints, geometry)
    # Only the region the warp reads is converted (to gray, for a gray model), not the whole frame.
    pixels, (left, top) = _region(image, centre_x, centre_y, side, channels)
    centre_x, centre_y = centre_x - left, centre_y - top
    out_w, out_h = size_wh
    shrink = side / out_w
    steps = max(1, min(4, int(shrink / _MAX_DIRECT_SHRINK) + (shrink > _MAX_DIRECT_SHRINK)))
    warp_w, warp_h = out_w * steps, out_h * steps
    # Affine map from crop pixels (u, v) to source pixels, rotated by the roll angle.
    scale = side / warp_w
    cos, sin = math.cos(roll) * scale, math.sin(roll) * scale
    half_w, half_h = warp_w / 2, warp_h / 2
    matrix = np.array([
        [cos, -sin, centre_x - cos * half_w + sin * half_h],
        [sin, cos, centre_y - sin * half_w - cos * half_h],
    ], np.float64)
    warped = cv2.warpAffine(pixels, matrix, (warp_w, warp_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    if steps > 1:
        warped = cv2.resize(warped, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return warped


def _region(image: np.ndarray, centre_x: float, centre_y: float, side: float,
            channels: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The part of ``image`` that a crop square (turned any way) samples, in ``channels``, and its top-left corner.

    It reaches 2 px past the square's circumscribed circle (bilinear reads a neighbour), so inside the frame the
    warp reads the same pixels as from the whole image; where the square leaves the frame the region ends at the
    frame's edge, so edge replication repeats the same pixels too.
    """
    reach = side / math.sqrt(2) + 2
    height, width = image.shape[:2]
    # Clamped so that at least the frame's last row or column stays in, for a square wholly outside it.
    left = min(max(0, math.floor(centre_x - reach)), width - 1)
    top = min(max(0, math.floor(centre_y - reach)), height - 1)
    right = min(width, max(left + 1, math.ceil(centre_x + reach) + 1))
    bottom = min(height, max(top + 1, math.ceil(centre_y + reach) + 1))
    return _to_channels(image[top:bottom, left:right], channels), (left, top)


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1 and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if channels == 3 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image
