"""The data handed from stage to stage: one ``Frame`` in, one ``Faces`` out.

``Faces`` holds n faces as parallel numpy arrays; stages add fields and return a new
object, never reinterpret or mutate one. "No face" is just ``len(faces) == 0``.

Example::

    faces = Faces(xyxy=np.array([[10, 20, 110, 140]], np.float32), det_score=np.array([0.9], np.float32))
    faces[faces.det_score > 0.5]
    analyzer.analyze("photo.jpg").to_pandas()     # a table: one row per face, one column per label
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


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

    @cached_property
    def rgb(self) -> np.ndarray:
        """The image in RGB order (the detector's and landmarker's), converted once per frame and shared by the detector's calls
        and the landmarker's crops."""
        import cv2  # light module: OpenCV loads on first use

        return cv2.cvtColor(self.image, cv2.COLOR_BGR2RGB)


# Per-face arrays that a stage may add; each has one row per face when set.
_OPTIONAL_ROWS = ("probs", "face_id", "smoothed", "blendshapes", "aus", "head_pose", "eye_open", "blink",
                  "attentive", "expressiveness", "landmarks")


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
        labels: the K label names of ``probs``' columns, in order (the card's), or None.
        full_search: whether the detector searched this frame (False: ``--detect tracked`` kept the last
            search's faces where it found them, see ``emolens.follow``).

    Behaviour fields, None unless behaviour is on (``AnalyzerOptions(behaviour=True)``); rows of
    faces the landmarker could not read are NaN (see ``emolens.behaviour.signals`` for units and signs):
        blendshapes: ``float32 (n, 52)`` MediaPipe blendshape scores 0..1 (``BLENDSHAPE_NAMES`` order).
        aus: ``float32 (n, A)`` action-unit intensities 0..1 (``AU_NAMES`` order).
        head_pose: ``float32 (n, 3)`` yaw, pitch, roll in degrees.
        eye_open: ``float32 (n, 2)`` openness 0..1 of the person's right and left eye.
        blink: ``float32 (n,)`` 1 where a blink ends at this frame, else 0.
        attentive: ``float32 (n,)`` 1 when the head points at the camera, else 0.
        expressiveness: ``float32 (n,)`` 0..1, how far the face is from rest.
        landmarks: ``float32 (n, 478, 2)`` face-mesh points in source-frame pixels.
    """

    xyxy: np.ndarray
    det_score: np.ndarray
    keypoints: np.ndarray = field(default=None)  # type: ignore[assignment]
    probs: np.ndarray | None = None
    face_id: np.ndarray | None = None
    smoothed: np.ndarray | None = None
    labels: tuple[str, ...] | None = None
    blendshapes: np.ndarray | None = None
    aus: np.ndarray | None = None
    head_pose: np.ndarray | None = None
    eye_open: np.ndarray | None = None
    blink: np.ndarray | None = None
    attentive: np.ndarray | None = None
    expressiveness: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    full_search: bool = True

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.keypoints is None:
            object.__setattr__(self, "keypoints", np.zeros((n, 6, 2), np.float32))
        expected = {"xyxy": (n, 4), "det_score": (n,), "keypoints": (n, 6, 2)}
        for name, shape in expected.items():
            actual = getattr(self, name).shape
            if actual != shape:
                raise ValueError(f"Faces.{name} must have shape {shape}, got {actual}")
        for name in _OPTIONAL_ROWS:
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"Faces.{name} must have {n} rows, got {len(value)}")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
            for name in ("probs", "smoothed"):
                value = getattr(self, name)
                if value is not None and value.shape[1:] != (len(self.labels),):
                    raise ValueError(f"Faces.{name} must have {len(self.labels)} columns (one per label), "
                                     f"got shape {value.shape}")

    @classmethod
    def empty(cls) -> Faces:
        return cls(xyxy=np.zeros((0, 4), np.float32), det_score=np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice) -> Faces:
        """Select faces by boolean mask, index array or slice (every per-face array; ``labels`` stay)."""
        return replace(self, **{item.name: getattr(self, item.name)[index] for item in fields(self)
                                if isinstance(getattr(self, item.name), np.ndarray)})

    def with_fields(self, **changes) -> Faces:
        """A new ``Faces`` with some fields replaced (validated again)."""
        return replace(self, **changes)

    def to_pandas(self, keypoints: bool = False) -> pd.DataFrame:
        """One row per face, in the CSV timeline's terms: ``face_id`` (when tracked), ``x``, ``y``,
        ``w``, ``h`` (pixels), ``det_score``, one probability column per label (raw ``probs``, the
        labels' names and order) and ``dominant``; with ``keypoints``, ``kp0_x`` ... ``kp5_y``; with
        behaviour on, the timeline's behaviour columns (``yaw`` ... ``expressiveness``, ``AU01`` ...,
        ``bs_...``; NaN where the landmarker could not read a face), as numbers.

        Raises:
            ValueError: ``probs`` without ``labels`` (faces not made by ``Analyzer``).
        """
        import pandas as pd  # a base dependency, loaded only when asked for

        columns: dict[str, object] = {}
        if self.face_id is not None:
            columns["face_id"] = self.face_id
        columns.update(zip(("x", "y", "w", "h"), self.xywh.T))
        columns["det_score"] = self.det_score
        if self.probs is not None:
            if self.labels is None:
                raise ValueError("these Faces have probs but no label names: use faces made by Analyzer, or "
                                 "faces.with_fields(labels=analyzer.labels)")
            columns.update(zip(self.labels, self.probs.T))
            columns["dominant"] = pd.Categorical(self.dominant, categories=self.labels)
        if keypoints:
            names = [f"kp{point}_{axis}" for point in range(self.keypoints.shape[1]) for axis in ("x", "y")]
            columns.update(zip(names, self.keypoints.reshape(len(self), -1).T))
        if self.head_pose is not None:
            from emolens.behaviour.signals import AU_NAMES, BLENDSHAPE_NAMES  # no import back: signals is numpy only

            columns.update(zip(("yaw", "pitch", "roll"), self.head_pose.T))
            columns.update(zip(("eye_open_r", "eye_open_l"), self.eye_open.T))
            columns.update(blink=self.blink, attentive=self.attentive, expressiveness=self.expressiveness)
            columns.update(zip(AU_NAMES, self.aus.T))
            columns.update(zip((f"bs_{name}" for name in BLENDSHAPE_NAMES), self.blendshapes.T))
        return pd.DataFrame(columns, index=pd.RangeIndex(len(self)))

    @property
    def dominant(self) -> list[str]:
        """Each face's label with the highest raw probability (needs ``probs`` and ``labels``)."""
        return [self.labels[i] for i in self.probs.argmax(axis=1)] if len(self) else []

    @property
    def xywh(self) -> np.ndarray:
        """``float32 (n, 4)``: left, top, width, height in pixels."""
        out = self.xyxy.copy()
        out[:, 2:] -= out[:, :2]
        return out
