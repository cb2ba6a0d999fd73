"""The participant's screen during a study session: a countdown, a neutral grey baseline, then the stimuli.

Videos play with sound through Qt Multimedia (``QMediaPlayer`` into a ``QVideoSink``, ``QAudioOutput``);
each frame that reaches the sink is drawn by the screen itself and reported to the ``StimulusClock`` with its
own start time, so the recording knows which frame was on screen when each camera frame was captured. The
sink is read on the GUI thread, every ``FRAME_POLL_MS``: its ``videoFrameChanged`` is emitted on the
player's own thread, and a Python slot there needs the GIL while the GUI thread, holding it, waits for that
thread (stopping the player, hiding a ``QVideoWidget``): now and then, under load, the window hung for good
and the session was never written. For the same reason the player is only ever told what to do through
``QMetaObject.invokeMethod`` (``_tell_player``), which lets go of the GIL while the call runs: stopping or
changing the source deletes the player's renderers in their own threads; Qt then calls ``disconnectNotify`` on
a sender made in Python (the audio output or the sink), and PySide takes the GIL there to look for a Python
override while Qt holds a lock that the GUI thread's call waits for (seen in 2 of 18 sessions ended by Esc).
Images are shown for their duration. Esc (or closing the screen) asks to end the session (``escape_pressed``).

Qt Multimedia is in PySide6-Addons (``pip install 'emolens[study]'``); ``multimedia_missing()`` says so
where it is absent, and nothing here is imported then.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Q_ARG, QMetaObject, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent, QPixmap
from PySide6.QtMultimedia import QAudioOutput, QMediaPlayer, QVideoFrame, QVideoSink
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from emolens.gui.stimulus_clock import StimulusClock
from emolens.study.file import Stimulus

NEUTRAL_GREY = "#808080"
FRAME_POLL_MS = 4
"""How often the GUI thread reads the sink's newest frame: a frame's time on screen is known within this."""


class StimulusScreen(QWidget):
    """The window the participant watches.

    Signals:
        stimulus_done(): the stimulus playing came to its end (a video's last frame, an image's duration).
        failed(str): a stimulus could not be played (the player's message).
        escape_pressed(): Esc, or the screen was closed: the moderator ends the session.
        frame_shown(object): each ``QVideoFrame`` as it reaches the screen (benchmarks read its pixels).
    """

    stimulus_done = Signal()
    failed = Signal(str)
    escape_pressed = Signal()
    frame_shown = Signal(object)

    def __init__(self, clock: StimulusClock, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Emolens study")
        self.setStyleSheet(f"background: {NEUTRAL_GREY}; color: white;")
        self.clock = clock
        self._name = ""
        self.message = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("font-size: 64px;")
        self.video = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)  # the stimulus's frames, drawn from the sink
        self.video.setStyleSheet("background: black;")
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        for page in (self.message, self.video, self.image):
            self.pages.addWidget(page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.pages)
        self.audio = QAudioOutput(self)
        self.player = QMediaPlayer(self)
        self.player.setAudioOutput(self.audio)
        self.sink = QVideoSink(self)
        self.player.setVideoOutput(self.sink)
        self.player.mediaStatusChanged.connect(self._on_media_status)
        self.player.errorOccurred.connect(lambda _error, text: self.failed.emit(text or "it cannot be played"))
        self._frame_timer = QTimer(self, interval=FRAME_POLL_MS, timerType=Qt.TimerType.PreciseTimer)
        self._frame_timer.timeout.connect(self._read_sink)
        self._shown_start_us = -1  # the start time of the frame drawn last
        self._image_timer = QTimer(self, singleShot=True)
        self._image_timer.timeout.connect(self._on_image_done)

    def show_text(self, text: str) -> None:
        """A message on the grey screen (the countdown, the end); no stimulus on screen."""
        self._stop_stimulus()
        self.message.setText(text)
        self.pages.setCurrentWidget(self.message)

    def play(self, stimulus: Stimulus, path: Path) -> None:
        """Show ``stimulus`` (its file at ``path``) now; ``stimulus_done`` when it ends."""
        self._stop_stimulus()
        self._name = stimulus.name
        if stimulus.kind == "image":
            self.image.setPixmap(QPixmap(str(path)).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                           Qt.TransformationMode.SmoothTransformation))
            self.pages.setCurrentWidget(self.image)
            self.clock.show(stimulus.name, 0.0, time.perf_counter(), running=True)
            self._image_timer.start(round(stimulus.duration_s * 1000))
        else:
            self.video.clear()  # not the last stimulus's last frame
            self.pages.setCurrentWidget(self.video)
            self._tell_player("setSource", Q_ARG(QUrl, QUrl.fromLocalFile(str(path.resolve()))))
            self._shown_start_us = -1
            self._frame_timer.start()
            self._tell_player("play")

    def stop(self) -> None:
        """Stop whatever plays; no stimulus on screen from now on."""
        self._stop_stimulus()

    def _stop_stimulus(self) -> None:
        self._image_timer.stop()
        self._frame_timer.stop()
        playing, self._name = self._name, ""
        if playing:
            self.clock.clear(time.perf_counter())
        self._tell_player("stop")

    def _tell_player(self, slot: str, *args) -> None:
        """Call the player's ``slot`` now, without the GIL (see the module's docstring)."""
        if not QMetaObject.invokeMethod(self.player, slot, Qt.ConnectionType.DirectConnection, *args):
            raise RuntimeError(f"QMediaPlayer has no slot {slot} taking these arguments")

    def _read_sink(self) -> None:
        frame = self.sink.videoFrame()
        if frame.isValid() and frame.startTime() != self._shown_start_us:
            self._shown_start_us = frame.startTime()
            self._on_video_frame(frame)

    def _on_video_frame(self, frame: QVideoFrame) -> None:
        if self._name and frame.isValid():
            self.clock.show(self._name, frame.startTime() / 1e6, time.perf_counter())
            self.video.setPixmap(QPixmap.fromImage(frame.toImage()).scaled(
                self.video.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
            self.frame_shown.emit(frame)

    def _on_media_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.EndOfMedia and self._name:
            self._stop_stimulus()
            self.stimulus_done.emit()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia and self._name:
            self.failed.emit(self.player.errorString() or f"{self._name} cannot be played")

    def _on_image_done(self) -> None:
        self._stop_stimulus()
        self.stimulus_done.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 -- Qt's name
        if event.key() == Qt.Key.Key_Escape:
            self.escape_pressed.emit()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 -- Qt's name
        self._stop_stimulus()
        self.escape_pressed.emit()  # a no-op once the session has ended
        super().closeEvent(event)
