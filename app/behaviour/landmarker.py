"""The behaviour stage: MediaPipe FaceLandmarker on each detected face's crop.

For every face that BlazeFace found (``emolens.detect``), a square around its box is cut out
(``crop_scale`` box widths, axis-aligned, resized to ``crop_px``) and handed to MediaPipe's
FaceLandmarker (Tasks API, image mode, one face). It returns 478 landmarks, 52 blendshape
scores and the facial transformation matrix; ``emolens.behaviour.signals`` turns those into
action units, head pose, eye openness, attention and expressiveness.

Why crops and not the landmarker on the whole frame (it has its own face detector): the
face IDs, boxes and emotion crops stay exactly those of the detector the rest of the product
uses (short or full range, tiles), every face of a room is measured however small, and head
pose comes out relative to the line from the camera to the face, which is what "looking at
the camera" means. Both ways cost about the same per face (benchmarks/behaviour.md).

The model bundle ``models/face_landmarker.task`` is checked against the sha256 in
``models/face_landmarker.json`` at load.

Example::

    with BehaviourEstimator() as estimator:
        sample = estimator.estimate(bgr_image, faces)      # BehaviourSample for every face
        sample.pose_deg, sample.aus, sample.found
"""

from __future__ import annotations

import json
import queue
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.behaviour.signals import BLENDSHAPE_NAMES, N_LANDMARKS, action_units, eye_openness, head_pose_deg
from emolens.card import packaged_model_dir, sha256_of
from emolens.errors import EmolensError
from emolens.native import captured_native_stderr, close_at_exit, interrupts_held, mediapipe_tasks
from emolens.types import Faces

mp, BaseOptions, vision = mediapipe_tasks()


def landmarker_model_path(model_dir: Path | None = None) -> Path:
    """Path of ``face_landmarker.task``, checked against its recorded size and sha256.

    Raises:
        EmolensError: the file is missing or is not the recorded one.
    """
    model_dir = model_dir or packaged_model_dir()
    entry = json.loads((model_dir / "face_landmarker.json").read_text())["models"][0]
    path = model_dir / entry["file"]
    fix = "run `python models/fetch_landmarker.py` in a source checkout, or reinstall emolens"
    if not path.is_file():
        raise EmolensError(f"face landmarker model missing: {path}; {fix}")
    if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
        raise EmolensError(f"face landmarker model {path} is corrupt (sha256 differs from face_landmarker.json); {fix}")
    return path


@dataclass(frozen=True)
class BehaviourSample:
    """The landmarker's reading of k faces (rows in the order of the faces asked for).

    Rows where the landmarker found no face on the crop (``found`` false) are NaN.

    Attributes:
        found: ``bool (k,)``.
        blendshapes: ``float32 (k, 52)`` scores 0..1 in ``BLENDSHAPE_NAMES`` order.
        aus: ``float32 (k, len(AU_NAMES))`` action-unit intensities 0..1.
        pose_deg: ``float32 (k, 3)`` yaw, pitch, roll in degrees (signs: ``emolens.behaviour.signals``).
        eye_open: ``float32 (k, 2)`` openness of the person's right and left eye, 0..1.
        landmarks: ``float32 (k, 478, 2)`` landmark x, y in source-frame pixels.
    """

    found: np.ndarray
    blendshapes: np.ndarray
    aus: np.ndarray
    pose_deg: np.ndarray
    eye_open: np.ndarray
    landmarks: np.ndarray


