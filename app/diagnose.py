"""Why no face was found in a frame: too dark, too small, turned away, or none found.

``why_no_face`` judges from the frame's brightness and from a second, more lenient look of the
detector (``emolens.detect.FaintLook``: the full-range model on tiles, faint scores too): a dark frame
is too dark whatever else; otherwise the most likely face of that look (scoring at least
``LIKELY_FACE_SCORE``) is too small when its side is a small share of the frame's, or turned
away when its nose lies well beside the middle of its eyes; with no likely face, none found.

Example::

    faint = lenient_detector.detect(image)
    print(f"no face found in photo.jpg: {why_no_face(image, faint.xyxy, faint.det_score, faint.keypoints)}")
    # no face found in photo.jpg: too dark (mean brightness 18 of 255)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DARK_MEAN = 40.0  # mean brightness (0-255) under which a frame is too dark to read faces
LIKELY_FACE_SCORE = 0.5  # a faint candidate scoring this much is taken as the face the detector missed
SMALL_SHARE = 0.12  # a face whose side is under this share of the frame's short side is too small
TURNED_NOSE_SHARE = 0.4  # nose this many eye distances beside the eyes' middle: the head is turned
_LUMA = np.array([0.114, 0.587, 0.299])  # BGR weights of brightness (ITU-R BT.601)


@dataclass(frozen=True)
class NoFaceReason:
    """One of ``"too dark"``, ``"too small"``, ``"turned away"``, ``"none found"``, and the measure behind it."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason} ({self.detail})" if self.detail else self.reason


def why_no_face(image: np.ndarray, xyxy: np.ndarray, scores: np.ndarray, keypoints: np.ndarray) -> NoFaceReason:
    """The likely reason a BGR ``uint8 (H, W, 3)`` frame showed no face, given a lenient look's candidates
    (``float (n, 4)`` boxes, ``(n,)`` scores, ``(n, 6, 2)`` keypoints in MediaPipe's order)."""
    brightness = float((image[..., :3].reshape(-1, 3) @ _LUMA).mean())
    if brightness < DARK_MEAN:
        return NoFaceReason("too dark", f"mean brightness {brightness:.0f} of 255")
    likely = np.flatnonzero(np.asarray(scores) >= LIKELY_FACE_SCORE)
    if not len(likely):
        return NoFaceReason("none found")
    best = likely[np.argmax(np.asarray(scores)[likely])]
    side = float(np.max(xyxy[best, 2:] - xyxy[best, :2]))
    height, width = image.shape[:2]
    if side < SMALL_SHARE * min(height, width):
        return NoFaceReason("too small", f"a face of about {side:.0f} px in a {width}x{height} frame")
    right_eye, left_eye, nose = keypoints[best, 0], keypoints[best, 1], keypoints[best, 2]
    eyes = left_eye - right_eye
    offset = float(np.dot(nose - (right_eye + left_eye) / 2, eyes) / max(float(np.dot(eyes, eyes)), 1e-6))
    if abs(offset) > TURNED_NOSE_SHARE:
        return NoFaceReason("turned away", "the nose lies beside the eyes")
    return NoFaceReason("none found")
