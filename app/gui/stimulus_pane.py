"""Replay's second pane: the stimulus the viewer saw at the moment replayed, or a neutral pane saying why none.

Video stimuli are decoded by a ``FrameDecoder`` of their own (newest request first, off the GUI
thread); images are read once and shown as they are.

Example::

    pane = StimulusPane(recording.stimuli)
    pane.show_at(recording.stimulus_at(frame), recording.in_baseline(frame))
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from emolens.gui.frame_decoder import FrameDecoder
from emolens.gui.video_view import VideoView
from emolens.replay.recording import clock
from emolens.replay.stimulus import SessionStimuli, StimulusFile
from emolens.types import Faces

BASELINE_TEXT = "baseline: the neutral screen before the first stimulus (no stimulus on screen)"
NONE_TEXT = "no stimulus on screen at this moment (before, between or after the stimuli)"


class StimulusPane(QWidget):
    """The stimulus frame on screen at a moment of the session.

    Signals:
        stimulus_shown(str, int): a stimulus's frame is painted (its name and frame index).

    Attributes:
        shown: the name and frame index on screen, or None while the pane is neutral.
    """

    stimulus_shown = Signal(str, int)

    def __init__(self, stimuli: SessionStimuli, parent: QWidget | None = None):
        super().__init__(parent)
        self.stimuli = stimuli
        self.title = QLabel("<b>Stimulus</b>")
        self.view = VideoView()
        self.message = QLabel(NONE_TEXT)
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("background: #808080; color: white; padding: 12px;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.view, 1)
        self.view.hide()
        self.shown: tuple[str, int] | None = None
        self._wanted: tuple[str, int] | None = None
        self._decoders: dict[str, FrameDecoder] = {}
        self._images: dict[str, np.ndarray | None] = {}

    def show_at(self, stimulus: tuple[str, float] | None, baseline: bool = False) -> None:
        """Show ``stimulus`` (its name and second, from ``Recording.stimulus_at``), or say why there is none."""
        if stimulus is None:
            self._neutral("<b>Stimulus</b>", BASELINE_TEXT if baseline else NONE_TEXT)
            return
        name, t_s = stimulus
        file = self.stimuli.files.get(name)
        title = f"<b>Stimulus</b> {name} · {clock(t_s)}.{int(t_s * 10) % 10}"
        if file is None:
            self._neutral(title, f"{name} was on screen; its file is not found ({self.stimuli.why_missing})")
            return
        self.title.setText(title)
        index = file.frame_at(t_s)
        self._wanted = (name, index)
        if file.kind == "image":
            self._show(name, index, self._image(file))
        else:
            self._decoder(file).request(index)

    @property
    def pending(self) -> bool:
        """Whether a stimulus frame asked for is not painted yet."""
        return self._wanted is not None and self.shown != self._wanted

    def stop(self) -> None:
        """End the decoder threads (the window closes)."""
        for decoder in self._decoders.values():
            decoder.stop()

    def _neutral(self, title: str, text: str) -> None:
        self._wanted = self.shown = None
        self.title.setText(title)
        self.message.setText(text)
        self.view.hide()
        self.message.show()

    def _image(self, file: StimulusFile) -> np.ndarray | None:
        if file.name not in self._images:
            self._images[file.name] = cv2.imread(str(file.path))
        return self._images[file.name]

    def _decoder(self, file: StimulusFile) -> FrameDecoder:
        if file.name not in self._decoders:
            decoder = FrameDecoder(file.path)
            decoder.decoded.connect(self._on_decoded)  # a method of this widget: queued onto the GUI thread
            decoder.failed.connect(self._on_failed)
            decoder.start()
            self._decoders[file.name] = decoder
        return self._decoders[file.name]

    def _on_decoded(self, index: int, image: np.ndarray | None) -> None:
        sender = self.sender()
        self._show(next(name for name, decoder in self._decoders.items() if decoder is sender), index, image)

    def _on_failed(self, message: str) -> None:
        self._neutral(self.title.text(), f"cannot show the stimulus: {message}")

    def _show(self, name: str, index: int, image: np.ndarray | None) -> None:
        if self._wanted != (name, index):
            return  # a frame asked for before the last seek
        if image is None:
            self._neutral(self.title.text(), f"{name} has no frame {index} (the file is shorter than the session says)")
            return
        self.view.show_frame(image, Faces.empty(), 0.0)
        self.message.hide()
        self.view.show()
        self.shown = (name, index)
        self.stimulus_shown.emit(name, index)
