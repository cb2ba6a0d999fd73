"""Tracked detection (``--detect tracked``): the full search now and then, the faces carried along in between.

The full search (``FaceDetector.detect``: squares, tiles, second look) is what finds faces. Re-finding each
known face with one detector call on a small window around it was measured first and saves nothing: a
call cost about the same on a 150-pixel window as on a whole 640x480 frame (1.8 against 2.1 ms of CPU with
MediaPipe's graph; the call's fixed cost dominates, see ``docs/speed.md``), so four faces in windows cost more than
the search that found them. What is cheap is not calling the detector: between full searches the faces the
last one found are kept where it found them, and only the classifier reads the new frame. Moving them along
their motion (constant velocity over the last two searches) was measured too and agreed less with the full
search (the detector's boxes jitter by a few pixels from frame to frame, and a velocity amplifies that).

A full search runs on the first frame, every ``every_frames`` frames or ``every_s`` seconds of media time
(whichever comes first), on the frame after a search that lost a face (one the search before had found),
and after a scene change (``reset``: a new source, or each image of a folder). So no face is kept without
being found for more than ``every_frames - 1`` frames, and a face that arrives is found within
``every_frames`` frames. Each frame's ``Faces.full_search`` says whether it was searched (the CSV's
``full_search`` column).

Example::

    follower = FaceFollower()
    faces = follower.detect(detector, frame)     # faces.full_search: True on the frames that were searched
"""

from __future__ import annotations

from emolens.detect import FaceDetector
from emolens.track import box_iou, match_boxes
from emolens.types import Faces, Frame

FULL_EVERY_FRAMES = 2
"""A full search at least every this many frames: every other frame. Chosen on ``emolens bench detection``'s
moving faces, where carrying faces two frames (a search every third) agreed less with the full search (see
``docs/speed.md``); on the real clips every choice up to 6 met the quality goals."""
FULL_EVERY_S = 0.1
"""... and at least this often in media time, so a slow source (10 fps or less) is searched on every frame."""
SAME_FACE_IOU = 0.2
"""Boxes of two searches that overlap this much are one face moving (the tracker's own threshold)."""


class FaceFollower:
    """One source's detection schedule: full searches, and the faces kept between them.

    Args:
        every_frames: frames from one full search to the next (1: every frame, as ``--detect full``).
        every_s: at most this many seconds of media time between full searches.
    """

    def __init__(self, every_frames: int = FULL_EVERY_FRAMES, every_s: float = FULL_EVERY_S):
        self.every_frames = every_frames
        self.every_s = every_s
        self.reset()

    def reset(self) -> None:
        """Forget the faces (a new source or scene): the next frame gets a full search."""
        self._found: Faces | None = None  # what the last full search found
        self._found_t_s = 0.0
        self._since = 0  # frames since the last full search
        self._lost = False  # the last search missed a face the one before had found

    def detect(self, detector: FaceDetector, frame: Frame) -> Faces:
        """The faces of ``frame``: a full search when one is due, else the last search's faces
        (``full_search`` False)."""
        if self._search_due(frame.t_s):
            faces = detector.detect(frame.image, frame.rgb)
            previous = self._found
            self._lost = previous is not None and len(previous) > len(
                match_boxes(box_iou(faces.xyxy, previous.xyxy), SAME_FACE_IOU))
            self._found, self._found_t_s, self._since = faces, frame.t_s, 0
            return faces
        self._since += 1
        return self._found.with_fields(full_search=False)

    def _search_due(self, t_s: float) -> bool:
        return (self._found is None or self._lost or self._since + 1 >= self.every_frames
                or not 0 <= t_s - self._found_t_s < self.every_s)
