"""The tracked-detection section of ``emolens bench detection``: the quality guard and the moving faces."""

from __future__ import annotations

from emolens.bench.media import DEMO, assign, astronaut_photo
from emolens.bench.tracked import MOVING_WH, clip_faces, compare, moving_clip, moving_walkers
from emolens.detect import FaceDetector
from emolens.options import AnalyzerOptions
from emolens.pipeline import Models


def test_the_quality_guard_counts_a_face_the_shortcut_lacks_as_a_disagreement():
    models = Models()
    try:
        full = clip_faces(DEMO, AnalyzerOptions(detect="full"), models)[:10]
    finally:
        models.close()
    assert compare(full, full).agreement == 1.0 and compare(full, full).score_difference == 0.0
    missing_one = [faces[1:] if index == 3 else faces for index, faces in enumerate(full)]
    faces = sum(len(f) for f in full)
    result = compare(full, missing_one)
    assert (result.face_frames, result.paired, result.agreeing) == (faces, faces - 1, faces - 1)


def test_the_moving_scene_truth_boxes_are_where_the_detector_finds_the_faces():
    photo = astronaut_photo()
    clip = list(moving_clip(moving_walkers([photo] * 4), 4.0))
    assert len({len(boxes) for _, boxes, _ in clip}) >= 3  # faces arrive, cross and leave
    found = []
    with FaceDetector() as detector:
        for frame, boxes, _ in clip[::10]:
            assert frame.image.shape[:2] == MOVING_WH[::-1]
            found += list(assign(detector.detect(frame.image).xyxy, boxes) >= 0)
    assert sum(found) >= 0.8 * len(found)  # the rest: faces turned away, or at the frame's edge
