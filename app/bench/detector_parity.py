"""``emolens bench detection``'s check of ``emolens.blazeface`` against MediaPipe's own FaceDetector.

Both read the same whole frames (every scene of the benchmark, each model), one call each, the threshold at
the lowest score the app asks for (half of the default ``--min-confidence``, where the second look starts).
Faces are paired best first by box overlap; the section gives how many only one of the two found, how far
the paired boxes, keypoints and scores lie apart, and the CPU time per call of each (all threads of the process:
MediaPipe's graph runs on threads of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emolens.bench.timing import median_p95, time_once
from emolens.blazeface import BlazeFace
from emolens.detect import detector_model_path
from emolens.native import captured_native_stderr, close_at_exit, mediapipe_tasks
from emolens.options import AnalyzerOptions
from emolens.track import box_iou, match_boxes

mp, BaseOptions, vision = mediapipe_tasks()

MIN_SCORE = AnalyzerOptions().min_confidence / 2
_SAME_FACE_IOU = 0.5


class MediaPipeFaceDetector:
    """MediaPipe's Tasks FaceDetector (image mode, its graph), the reference ``BlazeFace`` is held to; ``detect``
    answers as ``BlazeFace.detect`` does."""

    def __init__(self, model: str, min_score: float):
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_path=str(detector_model_path(model))),
            running_mode=vision.RunningMode.IMAGE, min_detection_confidence=min_score)
        with captured_native_stderr():
            self._detector = vision.FaceDetector.create_from_options(options)
        close_at_exit(self)

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(n, 4)`` x0, y0, x1, y1 in whole pixels, scores ``(n,)``, keypoints ``(n, 6, 2)`` in pixels."""
        height, width = rgb.shape[:2]
        found = self._detector.detect(mp.Image(image_format=mp.ImageFormat.SRGB,
                                               data=np.ascontiguousarray(rgb))).detections
        xyxy = np.array([[d.bounding_box.origin_x, d.bounding_box.origin_y, d.bounding_box.origin_x
                          + d.bounding_box.width, d.bounding_box.origin_y + d.bounding_box.height] for d in found],
                        np.float32).reshape(-1, 4)
        scores = np.array([d.categories[0].score for d in found], np.float32)
        keypoints = np.array([[(k.x * width, k.y * height) for k in d.keypoints] for d in found],
                             np.float32).reshape(-1, 6, 2)
        return xyxy, scores, keypoints

    def close(self) -> None:
        with captured_native_stderr():
            self._detector.close()

    def __enter__(self) -> MediaPipeFaceDetector:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass
class Parity:
    """How far ``BlazeFace`` lands from MediaPipe's FaceDetector over many images: per paired face the largest
    box-corner difference (px), keypoint difference (px) and score difference; faces only one of them found;
    CPU ms per call of each."""

    box_px: list[float] = field(default_factory=list)
    keypoint_px: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    only_one: int = 0
    ours_ms: list[float] = field(default_factory=list)
    theirs_ms: list[float] = field(default_factory=list)

    def add(self, ours: BlazeFace, theirs: MediaPipeFaceDetector, rgb: np.ndarray) -> None:
        mine, _, ours_ms = time_once(lambda: ours.detect(rgb))
        reference, _, theirs_ms = time_once(lambda: theirs.detect(rgb))
        self.ours_ms.append(ours_ms)
        self.theirs_ms.append(theirs_ms)
        pairs = match_boxes(box_iou(mine[0], reference[0]), _SAME_FACE_IOU)
        self.only_one += len(mine[0]) + len(reference[0]) - 2 * len(pairs)
        for i, j in pairs.items():
            self.box_px.append(float(np.abs(mine[0][i] - reference[0][j]).max()))
            self.keypoint_px.append(float(np.abs(mine[2][i] - reference[2][j]).max()))
            self.score.append(float(abs(mine[1][i] - reference[1][j])))


def report(frames: dict, log) -> list[str]:
    """The Markdown section: each model on the whole frames of every scene."""
    lines = ["", "## The detector against MediaPipe's own FaceDetector", "",
             f"`emolens.blazeface` runs MediaPipe's BlazeFace networks on LiteRT with MediaPipe's FaceDetector "
             f"graph done in numpy; here both read every frame above whole, one call each, scores from {MIN_SCORE:g} "
             "(where the second look starts). Differences are per face found by both (largest coordinate), "
             "median / worst; CPU ms per call are the process's, all threads, median / p95.", "",
             "| model | frames | faces paired | found by one only | box px | keypoint px | score | CPU ms ours "
             "| CPU ms MediaPipe |", "|---|---|---|---|---|---|---|---|---|"]
    for model in ("short", "full"):
        parity = Parity()
        with captured_native_stderr():
            ours = BlazeFace(detector_model_path(model), MIN_SCORE)
        with MediaPipeFaceDetector(model, MIN_SCORE) as theirs:
            for scene_frames in frames.values():
                for image, _ in scene_frames:
                    parity.add(ours, theirs, np.ascontiguousarray(image[..., ::-1]))
        count = sum(len(scene_frames) for scene_frames in frames.values())
        lines.append(f"| {model} | {count} | {len(parity.box_px)} | {parity.only_one} | "
                     + " | ".join(f"{np.median(values):.2f} / {max(values):.2f}" if values else "-"
                                  for values in (parity.box_px, parity.keypoint_px, parity.score))
                     + " | " + " | ".join("{:.2f} / {:.2f}".format(*median_p95(times))
                                          for times in (parity.ours_ms, parity.theirs_ms)) + " |")
        log(lines[-1])
    return lines
