"""Frames of a video file by index, for replay: the next frame by decoding on, any other by seeking.

OpenCV's ``CAP_PROP_POS_FRAMES`` seek lands on the asked frame (FFmpeg seeks to the keyframe before
it and decodes forward), so a jump costs one GOP of decoding at most; playing on decodes one frame
per frame. ``benchmarks/replay.md`` measures the seeks.

Example::

    with VideoFrames(Path("session.mp4")) as video:
        image = video.read(360)      # BGR uint8 (H, W, 3), or None past the end
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError
from emolens.native import captured_native_stderr


@dataclass(frozen=True)
class VideoInfo:
    """What OpenCV says about a video file."""

    path: Path
    fps: float
    frame_count: int
    size_wh: tuple[int, int]


def open_video_info(path: Path) -> VideoInfo:
    """Frame rate, frame count and size of a video file.

    Raises:
        EmolensError: OpenCV cannot read it as a video.
    """
    with captured_native_stderr():
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise EmolensError(f"{path} cannot be read as a video")
            fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
            return VideoInfo(path, fps, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
                             (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        finally:
            capture.release()


class VideoFrames:
    """One open video file, read by frame index (not thread-safe: one reader thread)."""

    def __init__(self, path: Path):
        self.path = path
        with captured_native_stderr():
            self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise EmolensError(f"{path} cannot be read as a video")
        self._next = 0  # the index the next plain read() returns

    def read(self, index: int) -> np.ndarray | None:
        """Frame ``index`` (0-based), or None when the video has no such frame."""
        if index < 0:
            return None
        if index != self._next:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = self._capture.read()
        self._next = index + 1 if ok else -1  # after a failed read, seek again whatever comes next
        return image if ok else None

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
