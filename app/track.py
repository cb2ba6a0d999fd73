"""Stable face IDs across frames and time-based smoothing of emotion scores.

Matching is greedy on box overlap (IoU), best pairs first; with a handful of faces this
is as good as an optimal assignment and needs no extra dependency. A track survives
``max_gap_s`` seconds without a match, so a face that turns away or is briefly occluded
keeps its ID. Scores are smoothed exponentially with a time constant ``tau_s`` in seconds:
the weight of a new frame is ``1 - exp(-dt / tau_s)``, so smoothing behaves the same at
5 or 60 fps and across dropped frames.

Example::

    tracker = FaceTracker(max_gap_s=1.0, tau_s=0.5)
    faces = tracker.update(faces, t_s=frame.t_s)     # adds face_id and smoothed
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emolens.types import Faces


@dataclass
class _Track:
    face_id: int
    xyxy: np.ndarray
    smoothed: np.ndarray
    last_seen_s: float


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` intersection over union of xyxy boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return intersection / np.maximum(area_a[:, None] + area_b[None, :] - intersection, 1e-9)


class FaceTracker:
    """Assigns stable integer IDs (from 1) and smooths probabilities over time.

    Args:
        max_gap_s: how long a face may go unseen and keep its ID. Longer bridges longer
            occlusions but risks giving a newcomer at the same spot the old ID.
        tau_s: smoothing time constant; 0 turns smoothing off. Longer is calmer but lags
            real changes (about ``tau_s`` seconds to reach 63% of a step).
        min_iou: minimum overlap to continue a track. Lower follows fast motion but may
            swap IDs of faces that pass close to each other.
    """

    def __init__(self, max_gap_s: float = 1.0, tau_s: float = 0.5, min_iou: float = 0.2):
        self.max_gap_s = max_gap_s
        self.tau_s = tau_s
        self.min_iou = min_iou
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; IDs start again from 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1

    def new_scene(self) -> None:
        """Forget all tracks but keep counting IDs, so faces of the next scene get new ones."""
        self._tracks = []

    def update(self, faces: Faces, t_s: float) -> Faces:
        """Faces with ``face_id`` and ``smoothed`` set; ``faces.probs`` must be present."""
        self._tracks = [t for t in self._tracks if t_s - t.last_seen_s <= self.max_gap_s]
        if faces.probs is None:
            raise ValueError("FaceTracker.update needs faces with probs")
        assigned = self._match(faces.xyxy)
        ids = np.zeros(len(faces), np.int64)
        smoothed = np.empty_like(faces.probs)
        for index in range(len(faces)):
            track = assigned.get(index)
            if track is None:
                track = _Track(self._next_id, faces.xyxy[index], faces.probs[index].copy(), t_s)
                self._next_id += 1
                self._tracks.append(track)
            else:
                weight = 1.0 if self.tau_s == 0 else 1.0 - math.exp(-max(t_s - track.last_seen_s, 0.0) / self.tau_s)
                track.smoothed = track.smoothed + weight * (faces.probs[index] - track.smoothed)
                track.xyxy, track.last_seen_s = faces.xyxy[index], t_s
            ids[index] = track.face_id
            smoothed[index] = track.smoothed
        return faces.with_fields(face_id=ids, smoothed=smoothed)

    def _match(self, xyxy: np.ndarray) -> dict[int, _Track]:
        if not self._tracks or not len(xyxy):
            return {}
        pairs = match_boxes(box_iou(xyxy, np.stack([t.xyxy for t in self._tracks])), self.min_iou)
        return {face: self._tracks[track] for face, track in pairs.items()}


def match_boxes(overlap: np.ndarray, min_iou: float) -> dict[int, int]:
    """Greedy one-to-one pairs (row -> column) of an IoU matrix, best pairs first, each at least ``min_iou``."""
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for flat in np.argsort(-overlap, axis=None):
        row, column = divmod(int(flat), overlap.shape[1])
        if overlap[row, column] < min_iou:
            break
        if row not in pairs and column not in used:
            pairs[row] = column
            used.add(column)
    return pairs
