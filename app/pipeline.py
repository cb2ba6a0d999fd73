"""The whole product in one screen: frames -> detect -> crop -> classify -> track [-> behaviour] -> record.

``Models`` are what loads once and is shared (detector, classifier, landmarker); a ``Session`` is
one source's state (face tracks and smoothing, behaviour tracks), the only place faces are
tracked; an ``Analyzer`` is the models with one session. ``Analyzer.run(source)`` is a generator
of ``FrameResult`` (faces and per-stage milliseconds, never the accumulated frames), shared by
the CLI, the window, ``batch`` and the benchmarks; ``analyze(image)`` is the one-frame API. The
service keeps a pool of ``Models`` and a ``Session`` per job or stream.

``run()`` detects on a thread of its own, a frame or two ahead of the one being classified, tracked
and recorded, so the two stages share both cores; the window turns this off (it wants the newest
frame). With ``detect="tracked"`` (the default) the full search runs every other frame
(``emolens.follow``).

With ``behaviour=True`` the FaceLandmarker (``emolens.behaviour.landmarker``) reads the faces that are due
(``emolens.behaviour.track``) on worker threads, one landmarker each, two frames at once, so it runs on
both cores while the next frames are decoded, detected and classified (one landmarker alone was the
slowest stage: docs/behaviour.md): ``run()`` yields each frame a few frames later, complete and in order.

Example::

    from emolens import Analyzer
    faces = Analyzer().analyze("photo.jpg")      # or a PIL image, a BGR array, rgb=an RGB array
    faces.xyxy, faces.face_id, faces.keypoints, faces.probs
    faces.to_pandas()                             # one row per face, the labels as columns
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from emolens.behaviour.landmarker import BehaviourEstimator
from emolens.behaviour.track import BehaviourTracker
from emolens.card import ModelCard
from emolens.classify import Classifier
from emolens.crop import crop_faces
from emolens.detect import FaceDetector
from emolens.follow import FaceFollower
from emolens.images import as_bgr8
from emolens.options import AnalyzerOptions
from emolens.record import Recorder
from emolens.sources import FrameSource
from emolens.track import FaceTracker
from emolens.types import Faces, Frame

DETECT_AHEAD = 2
"""With ``Analyzer.run(overlap=True)``: frames handed to the detection thread before the oldest is classified
(one being detected while one waits: enough to keep both stages busy, and the memory bounded)."""


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: its faces (with ids, raw and smoothed probs) and stage timings in ms."""

    frame: Frame
    faces: Faces
    timings_ms: dict[str, float] = field(default_factory=dict)


def numbered(faces: Faces) -> Faces:
    """The faces of an image that stands alone: IDs 1..n in detection order, scores as they are (no smoothing)."""
    return faces.with_fields(face_id=np.arange(1, len(faces) + 1), smoothed=faces.probs)


class Models:
    """What is loaded once and can serve many sources: the card, the detector, the classifier and, with
    behaviour on, the landmarker. One caller at a time (the networks' interpreters are not reentrant): the service
    keeps a pool of them, a window or a command line one.

    Loading them turns OpenCV's own thread pool off for the process (``cv2.setNumThreads(1)``): OpenCV's work
    here is one colour conversion and a few small crops per frame, where fanning out over the cores costs more
    than it saves while the pipeline's stages already share them (measured: 12% more frames per CPU second
    at 640x480 with one face, 3% at 1280x720 with four, in one alternating run; docs/speed.md).
    """

    def __init__(self, options: AnalyzerOptions | None = None, landmarkers: int = 2):
        """``landmarkers``: with behaviour on, how many frames the landmarker can read at once (``Analyzer.run``
        reads two; a pool that lends each set of models to one thread at a time needs one)."""
        options = options or AnalyzerOptions()
        cv2.setNumThreads(1)
        self.card = ModelCard.load(options.model)
        # One ONNX Runtime thread unless asked: detection (Analyzer.run's own thread) and the landmarker
        # need the second core, and ORT's default pool would take it and spin on it between calls
        # (measured in docs/speed.md: more frames per CPU second, and more per second on two busy cores).
        threads = options.threads or 1
        self.classifier = Classifier(self.card, options.device, threads)
        self.detector = FaceDetector(options.detector, options.min_confidence, options.max_faces, options.tiles,
                                     options.squares, options.second_look)
        self.behaviour = BehaviourEstimator(workers=landmarkers) if options.behaviour else None

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        """``faces`` with ``probs`` from the emotion model (and their ``labels``)."""
        return faces.with_fields(probs=self.classifier.predict(crop_faces(image, faces, self.card)), labels=self.labels)

    def faces(self, image: np.ndarray, rgb: np.ndarray | None = None) -> Faces:
        """The faces of a BGR image with boxes, keypoints and scores, not yet tracked (no IDs); ``rgb``: the
        image in RGB order, when the caller has it (one conversion per frame serves every detector call)."""
        return self.classify(image, self.detector.detect(image, rgb))

    def close(self) -> None:
        self.detector.close()
        if self.behaviour is not None:
            self.behaviour.close()


