"""Presenter mode's panel (F11): the selected face's, or the group's, top emotions in letters large
enough to read from across a room.

Its text is a share of the video area's height (``TITLE_SHARE`` for the first line), so it grows
with the screen; it shows the numbers the boxes show (the smoothed scores of the same frame).

Example::

    panel = PresenterPanel()
    panel.set_labels(analyzer.labels)
    panel.show_faces(result.faces, selected=None)     # None: the mean over the faces in view
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from emolens.gui.drawing import pixel_font
from emolens.types import Faces

TITLE_SHARE = 1 / 12  # the first line's height, as a share of the video area's height
_SHOWN = 3


class PresenterPanel(QLabel):
    """The top three emotions of one face or of the group, in large type over the video."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._labels: tuple[str, ...] = ()
        self.setStyleSheet("QLabel { background: rgba(0, 0, 0, 185); color: #f5f5f5; border-radius: 12px; "
                           "padding: 10px 20px; }")
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def set_labels(self, labels: tuple[str, ...]) -> None:
        self._labels = labels

    def title_pixels(self) -> float:
        """Height of the first line's letters: a share of the video area's height, at least 24 px."""
        room = self.parentWidget().height() if self.parentWidget() is not None else self.window().height()
        return max(24.0, room * TITLE_SHARE)

    def show_faces(self, faces: Faces, selected: int | None) -> None:
        """Show face ``selected``'s scores, or the mean over ``faces`` (None, or that face is not in view)."""
        title = self.title_pixels()
        self.setFont(pixel_font(title, bold=True))
        rows = [] if faces.face_id is None else np.flatnonzero(faces.face_id == selected)
        if not len(faces) or not self._labels:
            self.setText("no face in view")
            return
        scores, who = ((faces.smoothed[rows[0]], f"#{selected}") if len(rows) else
                       (faces.smoothed.mean(axis=0), "all faces" if len(faces) > 1 else f"#{int(faces.face_id[0])}"))
        order = np.argsort(-scores)[:_SHOWN]
        top, rest = order[0], order[1:]
        smaller = f"font-size: {title * 0.6:.0f}px; font-weight: normal"
        self.setText(f"<span style='{smaller}'>{who}</span><br>{self._labels[top]} {scores[top]:.0%}<br>"
                     f"<span style='{smaller}'>" + " · ".join(f"{self._labels[i]} {scores[i]:.0%}" for i in rest)
                     + "</span>")
        self.adjustSize()
