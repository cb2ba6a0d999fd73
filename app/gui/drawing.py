"""Colours and score bars shared by the video overlay, the side panel and the timeline chart.

Each emotion keeps one colour everywhere, the report included (``emolens.palette``);
each face ID gets a colour from a ten-colour qualitative palette.

Example::

    painter.setFont(font)
    paint_score_bars(painter, QRectF(0, 0, 160, 84), faces.smoothed[0], labels)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter

from emolens.palette import emotion_hex, face_hex

BAR_TRACK = QColor(255, 255, 255, 45)


def emotion_colors(labels: Sequence[str]) -> list[QColor]:
    """One colour per label, in the labels' order."""
    return [QColor(color) for color in emotion_hex(labels)]


def face_color(face_id: int) -> QColor:
    return QColor(face_hex(face_id))


def pixel_font(pixels: float, bold: bool = False) -> QFont:
    """The application font at a height in pixels (sizes follow the widget, not the screen's DPI)."""
    font = QFont()
    font.setPixelSize(max(round(pixels), 1))
    font.setBold(bold)
    return font


def names_width(names: Sequence[str], font: QFont) -> float:
    """Width of the widest name in ``font``, plus a small gap."""
    metrics = QFontMetricsF(font)
    return max(metrics.horizontalAdvance(name) for name in names) + metrics.averageCharWidth() * 0.6


def paint_score_bars(painter: QPainter, rect: QRectF, scores: np.ndarray, names: Sequence[str],
                     colors: Sequence[QColor], text: QColor, percent: bool = False) -> None:
    """One row per score in ``rect``: its name, a bar as long as the score, and optionally ``42%``.

    Uses the painter's current font; ``scores`` are in [0, 1], in the order of ``names``.
    """
    font = painter.font()
    name_w = names_width(names, font)
    percent_w = QFontMetricsF(font).horizontalAdvance(" 100%") if percent else 0.0
    bar_w = max(rect.width() - name_w - percent_w, 1.0)
    row_h = rect.height() / len(scores)
    painter.setPen(Qt.PenStyle.NoPen)
    for index, score in enumerate(scores):
        top = rect.top() + index * row_h
        track = QRectF(rect.left() + name_w, top + row_h * 0.18, bar_w, row_h * 0.64)
        painter.fillRect(track, BAR_TRACK)
        painter.fillRect(QRectF(track.left(), track.top(), bar_w * float(np.clip(score, 0, 1)), track.height()),
                         colors[index])
    painter.setPen(text)
    for index, (name, score) in enumerate(zip(names, scores)):
        row = QRectF(rect.left(), rect.top() + index * row_h, rect.width(), row_h)
        painter.drawText(row, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        if percent:
            painter.drawText(row, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{score:.0%}")
