"""Face detection with MediaPipe's BlazeFace models (run by LiteRT as MediaPipe runs them: ``emolens.blazeface``).

Two models ship in ``models/`` (provenance and sha256 in ``models/face_detector.json``):

* ``short`` (default): fast; finds faces that are large in the image it is given (about a
  third of its side or more), i.e. people near a webcam, or a few people filling the frame.
* ``full``: slower; also finds small, distant faces (a room of viewers on one camera), but
  misses more of the large ones.

Both models take a small square input (128 and 192 pixels), and a whole frame is letterboxed
into it, which shrinks every face by the frame's long side. So by default the short-range
model is given a wide frame (16:9, anything 1.5 times as wide as high) as overlapping
full-height squares (three for 16:9): each face is then as large to the model as it is in
the frame's height. A 4:3 frame gains less (1.33x) and each detector call has a fixed cost
of about a millisecond, so it keeps one pass; the full-range model, made for small faces,
finds fewer of the large ones in squares and keeps one pass too (``squares=True`` or
``False`` forces either). For a room of viewers, ``tiles=2`` (or 3) adds a grid of overlapping tiles, so each small
face covers a larger share of the detector's input. Boxes found twice in overlaps are
merged by non-maximum suppression.

A face that scores under ``min_confidence`` but at least half of it gets a second look (on by
default): the same model on a square of twice the box's side around it, where the face fills
more of the model's input. It is kept if either look reaches ``min_confidence``. Faces the
first look found only faintly (blurred, turned, in the frame's outer columns, which lie in
one square only) are recovered this way, while most false faces, found faintly in textures,
score lower again. It costs one small detector call per faint box. ``emolens bench
detection`` measures what each setting finds.

Example::

    with FaceDetector() as detector:
        faces = detector.detect(bgr_image)      # Faces: xyxy, det_score, keypoints
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from emolens.blazeface import BlazeFace
from emolens.card import packaged_model_dir, sha256_of
from emolens.diagnose import NoFaceReason, why_no_face
from emolens.errors import EmolensError
from emolens.native import captured_native_stderr, interrupts_held
from emolens.types import Faces

# Frames at least this much wider than high (16:9, 16:10, not 4:3) get squares by default.
SQUARES_FROM_ASPECT = 1.5
# A tile narrower or lower than this holds no detectable face; such tiles of a thin image or of a very fine
# grid are skipped.
MIN_TILE_PX = 32
# The second look's square, in sides of the faint box (2: the scale the card's crop geometry was measured at).
SECOND_LOOK_SIDE = 2.0


def detector_model_path(name: str, model_dir: Path | None = None) -> Path:
    """Path of a detector model, checked against its recorded sha256.

    Raises:
        EmolensError: unknown name, missing file, or a file that is not the recorded one.
    """
    model_dir = model_dir or packaged_model_dir()
    provenance = json.loads((model_dir / "face_detector.json").read_text())
    entries = {entry["name"]: entry for entry in provenance["models"]}
    if name not in entries:
        raise EmolensError(f"unknown face detector {name!r}; choose one of {', '.join(entries)}")
    path = model_dir / entries[name]["file"]
    fix = "run `python models/fetch_detector.py` in a source checkout, or reinstall emolens"
    if not path.is_file():
        raise EmolensError(f"face detector model missing: {path}; {fix}")
    if sha256_of(path) != entries[name]["sha256"]:
        raise EmolensError(f"face detector model {path} is corrupt (sha256 differs from face_detector.json); {fix}")
    return path


class FaceDetector:
    """BlazeFace (``emolens.blazeface``) returning ``Faces`` in source-frame pixels.

    Args:
        model: ``"short"`` or ``"full"`` (see the module docstring).
        min_confidence: a face must score this much in one of its looks. Lower finds more
            faces in poor light but admits more false ones.
        max_faces: keep at most this many faces, the most confident first (0 = no limit).
        tiles: also split the frame into ``tiles x tiles`` overlapping tiles (1 = whole frame
            only). Finds faces too small for one pass, at ``tiles**2`` times the cost.
        squares: cover the whole frame with overlapping squares (2-3 passes) instead of one
            letterboxed pass; faces are then found down to about a third of the frame's height.
            ``None`` (auto): squares for the short-range model on frames 1.5 times as wide as
            high (or as high as wide), one pass otherwise.
            Tiles smaller than ``MIN_TILE_PX`` on a side are skipped (the whole frame is always searched).
        second_look: look again, closer, at boxes scoring between half of ``min_confidence``
            and ``min_confidence`` (see the module docstring); off: one look, a little faster.
    """

    def __init__(self, model: str = "short", min_confidence: float = 0.6, max_faces: int = 0, tiles: int = 1,
                 squares: bool | None = None, second_look: bool = True):
        if tiles < 1:
            raise EmolensError(f"tiles must be 1 or more, got {tiles}")
        with interrupts_held(), captured_native_stderr():  # LiteRT says on stderr that it made XNNPACK's delegate
            self._network: BlazeFace | None = BlazeFace(
                detector_model_path(model), min_score=min_confidence / 2 if second_look else min_confidence)
        self.model = model
        self.max_faces = max_faces
        self.tiles = tiles
        self.squares = squares
        self.min_confidence = min_confidence
        self.second_look = second_look

    def detect(self, image: np.ndarray, rgb: np.ndarray | None = None) -> Faces:
        """Detect faces in a ``uint8 (H, W, 3)`` BGR image; ``rgb``: the same image in RGB order, if the caller
        has it (``Frame.rgb``), so that it is converted once for every region and look."""
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if rgb is None else rgb
        height, width = image.shape[:2]
        regions = square_grid(image.shape) if self.uses_squares(image.shape) else [(0, 0, width, height)]
        if self.tiles > 1:
            regions += [tile for tile in tile_grid(image.shape, self.tiles)
                        if min(tile[2] - tile[0], tile[3] - tile[1]) >= MIN_TILE_PX]
        parts = [self._detect_region(rgb[y0:y1, x0:x1], x0, y0) for x0, y0, x1, y1 in regions]
        xyxy, scores, keypoints = (np.concatenate(arrays) for arrays in zip(*parts))
        keep = non_max_suppression(xyxy, scores)
        if self.second_look:
            for index in keep[scores[keep] < self.min_confidence]:
                scores[index] = max(scores[index], self._look_again(rgb, xyxy[index]))
            keep = keep[scores[keep] >= self.min_confidence]
            keep = keep[np.argsort(-scores[keep], kind="stable")]
        if self.max_faces:
            keep = keep[: self.max_faces]
        return Faces(xyxy=xyxy[keep], det_score=scores[keep], keypoints=keypoints[keep])

    def uses_squares(self, shape: tuple[int, ...]) -> bool:
        """Whether a frame of this shape is searched as overlapping squares (see ``squares``)."""
        if self.squares is not None:
            return self.squares
        return self.model == "short" and max(shape[:2]) >= SQUARES_FROM_ASPECT * min(shape[:2])

    def _look_again(self, rgb: np.ndarray, box: np.ndarray) -> float:
        """The best score of a face centred in ``box`` when the detector sees a square twice its side around it."""
        height, width = rgb.shape[:2]
        centre = (box[:2] + box[2:]) / 2
        half = SECOND_LOOK_SIDE * float((box[2:] - box[:2]).max()) / 2
        x0, y0 = (max(int(c - half), 0) for c in centre)
        x1, y1 = (min(int(c + half), side) for c, side in zip(centre, (width, height)))
        if min(x1 - x0, y1 - y0) < MIN_TILE_PX:
            return 0.0
        xyxy, scores, _ = self._detect_region(rgb[y0:y1, x0:x1], x0, y0)
        centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
        inside = np.all((centres >= box[:2]) & (centres <= box[2:]), axis=1)
        return float(scores[inside].max()) if inside.any() else 0.0

    def _detect_region(self, rgb: np.ndarray, left: int, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes, scores and keypoints of one region of a frame (a view, not a copy), in frame pixels.

        The region goes to the detector at full size: it shrinks it to the network's input itself and
        reports boxes in whole pixels of what it was given (as MediaPipe's FaceDetector does, the detector
        the model card's crop geometry was measured with).
        """
        network = self._network  # once: close() may run meanwhile
        if network is None:
            raise EmolensError("this face detector was closed")
        xyxy, scores, keypoints = network.detect(rgb)
        return xyxy + np.float32([left, top, left, top]), scores, keypoints + np.float32([left, top])

    def close(self) -> None:
        """Release the network; safe to call twice. A closed detector detects nothing more."""
        self._network = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def square_grid(shape: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Squares (x0, y0, x1, y1) of the frame's short side covering it, neighbours overlapping by at
    least half a side, so every face up to half the short side lies wholly inside one square."""
    height, width = shape[:2]
    side, length = min(height, width), max(height, width)
    count = 1 + math.ceil((length - side) / (side / 2))
    starts = np.linspace(0, length - side, count).round().astype(int) if count > 1 else [0]
    return [(int(s), 0, int(s) + side, side) if width >= height else (0, int(s), side, int(s) + side)
            for s in starts]


def tile_grid(shape: tuple[int, ...], tiles: int, overlap: float = 0.3) -> list[tuple[int, int, int, int]]:
    """``tiles x tiles`` boxes (x0, y0, x1, y1) covering an image, neighbours overlapping by ``overlap``."""
    height, width = shape[:2]
    tile_h, tile_w = int(height / tiles * (1 + overlap)), int(width / tiles * (1 + overlap))
    boxes = []
    for row in range(tiles):
        for column in range(tiles):
            y0 = min(max(int(row * height / tiles - overlap / 2 * height / tiles), 0), height - tile_h)
            x0 = min(max(int(column * width / tiles - overlap / 2 * width / tiles), 0), width - tile_w)
            boxes.append((x0, y0, x0 + tile_w, y0 + tile_h))
    return boxes


def non_max_suppression(xyxy: np.ndarray, scores: np.ndarray, max_overlap: float = 0.3) -> np.ndarray:
    """Indices of the boxes to keep, best first, dropping any that overlap a better one."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    for index in order:
        if keep:
            kept = xyxy[keep]
            top_left = np.maximum(kept[:, :2], xyxy[index, :2])
            bottom_right = np.minimum(kept[:, 2:], xyxy[index, 2:])
            intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
            smaller = np.minimum((kept[:, 2:] - kept[:, :2]).prod(axis=1), (xyxy[index, 2:] - xyxy[index, :2]).prod())
            # Overlap relative to the smaller box: a face cut by a tile edge is a part of the whole one.
            if np.any(intersection / np.maximum(smaller, 1e-9) > max_overlap):
                continue
        keep.append(int(index))
    return np.array(keep, np.int64)


class FaintLook:
    """Says why a frame showed no face (``emolens.diagnose``), from a lenient second look: the
    full-range model on a 3x3 grid of tiles, keeping scores from 0.2. Built on first use.

    Example::

        with FaintLook() as look:
            print(look.why_no_face(image))      # too small (a face of about 39 px in a 1920x1080 frame)
    """

    def __init__(self) -> None:
        self._detector: FaceDetector | None = None

    def why_no_face(self, image: np.ndarray) -> NoFaceReason:
        if self._detector is None:
            self._detector = FaceDetector("full", min_confidence=0.2, tiles=3, second_look=False)
        faint = self._detector.detect(image)
        return why_no_face(image, faint.xyxy, faint.det_score, faint.keypoints)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> FaintLook:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
