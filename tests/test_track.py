import numpy as np
import pytest

from emolens.track import FaceTracker, box_iou
from emolens.types import Faces


def faces_at(*boxes, probs=None) -> Faces:
    xyxy = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(xyxy)
    if probs is None:
        probs = np.full((n, 7), 1 / 7, np.float32)
    return Faces(xyxy=xyxy, det_score=np.ones(n, np.float32), probs=np.asarray(probs, np.float32).reshape(n, 7))


A, B = (0, 0, 100, 100), (300, 0, 400, 100)


def test_ids_follow_faces_frame_by_frame():
    tracker = FaceTracker(max_gap_s=1.0)
    assert tracker.update(faces_at(A, B), 0.0).face_id.tolist() == [1, 2]
    moved = ((10, 5, 110, 105), (305, 0, 405, 100))
    assert tracker.update(faces_at(*reversed(moved)), 0.1).face_id.tolist() == [2, 1]
    assert tracker.update(faces_at(B), 0.2).face_id.tolist() == [2]
    # A comes back within max_gap_s: same id; a newcomer far away: a new one.
    assert tracker.update(faces_at(A, B, (600, 0, 700, 100)), 0.9).face_id.tolist() == [1, 2, 3]


def test_a_face_gone_longer_than_max_gap_gets_a_new_id():
    tracker = FaceTracker(max_gap_s=1.0)
    tracker.update(faces_at(A), 0.0)
    assert tracker.update(faces_at(A), 1.5).face_id.tolist() == [2]


def test_reset_starts_ids_again():
    tracker = FaceTracker()
    tracker.update(faces_at(A, B), 0.0)
    tracker.reset()
    assert tracker.update(faces_at(B), 0.1).face_id.tolist() == [1]


def step_response(fps: float, tau_s: float, until_s: float = 1.0) -> float:
    """Smoothed 'happy' after a step from neutral to happy at t=0+, sampled at ``fps``."""
    tracker = FaceTracker(tau_s=tau_s, max_gap_s=2.0)
    neutral, happy = np.eye(7)[6], np.eye(7)[3]
    tracker.update(faces_at(A, probs=neutral), 0.0)
    result = None
    for t_s in np.arange(1, int(until_s * fps) + 1) / fps:
        result = tracker.update(faces_at(A, probs=happy), float(t_s))
    return float(result.smoothed[0, 3])


@pytest.mark.parametrize("fps", [5, 15, 30, 60])
def test_smoothing_is_the_same_at_any_frame_rate(fps):
    assert step_response(fps, tau_s=0.5) == pytest.approx(1 - np.exp(-1 / 0.5), abs=1e-5)


def test_zero_time_constant_means_raw_scores():
    assert step_response(10, tau_s=0.0) == pytest.approx(1.0)


def test_iou():
    overlap = box_iou(np.array([A], np.float32), np.array([A, (50, 0, 150, 100)], np.float32))
    assert overlap == pytest.approx(np.array([[1.0, 1 / 3]]))
