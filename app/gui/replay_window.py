"""The replay window: a recorded session's video with the timeline's faces, its chart with a playhead,
markers and strongest moments to jump to, markers to add or edit, and moments to export.

Faces, IDs and scores are drawn from the timeline's rows (``Recording.faces_at``), never computed
again; the scores are the recorded raw probabilities. A ``FrameDecoder`` thread decodes frames
(newest request wins), so seeking, dragging on the chart and playing never block the window.
Without a video the chart plays alone and the window says why. A study session's replay shows the
stimulus the viewer saw in a second pane, in step on the rows' ``stimulus_t_s`` (``StimulusPane``).

File → Open recording… opens another timeline, File → Open study… a study's session list
(``StudySessionsDialog``), each in a window of its own.

Keys: Space play/pause, Left/Right one frame, J/K/L back/pause/forward (J or L again: faster, up to
4x), Home/End, I/O in and out points, Ctrl+M add the typed marker (or the time), Delete the
selected marker.

Example::

    window = ReplayWindow(load_recording(Path("session.csv")))
    window.show()
    window.seek_time(12.0)
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from emolens.errors import EmolensError
from emolens.gui.frame_decoder import FrameDecoder
from emolens.gui.replay_chart import ReplayChart
from emolens.gui.status_bar import StatusMessage
from emolens.gui.stimulus_pane import StimulusPane
from emolens.gui.study_sessions_dialog import StudySessionsDialog
from emolens.gui.video_view import VideoView
from emolens.replay.export import export_clip, export_still, moment_name
from emolens.replay.markers import markers_path, replay_markers, save_markers
from emolens.replay.recording import Recording, clock, load_recording
from emolens.replay.study_sessions import study_sessions
from emolens.report.moments import strongest_moments

SPEEDS = (0.25, 0.5, 1.0, 1.5, 2.0, 4.0)
MOMENT_MIN = 0.5  # a peak below this is no moment to show a client
_TIME_ROLE = Qt.ItemDataRole.UserRole


class ReplayWindow(QMainWindow):
    """Replays one ``Recording``.

    Signals:
        frame_shown(int): the position now on screen (its video frame painted, or the chart moved
            there when there is no video).

    Attributes:
        position: the frame asked for last; ``shown_frame``: the frame on screen now.
        markers: the markers (``time_s``, ``text``), saved to ``markers_file`` at every change.
    """

    frame_shown = Signal(int)

    def __init__(self, recording: Recording, parent: QWidget | None = None):
        super().__init__(parent)
        self.recording = recording
        self.setWindowTitle(f"Replay: {recording.csv.name} · Emolens")
        self.resize(1280, 820)
        self.position = recording.first_frame
        self.shown_frame: int | None = None
        self.speed = 1.0
        self.direction = 0  # 1 playing forward, -1 backward, 0 paused
        self._anchor: tuple[int, float] = (self.position, 0.0)  # frame and clock when play started
        self.in_s: float | None = None
        self.out_s: float | None = None
        self.markers_file = markers_path(recording.csv)
        self.markers = replay_markers(recording)
        self.others: list[ReplayWindow] = []  # the windows opened from this one's File menu
        self.study_dialog: StudySessionsDialog | None = None
        self._build()
        self._play_timer = QTimer(self, interval=max(int(500 / recording.fps), 5), timerType=Qt.TimerType.PreciseTimer)
        self._play_timer.timeout.connect(self._advance)
        self.decoder: FrameDecoder | None = None
        if recording.video is not None:
            self.decoder = FrameDecoder(recording.video.path)
            self.decoder.decoded.connect(self._on_decoded)
            self.decoder.failed.connect(lambda message: self.show_status(f"no video: {message}"))
            self.decoder.start()
        self._refresh_markers()
        self.seek_frame(self.position)

    # -- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        recording = self.recording
        self.video_view = VideoView()
        self.video_view.set_labels(recording.labels)
        self.stimulus_pane = StimulusPane(recording.stimuli) if recording.shows_stimuli else None
        alone = "the chart and the stimulus play alone" if self.stimulus_pane else "the chart plays alone"
        self.no_video_label = QLabel(f"{recording.why_no_video}; {alone}" if recording.why_no_video else "")
        self.no_video_label.setWordWrap(True)
        self.no_video_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.no_video_label.setVisible(recording.video is None)
        self.video_view.setVisible(recording.video is not None)
        picture = QWidget()
        picture_layout = QVBoxLayout(picture)
        picture_layout.setContentsMargins(0, 0, 0, 0)
        picture_layout.addWidget(self.no_video_label)
        picture_layout.addWidget(self.video_view, 1)

        self.marker_list = QListWidget()
        self.marker_list.setToolTip("double-click to rename; Delete removes; a click jumps there")
        self.moment_list = QListWidget()
        self.moment_list.setToolTip(f"each emotion's two strongest peaks of {MOMENT_MIN:.0%} or more; "
                                    "a click jumps there")
        for widget in (self.marker_list, self.moment_list):
            widget.itemClicked.connect(lambda item: self.seek_time(item.data(_TIME_ROLE)))
        self.marker_list.itemChanged.connect(self._on_marker_renamed)
        self._fill_moments()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("<b>Markers</b>"))
        side_layout.addWidget(self.marker_list, 1)
        side_layout.addWidget(QLabel("<b>Strongest moments</b>"))
        side_layout.addWidget(self.moment_list, 1)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(picture)
        if self.stimulus_pane is not None:
            top.addWidget(self.stimulus_pane)
        top.addWidget(side)
        for index in range(top.count() - 1):
            top.setStretchFactor(index, 4)
        top.setStretchFactor(top.count() - 1, 1)

        self.chart = ReplayChart()
        timeline = recording.timeline
        self.chart.set_session(timeline.faces, recording.labels, 0.0, max(timeline.end_s, recording.time_of(
            recording.last_frame)))
        self.chart.seek_requested.connect(self.seek_time)

        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(top)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(4, 0, 4, 4)
        bottom_layout.addWidget(self.chart, 1)
        bottom_layout.addLayout(self._controls())
        main.addWidget(bottom)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 1)
        self.setCentralWidget(main)
        self.status_message = StatusMessage()
        self.statusBar().addWidget(self.status_message, 1)
        self._build_actions()
        notes = [self.no_video_label.text(), *recording.notes]
        self.show_status(" · ".join(note for note in notes if note) or
                         f"replaying {recording.csv.name}: boxes and scores as recorded (raw, not smoothed)")

    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        back, forward = QPushButton("◀ frame"), QPushButton("frame ▶")
        back.clicked.connect(lambda: self.step(-1))
        forward.clicked.connect(lambda: self.step(1))
        self.time_label = QLabel()
        self.speed_box = QComboBox()
        for speed in SPEEDS:
            self.speed_box.addItem(f"{speed:g}x", speed)
        self.speed_box.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_box.currentIndexChanged.connect(lambda index: self.set_speed(SPEEDS[index]))
        self.face_box = QComboBox()
        self.face_box.addItem("all faces (mean)", None)
        for face_id in sorted(self.recording.timeline.faces["face_id"].unique()):
            self.face_box.addItem(f"face #{face_id}", int(face_id))
        self.face_box.currentIndexChanged.connect(self._on_face_chosen)
        self.marker_edit = QLineEdit()
        self.marker_edit.setPlaceholderText("marker text (Ctrl+M)")
        self.marker_edit.returnPressed.connect(self.add_typed_marker)
        add = QPushButton("Add marker")
        add.clicked.connect(self.add_typed_marker)
        in_button, out_button = QPushButton("In (I)"), QPushButton("Out (O)")
        in_button.clicked.connect(self.set_in)
        out_button.clicked.connect(self.set_out)
        self.clip_button, self.still_button = QPushButton("Export clip"), QPushButton("Export still")
        self.clip_button.clicked.connect(self.export_clip)
        self.still_button.clicked.connect(self.export_still)
        for button in (self.clip_button, self.still_button):
            button.setEnabled(self.recording.video is not None)
            button.setToolTip(self.recording.why_no_video or "annotated as emolens analyze --video draws, "
                                                               "beside the timeline, never over a file")
        for widget in (self.play_button, back, forward, self.time_label, self.speed_box, self.face_box):
            row.addWidget(widget)
        row.addStretch(1)
        for widget in (self.marker_edit, add, in_button, out_button, self.clip_button, self.still_button):
            row.addWidget(widget)
        return row

    def _build_actions(self) -> None:
        keys = {"Space": self.toggle_play, "Left": lambda: self.step(-1), "Right": lambda: self.step(1),
                "J": lambda: self.play(-1), "K": self.pause, "L": lambda: self.play(1),
                "Home": lambda: self.seek_frame(0), "End": lambda: self.seek_frame(self.recording.last_frame),
                "I": self.set_in, "O": self.set_out, "Ctrl+M": self.add_typed_marker,
                "Delete": self.delete_selected_marker}
        for key, slot in keys.items():
            action = QAction(self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(slot)
            self.addAction(action)
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Open &recording…", QKeySequence.StandardKey.Open, self.choose_recording)
        menu.addAction("Open &study…", self.choose_study)
        menu.addSeparator()
        menu.addAction("&Close", QKeySequence.StandardKey.Close, self.close)

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        self.status_message.show_text(text, timeout_ms)

    # -- position ---------------------------------------------------------------------------

    @property
    def position_s(self) -> float:
        return self.recording.time_of(self.position)

    def seek_time(self, t_s: float) -> None:
        self.seek_frame(self.recording.frame_at(float(t_s)))
        if self.direction:
            self._anchor = (self.position, time.perf_counter())

    def seek_frame(self, frame: int) -> None:
        """Show ``frame`` (clamped to the recording): asks the decoder, or moves the chart alone."""
        self.position = int(np.clip(frame, 0, self.recording.last_frame))
        self.chart.set_position(self.position_s)
        self.time_label.setText(f"{clock(self.position_s)}.{int(self.position_s * 10) % 10} / "
                                f"{clock(self.recording.timeline.end_s)} · frame {self.position}")
        if self.stimulus_pane is not None:
            self.stimulus_pane.show_at(self.recording.stimulus_at(self.position),
                                       self.recording.in_baseline(self.position))
        if self.decoder is not None:
            self.decoder.request(self.recording.video_index(self.position))
        else:
            self.shown_frame = self.position
            self.frame_shown.emit(self.position)

    def step(self, frames: int) -> None:
        self.pause()
        self.seek_frame(self.recording.step_from(self.position, frames))

    def _on_decoded(self, index: int, image) -> None:
        if image is None:
            self.show_status(f"{self.recording.video.path.name} has no frame {index}", 5000)
            return
        frame = self.recording.frame_of_video(index)
        self.video_view.show_frame(image, self.recording.faces_at(frame), 0.0)
        self.shown_frame = frame
        self.frame_shown.emit(frame)

    # -- playing ----------------------------------------------------------------------------

    def play(self, direction: int = 1) -> None:
        """Play forward (1) or back (-1); asked again in the same direction, twice as fast (up to 4x)."""
        if self.direction == direction:
            self.set_speed(min(self.speed * 2, SPEEDS[-1]))
        self.direction = direction
        self._anchor = (self.position, time.perf_counter())
        self.play_button.setText("Pause")
        self._play_timer.start()

    def pause(self) -> None:
        self.direction = 0
        self._play_timer.stop()
        self.play_button.setText("Play")

    def toggle_play(self) -> None:
        if self.direction:
            self.pause()
        else:
            if self.position >= self.recording.last_frame:
                self.seek_frame(0)
            self.play(1)

    def set_speed(self, speed: float) -> None:
        self._anchor = (self.position, time.perf_counter())
        self.speed = speed
        self.speed_box.blockSignals(True)
        self.speed_box.setCurrentIndex(min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed)))
        self.speed_box.blockSignals(False)

    def _advance(self) -> None:
        """The frame due now on the play clock (frames the decoder could not keep up with are skipped)."""
        frame, started = self._anchor
        elapsed_s = time.perf_counter() - started
        target_s = self.recording.time_of(frame) + self.direction * self.speed * elapsed_s
        target = self.recording.frame_at(target_s)
        if target != self.position:
            self.seek_frame(target)
        if (self.direction > 0 and target >= self.recording.last_frame) or (self.direction < 0 and target <= 0):
            self.pause()

    # -- markers ----------------------------------------------------------------------------

    def add_typed_marker(self) -> None:
        """A marker at the playhead with the typed text (the time itself when the field is empty)."""
        text = self.marker_edit.text().strip() or f"note at {clock(self.position_s)}"
        self.add_marker(self.position_s, text)
        self.marker_edit.clear()

    def add_marker(self, t_s: float, text: str) -> None:
        self.markers = (pd.concat([self.markers, pd.DataFrame({"time_s": [t_s], "text": [text]})], ignore_index=True)
                        .sort_values("time_s", kind="stable").reset_index(drop=True))
        self._markers_changed(f"marker {text!r} at {clock(t_s)}")

    def rename_marker(self, row: int, text: str) -> None:
        self.markers.loc[row, "text"] = text
        self._markers_changed(f"marker renamed {text!r}")

    def delete_marker(self, row: int) -> None:
        text = self.markers.loc[row, "text"]
        self.markers = self.markers.drop(index=row).reset_index(drop=True)
        self._markers_changed(f"marker {text!r} deleted")

    def delete_selected_marker(self) -> None:
        row = self.marker_list.currentRow()
        if row >= 0 and self.marker_list.hasFocus():
            self.delete_marker(row)

    def _on_marker_renamed(self, item: QListWidgetItem) -> None:
        row = self.marker_list.row(item)
        text = item.text().split("  ", 1)[-1].strip()
        if 0 <= row < len(self.markers) and text and text != self.markers.loc[row, "text"]:
            self.rename_marker(row, text)

    def _markers_changed(self, what: str) -> None:
        try:
            save_markers(self.markers_file, self.markers)
            self.show_status(f"{what}; saved to {self.markers_file.name} ({self.recording.csv.name} is unchanged)",
                             8000)
        except EmolensError as error:
            self.show_status(f"{what}, NOT saved: {error}")
        self._refresh_markers()

    def _refresh_markers(self) -> None:
        self.marker_list.blockSignals(True)
        self.marker_list.clear()
        for time_s, text in self.markers[["time_s", "text"]].itertuples(index=False):
            item = QListWidgetItem(f"{clock(time_s)}  {text}")
            item.setData(_TIME_ROLE, float(time_s))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.marker_list.addItem(item)
        self.marker_list.blockSignals(False)
        self.chart.set_markers(list(self.markers[["time_s", "text"]].itertuples(index=False, name=None)))

    def _fill_moments(self) -> None:
        if self.recording.timeline.faces.empty:
            return
        moments = strongest_moments(self.recording.timeline, top=2)
        moments = moments[moments["probability"] >= MOMENT_MIN].sort_values("time_s")
        for row in moments.itertuples(index=False):
            item = QListWidgetItem(f"{clock(row.time_s)}  {row.emotion} {row.probability:.0%}  #{row.face}")
            item.setData(_TIME_ROLE, float(row.time_s))
            self.moment_list.addItem(item)

    def _on_face_chosen(self, index: int) -> None:
        face_id = self.face_box.itemData(index)
        self.chart.select(face_id)
        self.video_view.set_selected(face_id)

    # -- export -----------------------------------------------------------------------------

    def set_in(self) -> None:
        self.in_s = self.position_s
        self.chart.set_span((self.in_s, self.out_s if self.out_s is not None else self.in_s))
        self.show_status(f"in point {clock(self.in_s)}", 5000)

    def set_out(self) -> None:
        self.out_s = self.position_s
        self.chart.set_span((self.in_s if self.in_s is not None else self.out_s, self.out_s))
        self.show_status(f"out point {clock(self.out_s)}", 5000)

    def export_clip(self) -> Path | None:
        """The in-out span as an annotated ``.mp4`` beside the timeline; returns its path (None: the
        status bar says why)."""
        if self.in_s is None or self.out_s is None:
            self.show_status("set the in point (I) and the out point (O) first", 8000)
            return None
        start_s, end_s = sorted((self.in_s, self.out_s))
        return self._export(lambda: export_clip(self.recording, start_s, end_s,
                                                moment_name(self.recording, start_s, end_s, ".mp4")))

    def export_still(self) -> Path | None:
        """The frame on screen, annotated, as a ``.png`` beside the timeline; returns its path."""
        t_s = self.position_s
        return self._export(lambda: export_still(self.recording, t_s, moment_name(self.recording, t_s, None, ".png")))

    def _export(self, write) -> Path | None:
        self.pause()
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            path = write()
        except EmolensError as error:
            self.show_status(f"not exported: {error}")
            return None
        finally:
            self.unsetCursor()
        self.show_status(f"exported {path}", 15000)
        return path

    # -- other sessions ---------------------------------------------------------------------

    def choose_recording(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a recording to replay", str(self.recording.csv.parent),
                                              "Timelines (*.csv)")
        if path:
            self.open_recording(Path(path))

    def choose_study(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a study (the folder holding study.json)",
                                                  str(self.recording.csv.parent))
        if folder:
            self.open_study(Path(folder))

    def open_study(self, folder: Path) -> StudySessionsDialog | None:
        """Show the list of the study's sessions (the chosen one opens in a new window); None: the status bar
        says why not."""
        try:
            entries = study_sessions(folder)
        except EmolensError as error:
            self.show_status(f"no study: {error}", 15000)
            return None
        self.study_dialog = StudySessionsDialog(folder, entries, self)
        self.study_dialog.accepted.connect(lambda dialog=self.study_dialog: self.open_recording(dialog.chosen))
        self.study_dialog.open()
        return self.study_dialog

    def open_recording(self, csv: Path) -> ReplayWindow | None:
        """Replay ``csv`` in a new window (returned), or say why not in the status bar (None)."""
        try:
            window = ReplayWindow(load_recording(csv))
        except EmolensError as error:
            self.show_status(f"no replay: {error}", 15000)
            return None
        self.others.append(window)
        window.show()
        return window

    # -- window -----------------------------------------------------------------------------

    def snapshot(self) -> QPixmap:
        return self.grab()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.pause()
        if self.decoder is not None:
            self.decoder.stop()
        if self.stimulus_pane is not None:
            self.stimulus_pane.stop()
        for window in self.others:
            window.close()
        super().closeEvent(event)
