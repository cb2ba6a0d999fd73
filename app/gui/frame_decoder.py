"""A thread that decodes the video frame replay asks for, newest request first.

``request(index)`` returns at once; the thread decodes the most recent index asked for and emits
``decoded(index, image)`` (image None past the video's end). Requests made while it decodes
replace one another, so a drag across the chart or a slow machine drops stale frames instead of
queueing them: the GUI thread never waits on the decoder, and what it shows lags by one decode at
most.

Example::

    decoder = FrameDecoder(Path("session.mp4"))
    decoder.decoded.connect(lambda index, image: view.show_frame(image, faces_of(index), 0.0))
    decoder.start()
    decoder.request(360)
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QThread, Signal

from emolens.replay.video import VideoFrames


class FrameDecoder(QThread):
    """Decodes requested frames of one video file on its own thread (latest request wins)."""

    decoded = Signal(int, object)
    failed = Signal(str)

    def __init__(self, path: Path):
        super().__init__()
        self.setObjectName("emolens-replay-decoder")
        self.path = path
        self._wanted: int | None = None
        self._stopping = False
        self._changed = threading.Condition()

    def request(self, index: int) -> None:
        with self._changed:
            self._wanted = index
            self._changed.notify()

    def stop(self) -> None:
        """Ask the thread to end and wait for it."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self.wait()

    def run(self) -> None:
        try:
            video = VideoFrames(self.path)
        except Exception as error:  # noqa: BLE001 -- the window says it in one line
            self.failed.emit(str(error))
            return
        try:
            while True:
                with self._changed:
                    while self._wanted is None and not self._stopping:
                        self._changed.wait()
                    if self._stopping:
                        return
                    index, self._wanted = self._wanted, None
                self.decoded.emit(index, video.read(index))
        finally:
            video.close()
