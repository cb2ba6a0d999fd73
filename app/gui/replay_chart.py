"""The whole session's emotion lines with a playhead: click or drag to seek.

The curves are the mean over the faces of each frame (or one face's, ``select``), averaged into one
point per pixel column when the chart is laid out, so a one-hour session of 100,000 rows paints as
quickly as a minute (the binning is cached until the size, the data or the face changes, and the
picture of everything but the playhead until anything on it changes, so playing repaints cheaply). Columns
without a frame for more than a second (or two frame intervals) break the line. Markers are dashed
lines with their texts (the live chart's ``place_labels``), the in-out span of an export is shaded,
and the playhead is a white line.

Example::

    chart = ReplayChart()
    chart.set_session(recording.timeline.faces, recording.labels, start_s=0.0, end_s=65.0)
    chart.seek_requested.connect(window.seek_time)
    chart.set_position(12.0)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from emolens.gui.drawing import emotion_colors, pixel_font
from emolens.gui.timeline_chart import paint_markers
from emolens.replay.recording import clock

_GAP_S = 1.0  # a longer time without a face breaks the line (as in the live chart)
_MARKER = QColor(255, 213, 79)
_SPAN = QColor(78, 121, 167, 70)
_PLAYHEAD = QColor(250, 250, 250)


class ReplayChart(QWidget):
    """The session's curves from ``start_s`` to ``end_s``; emits ``seek_requested(t_s)`` on click and drag."""

    seek_requested = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._faces = pd.DataFrame()
        self._labels: tuple[str, ...] = ()
        self._colors: list[QColor] = []
        self._start_s, self._end_s = 0.0, 1.0
        self._selected: int | None = None
        self._position_s = 0.0
        self._span: tuple[float, float] | None = None
        self._gap_s = _GAP_S
        self._markers: list[tuple[float, str]] = []
        self._cache: tuple[tuple, list[list[QPolygonF]]] | None = None
        self._layer: QPixmap | None = None  # everything but the playhead, painted again only when it changes
        self.marker_labels: list[tuple[str, QRectF]] = []

    def set_session(self, faces: pd.DataFrame, labels: tuple[str, ...], start_s: float, end_s: float) -> None:
        """The timeline's face rows (``time_s``, ``face_id``, one column per label) and the span to show."""
        self._faces, self._labels = faces, labels
        times = np.unique(faces["time_s"].to_numpy())
        self._gap_s = max(_GAP_S, 2 * float(np.median(np.diff(times)))) if len(times) > 1 else _GAP_S
        self._colors = emotion_colors(labels)
        self._start_s, self._end_s = start_s, max(end_s, start_s + 1e-3)
        self._cache = self._layer = None
        self.update()

    def select(self, face_id: int | None) -> None:
        """One face's curves, or the mean over the faces (None)."""
        self._selected = face_id
        self._cache = self._layer = None
        self.update()

    def set_position(self, t_s: float) -> None:
        self._position_s = t_s
        self.update()

    def set_markers(self, markers: list[tuple[float, str]]) -> None:
        self._markers = list(markers)
        self._layer = None
        self.update()

    def markers_shown(self) -> list[tuple[float, str]]:
        return list(self._markers)

    def set_span(self, span: tuple[float, float] | None) -> None:
        """The in and out points to shade (None: no span)."""
        self._span = span
        self._layer = None
        self.update()

    def plot_rect(self) -> QRectF:
        metrics = QFontMetricsF(pixel_font(11))
        return QRectF(QPointF(metrics.horizontalAdvance("100%") + 8, metrics.height() + 8),
                      QPointF(self.width() - 10, self.height() - metrics.height() - 6))

    def x_of(self, t_s: float) -> float:
        plot = self.plot_rect()
        return plot.left() + (t_s - self._start_s) / (self._end_s - self._start_s) * plot.width()

    def time_at(self, x: float) -> float:
        plot = self.plot_rect()
        share = float(np.clip((x - plot.left()) / max(plot.width(), 1.0), 0.0, 1.0))
        return self._start_s + share * (self._end_s - self._start_s)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.seek_requested.emit(self.time_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.seek_requested.emit(self.time_at(event.position().x()))

    def polylines(self) -> list[list[QPolygonF]]:
        """Per label, the lines to paint (one per run of pixel columns holding frames), cached."""
        plot = self.plot_rect()
        key = (int(plot.width()), plot.left(), plot.top(), plot.height(), self._selected)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._bin(plot))
        return self._cache[1]

    def _bin(self, plot: QRectF) -> list[list[QPolygonF]]:
        columns = max(int(plot.width()), 1)
        faces = self._faces if self._selected is None else self._faces[self._faces["face_id"] == self._selected]
        if not len(faces) or not self._labels:
            return [[] for _ in self._labels]
        share = (faces["time_s"].to_numpy() - self._start_s) / (self._end_s - self._start_s)
        column = np.clip((share * columns).astype(np.int64), 0, columns - 1)
        counts = np.bincount(column, minlength=columns)
        held = counts > 0
        xs = plot.left() + (np.arange(columns) + 0.5)[held]
        gap_columns = max(1.0, self._gap_s / (self._end_s - self._start_s) * columns)
        runs = np.split(np.arange(int(held.sum())), np.flatnonzero(np.diff(np.flatnonzero(held)) > gap_columns) + 1)
        lines = []
        for label in self._labels:
            sums = np.bincount(column, weights=faces[label].to_numpy(np.float64), minlength=columns)
            means = sums[held] / counts[held]
            ys = plot.bottom() - np.clip(means, 0, 1) * plot.height()
            lines.append([QPolygonF([QPointF(x, y) for x, y in zip(xs[run], ys[run])]) for run in runs if len(run)])
        return lines

    def paintEvent(self, event: QPaintEvent) -> None:
        """The cached picture of the curves, then the playhead over it."""
        ratio = self.devicePixelRatioF()
        if self._layer is None or self._layer.size() != self.size() * ratio:
            self._layer = QPixmap(self.size() * ratio)
            self._layer.setDevicePixelRatio(ratio)
            self._paint_layer(self._layer)
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._layer)
        plot = self.plot_rect()
        x = self.x_of(self._position_s)
        painter.setPen(QPen(_PLAYHEAD, 2))
        painter.drawLine(QPointF(x, plot.top() - 4), QPointF(x, plot.bottom() + 2))
        painter.end()

    def _paint_layer(self, layer: QPixmap) -> None:
        """Everything but the playhead: axes, span, curves, legend, markers."""
        painter = QPainter(layer)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        font = pixel_font(11)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        plot = self.plot_rect()
        self._paint_axes(painter, plot, metrics, palette.color(QPalette.ColorRole.Text))
        if self._span is not None:
            left, right = sorted(self.x_of(t_s) for t_s in self._span)
            painter.fillRect(QRectF(left, plot.top(), max(right - left, 2.0), plot.height()), _SPAN)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for lines, color in zip(self.polylines(), self._colors):
            painter.setPen(QPen(color, 1.0))
            for line in lines:
                painter.drawPolyline(line)
        self._paint_legend(painter, metrics)
        self._paint_markers(painter, plot, metrics)
        painter.end()

    def _paint_axes(self, painter: QPainter, plot: QRectF, metrics: QFontMetricsF, text: QColor) -> None:
        grid = QColor(text)
        grid.setAlpha(40)
        for share in (0.0, 0.5, 1.0):
            y = plot.bottom() - share * plot.height()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            painter.drawText(QRectF(0, y - metrics.height() / 2, plot.left() - 4, metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{share:.0%}")
        length = self._end_s - self._start_s
        step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if length / s <= 10), 3600)
        for tick in np.arange(np.ceil(self._start_s / step) * step, self._end_s + 1e-9, step):
            x = self.x_of(float(tick))
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(text)
            painter.drawText(QRectF(x - 30, plot.bottom() + 3, 60, metrics.height()), Qt.AlignmentFlag.AlignHCenter,
                             clock(float(tick)))

    def _paint_legend(self, painter: QPainter, metrics: QFontMetricsF) -> None:
        x, size = self.plot_rect().left(), metrics.height()
        for label, color in zip(self._labels, self._colors):
            painter.fillRect(QRectF(x, 4 + size * 0.15, size * 0.7, size * 0.7), color)
            painter.setPen(self.palette().color(QPalette.ColorRole.Text))
            painter.drawText(QPointF(x + size * 0.8 + 3, 4 + metrics.ascent()), label)
            x += size * 0.8 + 3 + metrics.horizontalAdvance(label) + 10

    def _paint_markers(self, painter: QPainter, plot: QRectF, metrics: QFontMetricsF) -> None:
        xs = [self.x_of(t_s) for t_s, _ in self._markers]
        self.marker_labels = paint_markers(painter, self, plot, metrics, xs, [text for _, text in self._markers])
