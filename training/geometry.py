"""Derive the crop geometry (detector box -> FER-style crop) from the training data itself.

FER2013 faces are registered crops, larger than a face detector's box and centred a little
higher. To frame live faces the same way we measure the relation on the data: each training
face is upscaled, placed in the middle of a larger canvas, run through the app's own
``FaceDetector``, and the crop's side and centre are expressed in units of the detected
box's width. The medians over all detected faces become ``CropGeometry`` in the card.

Example::

    geometry, stats = derive_crop_geometry(x_train[:1000])
"""

from __future__ import annotations

import numpy as np

from emolens.card import CropGeometry
from emolens.detect import FaceDetector
from emolens.evaluation.scenes import face_in_frame

UPSCALE = 4
CANVAS_FACTOR = 2


def place_on_canvas(face: np.ndarray, upscale: int = UPSCALE, canvas_factor: int = CANVAS_FACTOR
                    ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Upscale a face crop and centre it on a larger BGR canvas (edges replicated).

    Returns the canvas and ``(left, top, side)`` of the crop on it, in canvas pixels.
    """
    side = face.shape[0] * upscale
    margin = side * (canvas_factor - 1) // 2
    canvas_side = side + 2 * margin
    return face_in_frame(face, side, (canvas_side, canvas_side), margin, margin), (margin, margin, side)


def derive_crop_geometry(faces: np.ndarray, min_detected: int = 10) -> tuple[CropGeometry, dict]:
    """Median crop geometry over ``uint8 (n, S, S, C)`` face crops, and statistics about it.

    Raises:
        ValueError: fewer than ``min_detected`` faces were found.
    """
    scales, offsets_x, offsets_y = [], [], []
    with FaceDetector(model="short", min_confidence=0.5, max_faces=1) as detector:
        for face in faces:
            canvas, (left, top, side) = place_on_canvas(face)
            found = detector.detect(canvas)
            if not len(found):
                continue
            x0, y0, x1, y1 = found.xyxy[0]
            width = x1 - x0
            scales.append(side / width)
            offsets_x.append((left + side / 2 - (x0 + x1) / 2) / width)
            offsets_y.append((top + side / 2 - (y0 + y1) / 2) / width)
    if len(scales) < min_detected:
        raise ValueError(f"the face detector found only {len(scales)} of {len(faces)} training faces; "
                         f"at least {min_detected} are needed to derive the crop geometry")
    geometry = CropGeometry(scale=round(float(np.median(scales)), 4), offset_x=round(float(np.median(offsets_x)), 4),
                            offset_y=round(float(np.median(offsets_y)), 4), roll=True)
    stats = {
        "method": f"FER crops upscaled x{UPSCALE}, centred on a canvas {CANVAS_FACTOR}x their size (edges replicated), "
                  "detected with the short-range detector; medians over detected faces, in units of box width",
        "faces_sampled": int(len(faces)),
        "faces_detected": len(scales),
        "scale_iqr": [round(float(q), 4) for q in np.percentile(scales, [25, 75])],
        "offset_x_iqr": [round(float(q), 4) for q in np.percentile(offsets_x, [25, 75])],
        "offset_y_iqr": [round(float(q), 4) for q in np.percentile(offsets_y, [25, 75])],
        "box_width_share_of_crop": round(float(np.median(1 / np.array(scales))), 4),
    }
    return geometry, stats
