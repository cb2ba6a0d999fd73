"""The live picture: the newest frame fitted to the widget, every face boxed with its ID, top
emotion and seven score bars.

Everything is painted with QPainter in widget pixels, so the overlay follows the window: label
text is a fraction of the picture's height (1.7 times larger in presenter mode) and the bars
beside a face are as tall as its box allows, never below a legible minimum, so one face or
eight stay readable. Mirroring flips the picture, not the text. Scores shown are
``faces.smoothed`` (the tracker's display smoothing; raw when tau is 0).

Example::

    view = VideoView()
    view.set_labels(analyzer.labels)
    view.show_frame(result.frame.image, result.faces, captured_s=time.perf_counter())
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QTransform
from PySide6.QtWidgets import QWidget

from emolens.gui.behaviour_overlay import BehaviourOverlay
from emolens.gui.drawing import emotion_colors, face_color, names_width, paint_score_bars, pixel_font
from emolens.layout import BAR_LENGTH_ROWS, Rect, place_bars
from emolens.types import Faces

PRESENTER_SCALE = 1.7
_BACKGROUND = QColor(18, 18, 20)
_PANEL = QColor(0, 0, 0, 160)


class VideoView(QWidget):
    """Paints one frame and its faces; call ``show_frame`` for each new one.

    Signals:
        face_clicked(int): the ID of the face the user clicked.
        frame_painted(float): the ``captured_s`` of the frame just painted (display latency).
    """

    face_clicked = Signal(int)
    frame_painted = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # a click on the video takes the keys back from a field
        self._image: QImage | None = None
        self._pixels: np.ndarray | None = None  # the buffer behind _image, kept alive
        self._faces = Faces.empty()
        self._captured_s = 0.0
        self._labels: tuple[str, ...] = ()
        self._colors: list[QColor] = []
        self._mirror = False
        self._presenter = False
        self._recording = False
        self._selected: int | None = None
        self.bar_panels: list[QRectF] = []  # where each face's bars were last painted, in face order
        self.behaviour_overlay = BehaviourOverlay()  # mesh, head axes, "looking away" (behaviour on)

    @property
    def faces(self) -> Faces:
        """The faces shown now (with ``face_id`` and ``smoothed``)."""
        return self._faces

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self._labels = labels
        self._colors = emotion_colors(labels)
        self.update()

    def set_mirror(self, mirror: bool) -> None:
        self._mirror = mirror
        self.update()

    def set_presenter(self, presenter: bool) -> None:
        self._presenter = presenter
        self.update()

    def set_recording(self, recording: bool) -> None:
        self._recording = recording
        self.update()

    def set_selected(self, face_id: int | None) -> None:
        self._selected = face_id
        self.update()

    def show_frame(self, image: np.ndarray, faces: Faces, captured_s: float) -> None:
        """Show a BGR ``uint8 (H, W, 3)`` image with its tracked faces; painted on the next paint event."""
        self._pixels = np.ascontiguousarray(image)
        height, width = self._pixels.shape[:2]
        self._image = QImage(self._pixels.data, width, height, self._pixels.strides[0], QImage.Format.Format_BGR888)
        self._faces = faces
        self._captured_s = captured_s
        self.update()

    def clear(self) -> None:
        self._image = self._pixels = None
        self._faces = Faces.empty()
        self.update()

    def picture_rect(self) -> QRectF:
        """Where the picture sits in the widget: as large as fits, aspect ratio kept, centred."""
        if self._image is None:
            return QRectF(self.rect())
        scale = min(self.width() / self._image.width(), self.height() / self._image.height())
        width, height = self._image.width() * scale, self._image.height() * scale
        return QRectF((self.width() - width) / 2, (self.height() - height) / 2, width, height)

    def face_rects(self) -> list[QRectF]:
        """Each face's box in widget pixels (mirrored with the picture)."""
        if self._image is None:
            return []
        target = self.picture_rect()
        scale = target.width() / self._image.width()
        rects = []
        for x0, y0, x1, y1 in self._faces.xyxy:
            left, right = (target.right() - x1 * scale, target.right() - x0 * scale) if self._mirror else (
                target.left() + x0 * scale, target.left() + x1 * scale)
            rects.append(QRectF(QPointF(left, target.top() + y0 * scale), QPointF(right, target.top() + y1 * scale)))
        return rects

    def label_pixels(self, box_width: float | None = None) -> float:
        """Height of label text: a share of the picture's height, less for a narrow face box,
        never under 11 px; times ``PRESENTER_SCALE`` in presenter mode."""
        size = self.picture_rect().height() / 26
        if box_width is not None:
            size = min(size, box_width / 4.5)
        return float(np.clip(size, 11, 28)) * (PRESENTER_SCALE if self._presenter else 1.0)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), _BACKGROUND)
        if self._image is not None:
            target = self.picture_rect()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            if self._mirror:
                painter.setTransform(QTransform(-1, 0, 0, 1, target.left() + target.right(), 0))
            painter.drawImage(target, self._image)
            painter.resetTransform()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if len(self._faces) and self._faces.smoothed is not None and self._labels:
                self._paint_faces(painter, target)
                self.behaviour_overlay.paint(painter, self._faces, target, self._image.width(), self._mirror,
                                             self.face_rects(), self.label_pixels())
        if self._recording:
            self._paint_recording(painter)
        painter.end()
        if self._image is not None:
            self.frame_painted.emit(self._captured_s)

    def _paint_faces(self, painter: QPainter, target: QRectF) -> None:
        min_row_px = 12.0 * (PRESENTER_SCALE if self._presenter else 1.0)
        boxes = self.face_rects()
        placed: list[QRectF] = []  # tags and bar panels painted so far, which later bars avoid
        self.bar_panels = []
        for box, face_id, scores in zip(boxes, self._faces.face_id, self._faces.smoothed):
            label_px = self.label_pixels(box.width())
            color = face_color(int(face_id))
            width = max(2.0, label_px / 7) * (1.8 if int(face_id) == self._selected else 1.0)
            painter.setPen(QPen(color, width))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(box)
            top = int(np.argmax(scores))
            painter.setFont(pixel_font(label_px, bold=True))
            text = f"#{int(face_id)} {self._labels[top]} {scores[top]:.0%}"
            placed.append(self._paint_label(painter, box, target, text, color))
            row_px = float(np.clip(box.height() / len(scores), min_row_px, label_px))
            avoid = [other for other in boxes if other is not box] + placed
            panel = self._paint_bars(painter, box, target, scores, row_px, avoid)
            placed.append(panel)
            self.bar_panels.append(panel)

    def _paint_label(self, painter: QPainter, box: QRectF, target: QRectF, text: str, color: QColor) -> QRectF:
        """``text`` on a tag of the face's colour above the box (inside it at the picture's top edge); returns the tag."""
        metrics = QFontMetricsF(painter.font())
        pad = metrics.height() * 0.2
        width, height = metrics.horizontalAdvance(text) + 2 * pad, metrics.height() + pad
        top = box.top() - height if box.top() - height >= target.top() else box.top()
        left = min(max(box.left(), target.left()), target.right() - width)
        tag = QRectF(left, top, width, height)
        painter.fillRect(tag, color)
        painter.setPen(QColor(20, 20, 20) if color.lightness() > 140 else QColor(250, 250, 250))
        painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
        return tag

    def _paint_bars(self, painter: QPainter, box: QRectF, target: QRectF, scores: np.ndarray, row_px: float,
                    avoid: list[QRectF]) -> QRectF:
        """Seven compact bars on a dark panel where ``emolens.layout`` places them; returns the panel."""
        names = [label[:3] for label in self._labels]
        place, row_px = place_bars(_rect(box), _rect(target), row_px, len(scores),
                                   lambda rows_px: _bars_size(names, rows_px), [_rect(other) for other in avoid])
        panel = QRectF(QPointF(place[0], place[1]), QPointF(place[2], place[3]))
        painter.setFont(pixel_font(row_px * 0.78))
        pad = row_px * 0.25
        painter.fillRect(panel, _PANEL)
        paint_score_bars(painter, panel.adjusted(pad, pad, -pad, -pad), scores, names, self._colors,
                         QColor(235, 235, 235))
        return panel

    def _paint_recording(self, painter: QPainter) -> None:
        size = self.label_pixels()
        painter.setFont(pixel_font(size, bold=True))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(229, 57, 53))
        painter.drawEllipse(QPointF(size, size), size * 0.4, size * 0.4)
        painter.setPen(QColor(229, 57, 53))
        painter.drawText(QRectF(size * 1.6, size * 0.4, size * 4, size * 1.2),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, "REC")

    def mousePressEvent(self, event: QMouseEvent) -> None:
        for box, face_id in zip(self.face_rects(), self._faces.face_id if self._faces.face_id is not None else []):
            if box.contains(event.position()):
                self.face_clicked.emit(int(face_id))
                return
        super().mousePressEvent(event)


def _bars_size(names: list[str], row_px: float) -> tuple[float, float]:
    """A bar panel's size for rows of ``row_px`` pixels."""
    pad = row_px * 0.25
    return (names_width(names, pixel_font(row_px * 0.78)) + row_px * BAR_LENGTH_ROWS + 2 * pad,
            row_px * len(names) + 2 * pad)


def _rect(rect: QRectF) -> Rect:
    return rect.left(), rect.top(), rect.right(), rect.bottom()
