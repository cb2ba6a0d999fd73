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
    pixels = _to_channels(image, card.channels)
    out = np.empty((len(faces), height, width, card.channels), np.uint8)
    for index in range(len(faces)):
        crop = _crop_one(pixels, faces.xyxy[index], faces.keypoints[index], card.crop, (width, height))
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


def _crop_one(pixels: np.ndarray, xyxy: np.ndarray, keypoints: np.ndarray, geometry: CropGeometry,
              size_wh: tuple[int, int]) -> np.ndarray:
    centre_x, centre_y, side, roll = crop_square(xyxy, keypoints, geometry)
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


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1 and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if channels == 3 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image
