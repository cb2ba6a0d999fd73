"""The camera video saved beside a window recording: the frames analysed, one video frame per timeline frame.

Off unless asked (it is the participant's face). Beside ``session.csv`` it is ``session.mp4``, where
replay looks for it (``emolens.replay.recording.find_video``). Its ``i``-th frame is the ``i``-th
frame the timeline has rows for, whatever the camera's frame numbers (a recording starts mid-stream)
and rate (frames the analysis could not keep up with are never in the timeline, nor here), so
replay draws each frame's own faces on it. The frames go to a hidden file beside it
(``.session.mp4.partial.mp4``) that takes its name only at ``finish``, once it reads back whole,
and never over an existing file unless ``overwrite``: a crash leaves no half video under the
final name, and nothing is ever replaced silently.

Example::

    video = CameraVideoWriter(camera_video_path(Path("session.csv")), fps=15.0)
    video.write(frame)          # after the timeline's rows of that frame are written
    video.finish()
"""

from __future__ import annotations

from pathlib import Path

from emolens.draw import AnnotatedVideo
from emolens.errors import EmolensError
from emolens.record import refuse_existing
from emolens.types import Faces, Frame


def camera_video_path(csv: Path) -> Path:
    """Where the camera video of the timeline ``csv`` goes: ``NAME.mp4`` beside it."""
    return Path(csv).with_suffix(".mp4")


class CameraVideoWriter:
    """Writes each analysed frame once, in order, as it came from the camera (nothing drawn).

    Args:
        path: the ``.mp4`` to write (``camera_video_path``).
        fps: the rate the video says it plays at (the analysis's: replay goes by the timeline's clock).
        overwrite: replace a file already there, at ``finish``.

    Raises:
        SettingError: ``path`` exists and ``overwrite`` is False.
    """

    def __init__(self, path: Path, fps: float, overwrite: bool = False):
        refuse_existing(Path(path), overwrite)
        self.path = Path(path)
        self.fps = fps if fps > 0 else 25.0
        self.overwrite = overwrite
        self._video = AnnotatedVideo(self.path, labels=())
        self._last_index: int | None = None

    @property
    def frames(self) -> int:
        return self._video.frames

    def write(self, frame: Frame) -> None:
        """Append ``frame``'s image (a frame already written, by its index, is not written twice).

        Raises:
            EmolensError: the video file cannot be opened for writing (the first frame).
        """
        if frame.index == self._last_index:
            return
        self._video.write(frame.image, Faces.empty(), self.fps)
        self._last_index = frame.index

    def finish(self) -> Path | None:
        """Put the video in place; returns its path (None: no frame was written, and no file is left).

        Raises:
            EmolensError: it does not read back whole (removed), or its name was taken meanwhile (it is kept
                under its hidden name, which the message gives).
        """
        if not self._video.frames:
            self._video.discard()
            return None
        try:
            self._video.finish(replace=self.overwrite)
        except EmolensError as error:
            raise EmolensError(f"the camera video was not saved: {error}") from None
        return self.path

    def discard(self) -> None:
        """Remove the partial video (a recording that could not start)."""
        self._video.discard()