class Session:
    """One source's state: face tracks (IDs, smoothing in seconds) and, with behaviour on, behaviour tracks.

    Every front end tracks faces through a session: the command line and the window through
    ``Analyzer.run``, the service's jobs and streams directly, so IDs and smoothing are the same everywhere.
    """

    def __init__(self, options: AnalyzerOptions | None = None):
        self.options = options or AnalyzerOptions()
        self.tracker = FaceTracker(self.options.max_gap_s, self.options.tau_s)
        self.follower = FaceFollower() if self.options.detect == "tracked" else None
        self.behaviour_tracker = self.behaviour_tracker_at(self.options.behaviour_hz) if self.options.behaviour \
            else None

    def behaviour_tracker_at(self, hz: float) -> BehaviourTracker:
        options = self.options
        return BehaviourTracker(hz, options.attention_yaw_deg, options.attention_pitch_deg, max_gap_s=options.max_gap_s,
                                budget_hz=options.behaviour_budget_hz)

    def detect(self, detector: FaceDetector, frame: Frame, independent: bool = False) -> Faces:
        """The faces of ``frame``: the detector's full search, or with ``detect="tracked"`` the faces carried
        from the last one when no search is due (``emolens.follow``); ``independent``: see ``track``."""
        if self.follower is None:
            return detector.detect(frame.image, frame.rgb)
        if independent:
            self.follower.reset()
        return self.follower.detect(detector, frame)

    def track(self, faces: Faces, t_s: float, independent: bool = False) -> Faces:
        """``faces`` of the frame at ``t_s`` with their track IDs and smoothed scores.

        ``independent``: the frame is its own scene (an image of a folder); its faces get IDs no earlier
        face had.
        """
        if independent:  # each image is its own scene: no face continues, and none reuses an earlier ID
            self.tracker.new_scene()
            if self.behaviour_tracker is not None:
                self.behaviour_tracker.reset()
        return self.tracker.update(faces, t_s)

    def read_behaviour(self, models: Models, frame: Frame, faces: Faces) -> Faces:
        """Tracked ``faces`` of ``frame`` with their behaviour: the landmarker reads the faces that are due
        (``models`` must have been loaded with behaviour on), the others keep their last reading."""
        rows = self.behaviour_tracker.due(faces, frame.t_s)
        sample = models.behaviour.estimate(frame.image, faces, rows, frame.rgb)
        return self.behaviour_tracker.update(faces, frame.t_s, rows, sample)

    def analyze(self, models: Models, frame: Frame) -> Faces:
        """One frame through ``models``: detected, classified, tracked and, with behaviour on, read."""
        faces = self.track(models.classify(frame.image, self.detect(models.detector, frame)), frame.t_s)
        return self.read_behaviour(models, frame, faces) if self.behaviour_tracker is not None else faces

    def set_smoothing(self, tau_s: float) -> None:
        """Change the smoothing time constant from the next frame on (the window's slider)."""
        self.tracker.tau_s = tau_s

    def reset(self) -> None:
        """Forget all tracks (a new source); IDs start again from 1."""
        self.tracker.reset()
        if self.follower is not None:
            self.follower.reset()
        if self.behaviour_tracker is not None:
            self.behaviour_tracker.reset()