class BehaviourEstimator:
    """MediaPipe FaceLandmarkers, fed the crop of each face.

    Each call takes a landmarker of its own (image mode holds no state between calls, so any one gives the
    same reading) and waits while all are busy: ``workers`` threads can read frames at once, which the
    pipeline does on two cores (``Analyzer``), where one landmarker alone was the slowest stage.

    Args:
        crop_scale: crop side in detector box widths. The landmarker needs the whole head
            and some margin to find the face again; larger costs nothing (the crop is resized)
            but lets a neighbouring face into the crop.
        crop_px: side of the resized crop handed to the landmarker.
        min_confidence: the landmarker's own face detection and presence thresholds.
        workers: landmarkers, so many calls at once (each holds about 35 MB).
    """

    def __init__(self, crop_scale: float = 2.0, crop_px: int = 256, min_confidence: float = 0.5, workers: int = 2):
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(landmarker_model_path())),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self.crop_scale = crop_scale
        self.crop_px = crop_px
        self._landmarkers: list = []
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        close_at_exit(self)
        # Start-up and first-call logs (TFLite delegates); later calls are quiet.
        with interrupts_held(), captured_native_stderr():
            for _ in range(workers):
                landmarker = vision.FaceLandmarker.create_from_options(options)
                self._landmarkers.append(landmarker)
                landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))
                self._idle.put(landmarker)

    @property
    def workers(self) -> int:
        """How many calls can read at once: one per landmarker."""
        return len(self._landmarkers)

    def estimate(self, image: np.ndarray, faces: Faces, rows: np.ndarray | None = None,
                 rgb: np.ndarray | None = None) -> BehaviourSample:
        """Landmarks and signals of ``faces[rows]`` (default: all) in a BGR ``image``; ``rgb``: the same image in
        RGB order, if the caller has it (``Frame.rgb``), so that no crop is converted again."""
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if rgb is None else rgb
        rows = np.arange(len(faces)) if rows is None else np.asarray(rows, np.int64)
        k = len(rows)
        found = np.zeros(k, bool)
        blendshapes = np.full((k, len(BLENDSHAPE_NAMES)), np.nan, np.float32)
        matrices = np.full((k, 4, 4), np.nan, np.float64)
        landmarks = np.full((k, N_LANDMARKS, 2), np.nan, np.float32)
        landmarker = self._idle.get()
        try:
            for out, row in enumerate(rows):
                crop, (left, top, side) = self.crop(rgb, faces.xyxy[row])
                result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop))
                if not result.face_landmarks:
                    continue
                found[out] = True
                points = np.array([(p.x, p.y) for p in result.face_landmarks[0]], np.float32)
                landmarks[out] = points * side + np.float32([left, top])
                categories = result.face_blendshapes[0]
                if tuple(c.category_name for c in categories) != BLENDSHAPE_NAMES:
                    raise EmolensError("face landmarker returned unexpected blendshape names; "
                                       "is models/face_landmarker.task the recorded bundle?")
                blendshapes[out] = [c.score for c in categories]
                matrices[out] = np.array(result.facial_transformation_matrixes[0], np.float64)
        finally:
            self._idle.put(landmarker)
        return BehaviourSample(found=found, blendshapes=blendshapes, aus=action_units(blendshapes),
                               pose_deg=head_pose_deg(matrices), eye_open=eye_openness(blendshapes),
                               landmarks=landmarks)

    def crop(self, rgb: np.ndarray, xyxy: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """What the landmarker sees of the face in box ``xyxy``: a ``uint8 (crop_px, crop_px, 3)`` RGB crop
        (edges replicated where it leaves the frame), and its square's left, top and side in source pixels."""
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        side = self.crop_scale * max(x1 - x0, y1 - y0, 1.0)
        left, top = (x0 + x1 - side) / 2, (y0 + y1 - side) / 2
        scale = self.crop_px / side
        matrix = np.float64([[scale, 0, -left * scale], [0, scale, -top * scale]])
        crop = cv2.warpAffine(rgb, matrix, (self.crop_px, self.crop_px), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        return crop, (left, top, side)

    def close(self) -> None:
        """Release the landmarker; safe to call twice."""
        if not self._closed:
            self._closed = True
            with captured_native_stderr():
                for landmarker in self._landmarkers:
                    landmarker.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def __enter__(self) -> BehaviourEstimator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
