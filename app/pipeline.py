"""The whole product in one screen: frames -> detect -> crop -> classify -> track -> record.

``Analyzer`` owns one instance of each stage. ``run(source)`` is a generator of
``FrameResult`` (faces and per-stage milliseconds, never the accumulated frames), shared
by the CLI, the GUI worker and the benchmarks; ``analyze(image)`` is the one-frame API.

Example::

    from emolens import Analyzer
    faces = Analyzer().analyze(cv2.imread("photo.jpg"))
    faces.xyxy, faces.face_id, faces.keypoints, faces.probs
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.crop import crop_faces
from emolens.detect import FaceDetector
from emolens.record import CsvRecorder
from emolens.sources import FrameSource
from emolens.track import FaceTracker
from emolens.types import Faces, Frame

STAGES = ("decode", "detect", "crop", "classify", "track", "record")


@dataclass(frozen=True)
class AnalyzerOptions:
    """Settings shared by the CLI, the GUI and the API; each field's default is the product's.

    Attributes:
        model: a model card (.json) or its .onnx; ``None`` for the shipped model.
        device: ``auto`` (CUDA if it loads, else CPU), ``cpu`` or ``cuda``.
        detector: ``short`` (near faces, fastest) or ``full`` (small, distant faces too).
        tiles: also detect on ``tiles x tiles`` overlapping tiles (1 = off), for rooms of viewers.
        squares: detect on overlapping full-height squares of the frame (False: one letterboxed
            pass, faster, finds only faces over about a third of the frame's width; None: auto,
            squares for the short-range detector on wide frames, see ``emolens.detect``).
        min_confidence: detector threshold, 0..1.
        max_faces: keep at most this many faces per frame, most confident first (0 = all).
        max_gap_s: how long an unseen face keeps its ID.
        tau_s: score smoothing time constant in seconds (0 = raw scores).
        threads: classifier CPU threads (0 = all cores).
    """

    model: str | None = None
    device: str = "auto"
    detector: str = "short"
    tiles: int = 1
    squares: bool | None = None
    min_confidence: float = 0.5
    max_faces: int = 0
    max_gap_s: float = 1.0
    tau_s: float = 0.5
    threads: int = 0


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: its faces (with ids, raw and smoothed probs) and stage timings in ms."""

    frame: Frame
    faces: Faces
    timings_ms: dict[str, float] = field(default_factory=dict)


class Analyzer:
    """Detector, classifier and tracker configured once, fed frame by frame."""

    def __init__(self, options: AnalyzerOptions | None = None):
        self.options = options or AnalyzerOptions()
        self.card = ModelCard.load(self.options.model)
        self.classifier = Classifier(self.card, self.options.device, self.options.threads)
        self.detector = FaceDetector(self.options.detector, self.options.min_confidence, self.options.max_faces,
                                     self.options.tiles, self.options.squares)
        self.tracker = FaceTracker(self.options.max_gap_s, self.options.tau_s)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def analyze(self, image: np.ndarray, t_s: float | None = None) -> Faces:
        """Faces of one BGR image with boxes, keypoints, probs and ids.

        With ``t_s`` (seconds), the face joins the running tracks (stable ids, smoothing);
        without it the image stands alone and faces are numbered 1..n.
        """
        faces = self.classify(image, self.detector.detect(image))
        if t_s is not None:
            return self.tracker.update(faces, t_s)
        return faces.with_fields(face_id=np.arange(1, len(faces) + 1), smoothed=faces.probs)

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        """``faces`` with ``probs`` from the emotion model."""
        return faces.with_fields(probs=self.classifier.predict(crop_faces(image, faces, self.card)))

    def process(self, frame: Frame, independent: bool = False) -> FrameResult:
        """Detect, crop, classify and track one frame, timing each stage.

        ``independent``: the frame is its own scene (an image of a folder); its faces get IDs
        no earlier face had.
        """
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = (now - clock) * 1000.0
            clock = now

        faces = self.detector.detect(frame.image)
        lap("detect")
        crops = crop_faces(frame.image, faces, self.card)
        lap("crop")
        faces = faces.with_fields(probs=self.classifier.predict(crops))
        lap("classify")
        if independent:  # each image is its own scene: no face continues, and none reuses an earlier ID
            self.tracker.new_scene()
        faces = self.tracker.update(faces, frame.t_s)
        lap("track")
        return FrameResult(frame, faces, timings)

    def run(self, source: FrameSource, recorder: CsvRecorder | None = None) -> Iterator[FrameResult]:
        """Process every frame of ``source``, recording each when a recorder is given."""
        frames = iter(source)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            waited = (time.perf_counter() - started) * 1000.0
            result = self.process(frame, independent=source.independent)
            result.timings_ms["decode"] = waited
            if recorder is not None:
                started = time.perf_counter()
                recorder.append(frame, result.faces)
                result.timings_ms["record"] = (time.perf_counter() - started) * 1000.0
            yield result

    def reset(self) -> None:
        """Forget tracks (new session or source)."""
        self.tracker.reset()

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
