"""The data handed from stage to stage: one ``Frame`` in, one ``Faces`` out.

``Faces`` holds n faces as parallel numpy arrays; stages add fields and return a new
object, never reinterpret or mutate one. "No face" is just ``len(faces) == 0``.

Example::

    faces = Faces(xyxy=np.array([[10, 20, 110, 140]], np.float32), det_score=np.array([0.9], np.float32))
    faces[faces.det_score > 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One image from a source.

    Attributes:
        index: 0-based position in its source (frames skipped by ``--every`` still count).
        t_s: seconds since the source started: media time for files, wall clock for cameras.
        image: ``uint8 (H, W, 3)`` BGR pixels, as OpenCV delivers them.
        source: the file, folder item or camera this frame came from.
        origin: the source whose clock ``t_s`` counts on, when not ``source`` itself: the folder,
            for its images (they share one start, so their timestamps follow ``t_s``).
    """

    index: int
    t_s: float
    image: np.ndarray
    source: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Faces:
    """n faces of one frame as parallel arrays.

    Attributes:
        xyxy: ``float32 (n, 4)`` box corners in source-frame pixels.
        det_score: ``float32 (n,)`` detector confidence in [0, 1].
        keypoints: ``float32 (n, 6, 2)`` pixels: right eye, left eye, nose tip, mouth,
            right ear tragion, left ear tragion (MediaPipe's order; "right" is the person's).
        probs: ``float32 (n, K)`` raw classifier probabilities in the card's label order, or None.
        face_id: ``int64 (n,)`` stable track IDs, or None before tracking.
        smoothed: ``float32 (n, K)`` time-smoothed probabilities, or None before tracking.
    """

    xyxy: np.ndarray
    det_score: np.ndarray
    keypoints: np.ndarray = field(default=None)  # type: ignore[assignment]
    probs: np.ndarray | None = None
    face_id: np.ndarray | None = None
    smoothed: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.keypoints is None:
            object.__setattr__(self, "keypoints", np.zeros((n, 6, 2), np.float32))
        expected = {"xyxy": (n, 4), "det_score": (n,), "keypoints": (n, 6, 2)}
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise ValueError(f"Faces.{name} must have shape {shape}, got {actual}")
        for name in ("probs", "face_id", "smoothed"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Faces.{name} must have {n} rows, got {len(value)}")

    @classmethod
    def empty(cls) -> Faces:
        return cls(xyxy=np.zeros((0, 4), np.float32), det_score=np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice) -> Faces:
        """Select faces by boolean mask, index array or slice."""
        def pick(value):
            return None if value is None else value[index]
        return Faces(xyxy=self.xyxy[index], det_score=self.det_score[index], keypoints=self.keypoints[index],
                     probs=pick(self.probs), face_id=pick(self.face_id), smoothed=pick(self.smoothed))

    def with_fields(self, **changes) -> Faces:
        """A new ``Faces`` with some fields replaced (validated again)."""
        return replace(self, **changes)

    @property
    def xywh(self) -> np.ndarray:
        """``float32 (n, 4)``: left, top, width, height in pixels."""
        out = self.xyxy.copy()
        out[:, 2:] -= out[:, :2]
        return out
