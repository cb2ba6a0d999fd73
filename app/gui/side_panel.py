"""The side panel: the timeline chart with its face selector, per-face score bars, the smoothing
control and the recording controls (record, markers).

The panel only shows and asks: its signals go to the main window, which owns the worker.

Example::

    panel = SidePanel()
    panel.set_labels(labels)
    panel.marker_requested.connect(window.add_marker)
    panel.show_faces(result.frame.t_s, result.faces)  # every frame shown
    panel.refresh()                                   # a few times a second
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from emolens.gui.drawing import emotion_colors, face_color, paint_score_bars, pixel_font
from emolens.gui.settings import CHART_SPANS_S
from emolens.gui.timeline_chart import TimelineChart
from emolens.types import Faces

_MEAN = 0  # the selector's item data for "all faces"; face IDs start at 1
_ROW_PX = 15.0
_COLUMN_MIN_PX = 190.0


def smoothing_box() -> QDoubleSpinBox:
    """A spin box for the smoothing time constant: 0 to 10 s in tenths, 0 shown as "off (raw)"."""
    box = QDoubleSpinBox()
    box.setRange(0.0, 10.0)
    box.setSingleStep(0.1)
    box.setDecimals(1)
    box.setSuffix(" s")
    box.setSpecialValueText("off (raw)")
    box.setToolTip("Time constant of the score smoothing: longer is calmer but lags real changes")
    return box


class FaceScores(QWidget):
    """Score bars with percentages for every face in view, in as many columns as fit."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._labels: tuple[str, ...] = ()
        self._colors: list[QColor] = []
        self._faces = Faces.empty()
        self._selected: int | None = None

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self._labels = labels
        self._colors = emotion_colors(labels)
        self._resize_to_content()

    def set_selected(self, face_id: int | None) -> None:
        self._selected = face_id
        self.update()

    @property
    def faces(self) -> Faces:
        """The faces whose bars are shown."""
        return self._faces

    def show_faces(self, faces: Faces) -> None:
        self._faces = faces
        self._resize_to_content()
        self.update()

    def _columns(self) -> int:
        return max(1, int(self.width() // _COLUMN_MIN_PX))

    def _block_height(self) -> float:
        return _ROW_PX * (len(self._labels) + 1.6)

    def _resize_to_content(self) -> None:
        rows = -(-max(len(self._faces), 1) // self._columns())
        self.setMinimumHeight(int(rows * self._block_height()))

    def resizeEvent(self, event) -> None:
        self._resize_to_content()
        super().resizeEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(int(_COLUMN_MIN_PX), int(self._block_height() * 2))

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        text = self.palette().color(QPalette.ColorRole.Text)
        if not len(self._faces) or not self._labels:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no face in view")
            painter.end()
            return
        columns = self._columns()
        width = self.width() / columns
        title_font, bar_font = pixel_font(_ROW_PX * 0.85, bold=True), pixel_font(_ROW_PX * 0.8)
        order = sorted(range(len(self._faces)), key=lambda index: int(self._faces.face_id[index]))
        for slot, index in enumerate(order):
            face_id, scores = int(self._faces.face_id[index]), self._faces.smoothed[index]
            row, column = divmod(slot, columns)
            block = QRectF(column * width + 4, row * self._block_height() + 2, width - 8, self._block_height() - 4)
            if face_id == self._selected:
                highlight = QColor(self.palette().color(QPalette.ColorRole.Highlight))
                highlight.setAlpha(60)
                painter.fillRect(block, highlight)
            top = int(scores.argmax())
            painter.setFont(title_font)
            painter.setPen(face_color(face_id))
            title = QRectF(block.left(), block.top(), block.width(), _ROW_PX * 1.2)
            painter.drawText(title, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"#{face_id}  {self._labels[top]} {scores[top]:.0%}")
            painter.setFont(bar_font)
            bars = QRectF(block.left(), title.bottom(), block.width(), _ROW_PX * len(scores))
            paint_score_bars(painter, bars, scores, self._labels, self._colors, text, percent=True)
        painter.end()


class SidePanel(QWidget):
    """Chart, bars, smoothing and recording controls.

    Signals:
        selection_changed(object): a face ID, or None for the mean over all faces.
        tau_changed(float): the smoothing time constant in seconds (0 = raw).
        span_changed(float): the chart's widest span in seconds, 0 for the whole session.
        record_clicked(): start or stop recording.
        marker_requested(str): add a marker with this text.
    """

    selection_changed = Signal(object)
    tau_changed = Signal(float)
    span_changed = Signal(float)
    record_clicked = Signal()
    marker_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.selector = QComboBox()
        self.selector.addItem("mean of all faces", _MEAN)
        self.selector.currentIndexChanged.connect(self._on_selection)
        self.chart = TimelineChart()
        self.face_scores = FaceScores()
        scroll = QScrollArea()
        scroll.setWidget(self.face_scores)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.smoothing = smoothing_box()
        self.smoothing.valueChanged.connect(self.tau_changed)
        self.span = QComboBox()
        for span_s in CHART_SPANS_S:
            self.span.addItem(f"last {span_s / 60:.0f} min" if span_s else "whole session", span_s)
        self.span.setToolTip("The chart follows the session until it is longer than this")
        self.span.currentIndexChanged.connect(self._on_span)
        self.scores_caption = QLabel()
        self.scores_caption.setWordWrap(True)
        self.scores_caption.setToolTip("The same numbers as on the video. Recordings hold the raw scores, "
                                       "each frame's own: smoothing is for reading them live.")

        top = QFormLayout()
        top.addRow("Timeline of", self.selector)
        top.addRow("Span", self.span)
        top.addRow("Smoothing", self.smoothing)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.chart, stretch=3)
        layout.addWidget(self.scores_caption)
        layout.addWidget(scroll, stretch=2)
        layout.addWidget(self._recording_box())

    def _recording_box(self) -> QGroupBox:
        box = QGroupBox("Recording")
        self.record_button = QPushButton("● Record")
        self.record_button.clicked.connect(self.record_clicked)
        self.recording_label = QLabel("not recording")
        self.recording_label.setWordWrap(True)
        self.recording_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.marker_edit = QLineEdit()
        self.marker_edit.setPlaceholderText("marker text, Enter to add")
        self.marker_edit.setMaxLength(80)
        self.marker_edit.returnPressed.connect(self.add_typed_marker)
        self.marker_button = QPushButton("Add marker")
        self.marker_button.clicked.connect(self.add_typed_marker)
        self.presets_label = QLabel()
        self.presets_label.setWordWrap(True)
        self.presets_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        markers = QHBoxLayout()
        markers.addWidget(self.marker_edit, stretch=1)
        markers.addWidget(self.marker_button)
        layout = QVBoxLayout(box)
        layout.addWidget(self.record_button)
        layout.addWidget(self.recording_label)
        layout.addLayout(markers)
        layout.addWidget(self.presets_label)
        self.set_recording(False)
        return box

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self.chart.set_labels(labels)
        self.face_scores.set_labels(labels)

    def set_tau(self, tau_s: float) -> None:
        """Show ``tau_s`` without emitting ``tau_changed``, and say what the scores are."""
        blocked = self.smoothing.blockSignals(True)
        self.smoothing.setValue(tau_s)
        self.smoothing.blockSignals(blocked)
        self.scores_caption.setText(f"Scores smoothed over {tau_s:.1f} s, as on the video (raw in recordings)"
                                    if tau_s else "Raw scores, as on the video and in recordings")

    def set_span(self, span_s: float) -> None:
        """Show ``span_s`` (one of ``CHART_SPANS_S``, 0: the whole session) without emitting ``span_changed``."""
        blocked = self.span.blockSignals(True)
        self.span.setCurrentIndex(max(self.span.findData(span_s), 0))
        self.span.blockSignals(blocked)
        self.chart.set_span(self.span.currentData() or None)

    def set_presets(self, presets: Sequence[str]) -> None:
        self.presets_label.setText("keys: " + "  ".join(f"<b>{key}</b> {text}" for key, text in enumerate(presets, 1)))

    def set_recording(self, recording: bool) -> None:
        self.record_button.setText("■ Stop recording" if recording else "● Record")
        for widget in (self.marker_edit, self.marker_button):
            widget.setEnabled(recording)

    def select(self, face_id: int | None) -> None:
        data = _MEAN if face_id is None else face_id
        if self.selector.findData(data) < 0:
            self.selector.addItem(f"face #{face_id}", face_id)
        self.selector.setCurrentIndex(self.selector.findData(data))

    def show_faces(self, t_s: float, faces: Faces) -> None:
        """A frame's faces: into the chart, and their bars at once, so they show the numbers the
        video shows for the same frame."""
        self.chart.add(t_s, faces)
        self.face_scores.show_faces(faces)

    def refresh(self) -> None:
        """Repaint the chart, and list the faces seen in the chart's window in the selector."""
        current = self.selector.currentData()
        wanted = sorted(set(self.chart.face_ids()) | ({current} - {_MEAN}))
        listed = [self.selector.itemData(index) for index in range(1, self.selector.count())]
        if wanted != listed:
            blocked = self.selector.blockSignals(True)
            while self.selector.count() > 1:
                self.selector.removeItem(1)
            for face_id in wanted:
                self.selector.addItem(f"face #{face_id}", face_id)
            self.selector.setCurrentIndex(self.selector.findData(current))
            self.selector.blockSignals(blocked)
        self.chart.update()

    def _on_span(self) -> None:
        self.chart.set_span(self.span.currentData() or None)
        self.span_changed.emit(self.span.currentData())

    def _on_selection(self) -> None:
        data = self.selector.currentData()
        face_id = None if data == _MEAN else int(data)
        self.chart.select(face_id)
        self.face_scores.set_selected(face_id)
        self.selection_changed.emit(face_id)

    def add_typed_marker(self) -> None:
        """Send the marker field's text, if any, and clear the field (an empty field sends nothing)."""
        text = self.marker_edit.text().strip()
        if text:
            self.marker_requested.emit(text)
            self.marker_edit.clear()
