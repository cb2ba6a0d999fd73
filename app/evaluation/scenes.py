"""Put registered face crops back into camera-like frames, and cut them out as the app does.

FER-style data sets hold tight, clean 48x48 crops; the app classifies crops it cut from a
camera frame or a photo: colour turned to gray, resampled from another size, JPEG and
webcam blur, uneven light, sometimes a face across the frame's edge padded by the crop.
``render_scene`` makes such a frame from a crop; ``pipeline_crops`` runs the app's own
detector and ``crop_faces`` on it. The trainer learns from these views and ``emolens
evaluate --scenes`` measures accuracy on them, so both see exactly what the app sees.

Example::

    with FaceDetector() as detector:
        crops, found = pipeline_crops(faces, card, detector, seed=0)
"""

from __future__ import annotations

import cv2
import numpy as np

from emolens.card import ModelCard
from emolens.crop import crop_faces
from emolens.detect import FaceDetector

FRAME_HW = (360, 480)
#: Side of the face's registered square in the frame, pixels (a webcam at about 0.5-2 m).
SIDE_RANGE = (72, 240)
#: Share of scenes whose face is cut by the frame's edge, and how much of it at most.
EDGE_SHARE, EDGE_CUT = 0.25, 0.25


def face_in_frame(face: np.ndarray, side: int, frame_hw: tuple[int, int], left: int, top: int) -> np.ndarray:
    """A ``uint8 (H, W, 3)`` BGR frame holding ``face`` (a gray or BGR crop) upscaled to ``side`` pixels at
    ``(left, top)``, where it may stick out of the frame; the face's border, replicated, fills the rest, so
    the detector finds no hard edge to key on. The one way a crop is put into a frame, for the pipeline-realistic
    evaluation (``render_scene``) and the trainer's crop geometry (``training.geometry``)."""
    height, width = frame_hw
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    if big.ndim == 2 or big.shape[-1] == 1:
        big = cv2.cvtColor(big.reshape(side, side), cv2.COLOR_GRAY2BGR)
    padded = cv2.copyMakeBorder(big, max(top, 0), max(height - top - side, 0), max(left, 0),
                                max(width - left - side, 0), cv2.BORDER_REPLICATE)
    return padded[max(-top, 0):max(-top, 0) + height, max(-left, 0):max(-left, 0) + width]


def render_scene(face: np.ndarray, rng: np.random.Generator, frame_hw: tuple[int, int] = FRAME_HW) -> np.ndarray:
    """A ``uint8 (H, W, 3)`` BGR frame holding ``face`` (a gray or BGR registered crop)."""
    height, width = frame_hw
    side = int(rng.uniform(*SIDE_RANGE))
    cast = rng.uniform(0.9, 1.1, 3)  # a colour cast, lost again in gray
    left, top = rng.integers(0, width - side + 1), rng.integers(0, height - side + 1)
    if rng.random() < EDGE_SHARE:
        cut = int(side * rng.uniform(0.05, EDGE_CUT))
        edge = rng.integers(4)
        left = -cut if edge == 0 else width - side + cut if edge == 1 else left
        top = -cut if edge == 2 else height - side + cut if edge == 3 else top
    placed = face_in_frame(face, side, frame_hw, int(left), int(top))
    frame = np.clip(placed * cast, 0, 255).astype(np.uint8).astype(np.float32)
    frame = cv2.multiply(frame, cv2.merge([_light_gradient(frame_hw, rng)] * 3))
    frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.3, 1.5))
    noise = np.empty_like(frame)
    cv2.setRNGSeed(int(rng.integers(2**31)))
    cv2.randn(noise, 0, float(rng.uniform(0, 4)))  # sensor noise; OpenCV's generator is much faster here
    quality = int(rng.integers(40, 96))
    pixels = np.clip(cv2.add(frame, noise), 0, 255).astype(np.uint8)
    return cv2.imdecode(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)


def _light_gradient(frame_hw: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Multiplicative light falling off across the frame in a random direction (0.6x-1.4x)."""
    height, width = frame_hw
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.4)
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    return (1 + strength * ramp) * rng.uniform(0.75, 1.2)


def pipeline_crops(faces: np.ndarray, card: ModelCard, detector: FaceDetector, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each face rendered into a scene, detected and cropped by the app's code.

    Returns ``uint8 (n, H, W, C)`` crops and ``bool (n,)`` found; a face the detector misses
    keeps a zero crop and ``found`` false.
    """
    rng = np.random.default_rng(seed)
    height, width = card.input_hw
    crops = np.zeros((len(faces), height, width, card.channels), np.uint8)
    found = np.zeros(len(faces), bool)
    for index, face in enumerate(faces):
        frame = render_scene(face, rng)
        detected = detector.detect(frame)
        if len(detected):
            best = detected[np.array([int(np.argmax(detected.det_score))])]
            crops[index] = crop_faces(frame, best, card)[0]
            found[index] = True
    return crops, found