class Analyzer:
    """The models and one session: what the command line, the window and ``batch`` run frame by frame.

    ``models``: models already loaded (one caller at a time); by default the analyzer loads its own and closes
    them with itself.
    """

    def __init__(self, options: AnalyzerOptions | None = None, models: Models | None = None):
        self.options = options or AnalyzerOptions()
        self._owns_models = models is None
        self.models = models or Models(self.options)
        self.session = Session(self.options)
        if self.models.behaviour is not None:
            self._behaviour_pool = ThreadPoolExecutor(self.models.behaviour.workers,
                                                      thread_name_prefix="emolens-behaviour")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.models.labels

    @property
    def card(self) -> ModelCard:
        return self.models.card

    @property
    def classifier(self) -> Classifier:
        return self.models.classifier

    @property
    def behaviour(self) -> BehaviourEstimator | None:
        return self.models.behaviour

    @property
    def behaviour_tracker(self) -> BehaviourTracker | None:
        return self.session.behaviour_tracker

    def analyze(self, image=None, t_s: float | None = None, *, rgb: np.ndarray | None = None) -> Faces:
        """Faces of one image with boxes, keypoints, probs (and their ``labels``) and ids.

        Args:
            image: a path, a PIL image, or a ``uint8 (H, W, 3)`` array in OpenCV's BGR order
                (``cv2.imread``); gray, BGRA, 16-bit and float arrays are converted.
            t_s: seconds; the faces join the running tracks (stable ids, smoothing). Without
                it the image stands alone and faces are numbered 1..n.
            rgb: an array in RGB order instead of ``image`` (PIL, matplotlib, scikit-image).

        Raises:
            EmolensError: no image, or neither or both of ``image`` and ``rgb``, a missing or
                unreadable file, an array that is not an image (``emolens.images.as_bgr8``).
        """
        frame = Frame(0, 0.0 if t_s is None else t_s, as_bgr8(image, rgb))
        faces = self.models.faces(frame.image, frame.rgb)
        faces = numbered(faces) if t_s is None else self.session.track(faces, t_s)
        if self.behaviour is not None:
            tracker = self.session.behaviour_tracker if t_s is not None else self.session.behaviour_tracker_at(0.0)
            rows = tracker.due(faces, frame.t_s)
            faces = tracker.update(faces, frame.t_s, rows, self.behaviour.estimate(frame.image, faces, rows, frame.rgb))
        return faces

    def process(self, frame: Frame, independent: bool = False) -> FrameResult:
        """Detect, crop, classify and track one frame, timing each stage (``independent``: see ``Session.track``)."""
        return self._classified(*self._detected(frame, independent), independent)

    def _detected(self, frame: Frame, independent: bool) -> tuple[Frame, Faces, dict[str, float]]:
        """The first stage: ``frame``'s faces (``Session.detect``) and the time it took."""
        started = time.perf_counter()
        faces = self.session.detect(self.models.detector, frame, independent)
        return frame, faces, {"detect": (time.perf_counter() - started) * 1000.0}

    def _classified(self, frame: Frame, faces: Faces, timings: dict[str, float], independent: bool) -> FrameResult:
        """The second stage: crop, classify and track the detected ``faces``, timing each step."""
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = (now - clock) * 1000.0
            clock = now

        crops = crop_faces(frame.image, faces, self.card)
        lap("crop")
        faces = faces.with_fields(probs=self.classifier.predict(crops), labels=self.labels)
        lap("classify")
        faces = self.session.track(faces, frame.t_s, independent)
        lap("track")
        return FrameResult(frame, faces, timings)

    def run(self, source: FrameSource, recorder: Recorder | None = None,
            lookahead: int = 8, overlap: bool = True) -> Iterator[FrameResult]:
        """Process every frame of ``source``, recording each when a recorder is given.

        ``overlap``: detect on a thread of its own, up to ``DETECT_AHEAD`` frames ahead of the one being
        classified, tracked and recorded, so the two stages share both cores (results stay in frame order).
        A live view passes False: it wants the newest frame, not frames detected while it painted.

        With behaviour on, the landmarkers read frames on their own threads while this one goes on
        with later frames: up to ``lookahead`` frames wait for them (results stay in frame order).
        More absorbs bursts (every face due at once) at the cost of latency; a live view wants 1-2.
        """
        limit = 0 if source.independent else lookahead  # each image of a folder restarts face IDs: no overlap
        detected = self._detect_ahead(source) if overlap else self._detect_each(source)
        pending: deque[tuple[FrameResult, np.ndarray, Future]] = deque()
        for frame, faces, timings in detected:
            result = self._classified(frame, faces, timings, source.independent)
            if self.behaviour is None:
                yield self._record(result, recorder)
                continue
            rows = self.behaviour_tracker.due(result.faces, frame.t_s)
            pending.append((result, rows, self._behaviour_pool.submit(self._timed_estimate, frame, result.faces,
                                                                       rows)))
            while pending and (len(pending) > limit or pending[0][2].done()):
                yield self._record(self._with_behaviour(*pending.popleft()), recorder)
        while pending:
            yield self._record(self._with_behaviour(*pending.popleft()), recorder)

    def _timed_frames(self, source: FrameSource) -> Iterator[tuple[Frame, float]]:
        """Each frame of ``source`` and how long, in ms, this thread waited for it (decoding runs ahead)."""
        frames = iter(source)
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            yield frame, (time.perf_counter() - started) * 1000.0

    def _detect_each(self, source: FrameSource) -> Iterator[tuple[Frame, Faces, dict[str, float]]]:
        """The first stage on this thread, one frame at a time."""
        for frame, waited in self._timed_frames(source):
            frame, faces, timings = self._detected(frame, source.independent)
            timings["decode"] = waited
            yield frame, faces, timings

    def _detect_ahead(self, source: FrameSource) -> Iterator[tuple[Frame, Faces, dict[str, float]]]:
        """The first stage on a thread of its own, ``DETECT_AHEAD`` frames ahead at most, in frame order.
        The session's detection state is only touched there (one worker), so results equal ``_detect_each``'s."""
        pool = ThreadPoolExecutor(1, thread_name_prefix="emolens-detect")
        jobs: deque[tuple[Future, float]] = deque()
        try:
            for frame, waited in self._timed_frames(source):
                jobs.append((pool.submit(self._detected, frame, source.independent), waited))
                if len(jobs) >= DETECT_AHEAD:
                    yield self._waited_for(*jobs.popleft())
            while jobs:
                yield self._waited_for(*jobs.popleft())
        finally:  # an early stop (an error, Ctrl+C, a consumer that quits): no detection left running
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _waited_for(job: Future, decode_ms: float) -> tuple[Frame, Faces, dict[str, float]]:
        started = time.perf_counter()
        frame, faces, timings = job.result()
        timings["decode"], timings["detect_wait"] = decode_ms, (time.perf_counter() - started) * 1000.0
        return frame, faces, timings

    def _timed_estimate(self, frame: Frame, faces: Faces, rows: np.ndarray):
        started = time.perf_counter()
        sample = self.behaviour.estimate(frame.image, faces, rows, frame.rgb)
        return sample, (time.perf_counter() - started) * 1000.0

    def _with_behaviour(self, result: FrameResult, rows: np.ndarray, job: Future) -> FrameResult:
        """``result`` with its landmarker reading merged in (waits for it; times the wait)."""
        started = time.perf_counter()
        sample, landmarker_ms = job.result()
        result.timings_ms["behaviour_wait"] = (time.perf_counter() - started) * 1000.0
        result.timings_ms["behaviour"] = landmarker_ms
        faces = self.behaviour_tracker.update(result.faces, result.frame.t_s, rows, sample)
        return FrameResult(result.frame, faces, result.timings_ms)

    @staticmethod
    def _record(result: FrameResult, recorder: Recorder | None) -> FrameResult:
        if recorder is not None:
            started = time.perf_counter()
            recorder.append(result.frame, result.faces)
            result.timings_ms["record"] = (time.perf_counter() - started) * 1000.0
        return result

    def reset(self) -> None:
        """Forget tracks (new session or source)."""
        self.session.reset()

    def close(self) -> None:
        if self.behaviour is not None:
            self._behaviour_pool.shutdown(wait=True)
        if self._owns_models:
            self.models.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
