"""The behaviour stage: MediaPipe's face landmarker on each detected face's crop.

For every face that BlazeFace found (``emolens.detect``), a square around its box
(``crop_scale`` box widths, axis-aligned, ``crop_px`` wide) is read by the networks of MediaPipe's
FaceLandmarker bundle, run by ``emolens.behaviour.face_mesh`` as MediaPipe's graph runs them in
image mode, one face. They give 478 landmarks, 52 blendshape scores and the facial transformation
matrix; ``emolens.behaviour.signals`` turns those into action units, head pose, eye openness,
attention and expressiveness.

Why crops and not the landmarker on the whole frame (it has its own face detector): the
face IDs, boxes and emotion crops stay exactly those of the detector the rest of the product
uses (short or full range, tiles), every face of a room is measured however small, and head
pose comes out relative to the line from the camera to the face, which is what "looking at
the camera" means. Crops also cost less per face than the whole frame (benchmarks/behaviour.md).

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

from emolens.behaviour.face_mesh import FaceMesh, crop_matrix
from emolens.behaviour.signals import BLENDSHAPE_NAMES, N_LANDMARKS, action_units, eye_openness, head_pose_deg
from emolens.card import packaged_model_dir, sha256_of
from emolens.errors import EmolensError
from emolens.native import captured_native_stderr, interrupts_held
from emolens.types import Faces


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
    """The face landmarker (``FaceMesh``: MediaPipe's networks on LiteRT), fed the crop of each face.

    Each call takes a ``FaceMesh`` of its own (it holds no state between calls, so any one gives the
    same reading) and waits while all are busy: ``workers`` threads can read frames at once, which the
    pipeline does on two cores (``Analyzer``), where one landmarker alone was the slowest stage.

    Args:
        crop_scale: crop side in detector box widths. The landmarker needs the whole head
            and some margin to find the face again; larger costs nothing (the crop is resized)
            but lets a neighbouring face into the crop.
        crop_px: side of the crop the landmarker reads the face in.
        min_confidence: the landmarker's own face detection and presence thresholds.
        workers: landmarkers, so many calls at once (each holds about 24 MB).
    """

    def __init__(self, crop_scale: float = 2.0, crop_px: int = 256, min_confidence: float = 0.5, workers: int = 2):
        bundle = landmarker_model_path()
        self.crop_scale = crop_scale
        self.crop_px = crop_px
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = workers
        # LiteRT announces its XNNPACK delegate on stderr once per network.
        with interrupts_held(), captured_native_stderr():
            for _ in range(workers):
                self._idle.put(FaceMesh(bundle, crop_scale, crop_px, min_confidence))

    @property
    def workers(self) -> int:
        """How many calls can read at once: one per landmarker."""
        return self._workers

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
        mesh = self._idle.get()
        try:
            for out, row in enumerate(rows):
                reading = mesh.read(rgb, faces.xyxy[row])
                if reading is None:
                    continue
                found[out] = True
                landmarks[out], blendshapes[out], matrices[out] = reading.landmarks, reading.blendshapes, reading.matrix
        finally:
            self._idle.put(mesh)
        return BehaviourSample(found=found, blendshapes=blendshapes, aus=action_units(blendshapes),
                               pose_deg=head_pose_deg(matrices), eye_open=eye_openness(blendshapes),
                               landmarks=landmarks)

    def crop(self, rgb: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
        """The crop the landmarker reads the face in box ``xyxy`` in: ``uint8 (crop_px, crop_px, 3)`` RGB, edges
        replicated where it leaves the frame (what MediaPipe's own FaceLandmarker is given in the benchmark
        and the tests that compare the two)."""
        matrix = crop_matrix(xyxy, self.crop_scale, self.crop_px)[:2]
        return cv2.warpAffine(rgb, matrix, (self.crop_px, self.crop_px), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)

    def close(self) -> None:
        """Release the idle landmarkers' networks; safe to call twice."""
        while not self._idle.empty():
            self._idle.get_nowait()

    def __enter__(self) -> BehaviourEstimator:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
