"""A scrolling chart of emotion scores, for one face or the mean over all faces.

Its span follows the session (a 20 s session fills the chart) until the session is longer
than ``window_s`` (60 s by default; ``set_span``: 5 or 15 min, or None for the whole session).
``add(t_s, faces)`` stores each frame's smoothed scores per face ID and their mean over the
faces in view; points older than the span, and at least ``KEEP_S``, before the newest are dropped,
so memory stays bounded however long the session runs (unless the whole session is shown), and a
span widened later shows at once what it covers. A jump of more than ``_GAP_S`` between two points (the
face left, frames were dropped) breaks the line instead of bridging it. Markers are dashed
vertical lines with their text. Times are the source's ``t_s`` (media time for files, wall clock
for cameras); a time going backwards means a new source, and the chart starts over.

Example::

    chart = TimelineChart()
    chart.set_labels(analyzer.labels)
    chart.add(result.frame.t_s, result.faces)
    chart.select(2)              # face #2; None = the mean over all faces
"""

from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from emolens.gui.drawing import emotion_colors, pixel_font
from emolens.types import Faces

_GAP_S = 1.0
KEEP_S = 900.0  # points kept whatever the span, so widening it up to 15 min shows them at once
_MIN_SHOWN_S = 1.0
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_MAX_TICKS = 6
_MARKER = QColor(255, 213, 79)


class TimelineChart(QWidget):
    """The session's scores, its last ``window_s`` seconds once it is longer (None: all of it);
    ``face_id`` None in ``select``/``series`` is the mean."""

    def __init__(self, window_s: float | None = 60.0, parent: QWidget | None = None):
        super().__init__(parent)
        self.window_s = window_s
        self._first_s: float | None = None
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._labels: tuple[str, ...] = ()
        self._colors: list[QColor] = []
        self._points: dict[int | None, deque[tuple[float, np.ndarray]]] = {}
        self._markers: deque[tuple[float, str]] = deque()
        self._latest_s: float | None = None
        self._selected: int | None = None
        self.marker_labels: list[tuple[str, QRectF]] = []  # the marker texts last painted, and where

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self._labels = labels
        self._colors = emotion_colors(labels)
        self.update()

    def add(self, t_s: float, faces: Faces) -> None:
        """Store one frame's smoothed scores (call ``update()`` to repaint; the window does it a few times a second)."""
        if self._latest_s is not None and t_s < self._latest_s:
            self.clear()
        self._latest_s = t_s
        self._first_s = t_s if self._first_s is None else self._first_s
        if len(faces):
            for face_id, scores in zip(faces.face_id, faces.smoothed):
                self._points.setdefault(int(face_id), deque()).append((t_s, scores))
            self._points.setdefault(None, deque()).append((t_s, faces.smoothed.mean(axis=0)))
        if self.window_s is not None:
            self._forget_before(t_s - max(self.window_s, KEEP_S))

    def set_span(self, window_s: float | None) -> None:
        """Show the last ``window_s`` seconds once the session is longer (None: the whole session)."""
        self.window_s = window_s
        self.update()

    def shown_span_s(self) -> float:
        """The seconds the chart's width covers now: the session's length, up to ``window_s``."""
        length = self._latest_s - self._first_s if self._latest_s is not None else 0.0
        span = length if self.window_s is None else min(length, self.window_s)
        return max(span, _MIN_SHOWN_S)

    def add_marker(self, text: str) -> None:
        """A marker at the newest time."""
        if self._latest_s is not None:
            self._markers.append((self._latest_s, text))
            self.update()

    def select(self, face_id: int | None) -> None:
        self._selected = face_id
        self.update()

    def face_ids(self) -> list[int]:
        """IDs with points in the window, ascending."""
        return sorted(key for key in self._points if key is not None)

    def series(self, face_id: int | None) -> tuple[np.ndarray, np.ndarray]:
        """``float (n,)`` times and ``float32 (n, K)`` scores of one face (None: the mean)."""
        points = self._points.get(face_id)
        if not points:
            return np.zeros(0), np.zeros((0, len(self._labels)), np.float32)
        return np.array([t for t, _ in points]), np.stack([scores for _, scores in points])

    def markers(self) -> list[tuple[float, str]]:
        return list(self._markers)

    def clear(self) -> None:
        self._points.clear()
        self._markers.clear()
        self._latest_s = self._first_s = None
        self.update()

    def _forget_before(self, oldest_s: float) -> None:
        for key in list(self._points):
            points = self._points[key]
            while points and points[0][0] < oldest_s:
                points.popleft()
            if not points:
                del self._points[key]
        while self._markers and self._markers[0][0] < oldest_s:
            self._markers.popleft()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        font = pixel_font(11)
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        legend_bottom = self._paint_legend(painter, metrics)
        plot = QRectF(metrics.horizontalAdvance("100%") + 8, legend_bottom + 6, 0, 0)
        plot.setRight(self.width() - metrics.horizontalAdvance("now") / 2 - 4)
        plot.setBottom(self.height() - metrics.height() - 6)
        self._paint_axes(painter, plot, metrics, palette.color(QPalette.ColorRole.Text))
        times, scores = self.series(self._selected)
        if len(times) and self._latest_s is not None:
            self._paint_lines(painter, plot, times, scores)
        else:
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter,
                             f"no face in the last {_duration(self.shown_span_s())}")
        self._paint_markers(painter, plot, metrics)
        painter.end()

    def _paint_legend(self, painter: QPainter, metrics: QFontMetricsF) -> float:
        """The labels with their colours, wrapped into rows; returns the legend's bottom edge."""
        x, y, size = 8.0, 4.0, metrics.height()
        painter.setPen(self.palette().color(QPalette.ColorRole.Text))
        for label, color in zip(self._labels, self._colors):
            width = size * 0.8 + 4 + metrics.horizontalAdvance(label) + 10
            if x + width > self.width() - 4 and x > 8:
                x, y = 8.0, y + size + 2
            painter.fillRect(QRectF(x, y + size * 0.15, size * 0.7, size * 0.7), color)
            painter.drawText(QPointF(x + size * 0.8 + 4, y + metrics.ascent()), label)
            x += width
        return y + size

    def _paint_axes(self, painter: QPainter, plot: QRectF, metrics: QFontMetricsF, text: QColor) -> None:
        grid = QColor(text)
        grid.setAlpha(40)
        for share in (0.0, 0.25, 0.5, 0.75, 1.0):
            y = plot.bottom() - share * plot.height()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            if share in (0.0, 0.5, 1.0):
                painter.setPen(text)
                painter.drawText(QRectF(0, y - metrics.height() / 2, plot.left() - 4, metrics.height()),
                                 Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{share:.0%}")
        span = self.shown_span_s()
        step = next((step for step in _TICK_STEPS_S if span / step <= _MAX_TICKS), _TICK_STEPS_S[-1])
        for seconds_ago in range(0, int(span) + 1, step):
            x = plot.right() - seconds_ago / span * plot.width()
            painter.setPen(QPen(grid, 1))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            painter.setPen(text)
            painter.drawText(QRectF(x - 30, plot.bottom() + 3, 60, metrics.height()), Qt.AlignmentFlag.AlignHCenter,
                             "now" if seconds_ago == 0 else f"-{_duration(seconds_ago)}")

    def _x(self, plot: QRectF, t_s: np.ndarray | float):
        return plot.right() - (self._latest_s - t_s) / self.shown_span_s() * plot.width()

    def _paint_lines(self, painter: QPainter, plot: QRectF, times: np.ndarray, scores: np.ndarray) -> None:
        shown = times >= self._latest_s - self.shown_span_s()
        stride = max(1, int(shown.sum() // (2 * max(plot.width(), 1.0))))  # a point or two per pixel is enough
        times, scores = times[shown][::stride], scores[shown][::stride]
        xs = self._x(plot, times)
        ys = plot.bottom() - np.clip(scores, 0, 1) * plot.height()
        breaks = np.flatnonzero(np.diff(times) > _GAP_S) + 1
        for column, color in enumerate(self._colors):
            painter.setPen(QPen(color, 1.6))
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(times)]):
                painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in zip(xs[start:stop], ys[start:stop, column])]))

    def _paint_markers(self, painter: QPainter, plot: QRectF, metrics: QFontMetricsF) -> None:
        shown = [(t_s, text) for t_s, text in self._markers if t_s >= self._latest_s - self.shown_span_s()]
        xs = [float(self._x(plot, t_s)) for t_s, _ in shown]
        self.marker_labels = paint_markers(painter, self, plot, metrics, xs, [text for _, text in shown])


