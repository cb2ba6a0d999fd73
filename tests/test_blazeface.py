"""The detector's networks on LiteRT find what MediaPipe's own FaceDetector graph finds, where it finds it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emolens.bench.detection import SCENES, face_pool, findable, no_face_photos, scene_frames
from emolens.bench.detector_parity import MIN_SCORE, MediaPipeFaceDetector, Parity
from emolens.blazeface import BlazeFace, weighted_nms
from emolens.detect import detector_model_path
from emolens.gui.main_window import demo_clip

from .conftest import FER_FIXTURES


@pytest.fixture(scope="module")
def images(astronaut) -> list[np.ndarray]:
    """RGB images of real faces: the astronaut upright, turned, cut and resized to sizes that are and are not
    multiples of the networks' inputs (letterboxed both ways, as the detector's squares, tiles and second looks
    are), the demo clip's faces at its size, 640x480 and 1280x720, and a frame of each scene of the detection
    benchmark (one to eight faces of 60-500 px on grey or on photos, and photos with no face)."""
    out = [astronaut, astronaut[:, 100:400], astronaut[10:250, 100:350], astronaut[0:333, 50:512],
           cv2.resize(astronaut, (1280, 720)), cv2.resize(astronaut, (1000, 600))]
    height, width = astronaut.shape[:2]
    out += [cv2.warpAffine(astronaut, cv2.getRotationMatrix2D((225, 130), angle, 1.0), (width, height))
            for angle in (-25, 25)]
    capture = cv2.VideoCapture(str(demo_clip()))
    for _ in range(3):
        frame = capture.read()[1]
        out += [frame, cv2.resize(frame, (640, 480)), cv2.resize(frame, (1280, 720))]
        capture.grab()
    capture.release()
    pool, empty = findable(face_pool(FER_FIXTURES, ferplus=None, log=lambda _: None)), no_face_photos()
    out += [image for scene in SCENES for image, _ in scene_frames(scene, pool, empty, 1, seed=7)]
    return [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in out]


@pytest.mark.parametrize("model", ["short", "full"])
def test_the_same_faces_as_mediapipes_face_detector(images, model):
    """The same faces, boxes and scores. (Not to the bit everywhere: where a sample of the letterbox falls exactly
    half-way between two of OpenCV's 1/32-pixel steps, the two round it apart; a long side of 777 or 853 px then
    moves scores by about 0.001, see ``emolens.blazeface``.)"""
    parity = Parity()
    ours = BlazeFace(detector_model_path(model), MIN_SCORE)
    with MediaPipeFaceDetector(model, MIN_SCORE) as theirs:
        for image in images:
            parity.add(ours, theirs, np.ascontiguousarray(image))  # MediaPipe takes no strided image
    assert parity.only_one == 0
    assert len(parity.box_px) >= len(images) // 2
    assert max(parity.box_px) == 0
    assert max(parity.keypoint_px) < 0.01
    assert max(parity.score) < 1e-4


def test_weighted_suppression_averages_a_group_by_score_under_the_best_score():
    boxes = np.array([[0.0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 0, 0, 0]])
    scores = np.array([0.9, 0.3, 0.8, 0.7])
    keypoints = np.repeat(boxes[:, None, :2], 6, axis=1)
    merged, merged_scores, merged_keypoints = weighted_nms(boxes, scores, keypoints, min_iou=0.3)
    np.testing.assert_allclose(merged_scores, [0.9, 0.8, 0.7])  # the box of no area is a group of its own
    np.testing.assert_allclose(merged[0], [0.25, 0, 10.25, 10])  # (0.9 * 0 + 0.3 * 1) / 1.2
    np.testing.assert_allclose(merged_keypoints[0, :, 0], 0.25)
    np.testing.assert_allclose(merged[1:], boxes[2:])
    # A best box of no area overlaps nothing, itself included: MediaPipe's graph keeps it alone and stops there.
    alone = weighted_nms(boxes, np.array([0.5, 0.3, 0.8, 0.9]), keypoints, min_iou=0.3)
    np.testing.assert_allclose(alone[0], boxes[3:])
    np.testing.assert_allclose(alone[1], [0.9])