def paint_markers(painter: QPainter, widget: QWidget, plot: QRectF, metrics: QFontMetricsF, xs: list[float],
                  texts: list[str]) -> list[tuple[str, QRectF]]:
    """Dashed marker lines at ``xs`` and their texts in rows that never overlap (the newest first; see
    ``place_labels``), as the live chart and the replay chart draw them; returns the texts shown and where."""
    places = place_labels(xs, [metrics.horizontalAdvance(text) + 4 for text in texts], metrics.height(), plot)
    background = QColor(widget.palette().color(QPalette.ColorRole.Base))
    background.setAlpha(200)
    shown = []
    for x, text, place in zip(xs, texts, places):
        painter.setPen(QPen(_MARKER, 1.2, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        if place is not None:
            painter.fillRect(place, background)
            painter.setPen(_MARKER)
            painter.drawText(place, Qt.AlignmentFlag.AlignCenter, text)
            shown.append((text, place))
    return shown


def _duration(seconds: float) -> str:
    """``45 s``, ``5 min``, ``1 min 30 s``."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{rest} s" if not minutes else f"{minutes} min" + (f" {rest} s" if rest else "")


def place_labels(xs: list[float], widths: list[float], height: float, plot: QRectF) -> list[QRectF | None]:
    """Where each marker's text goes: beside its line (right of it, or left at the plot's right edge),
    in the first row from the top where it overlaps no text placed before; None when every row is
    taken there (the line is still drawn). Newest markers (last in ``xs``) are placed first."""
    rows = max(1, int(plot.height() // height))
    taken: list[list[QRectF]] = [[] for _ in range(rows)]
    places: list[QRectF | None] = [None] * len(xs)
    for index in reversed(range(len(xs))):
        x, width = xs[index], widths[index]
        left = x + 2 if x + 2 + width <= plot.right() else x - 2 - width
        for row in range(rows):
            place = QRectF(left, plot.top() + row * height, width, height)
            if not any(place.adjusted(-2, 0, 2, 0).intersects(other) for other in taken[row]):
                taken[row].append(place)
                places[index] = place
                break
    return places
