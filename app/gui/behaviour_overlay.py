"""Behaviour in the live window: landmark mesh, head-pose axes, "looking away" marks, AU bars.

* ``BehaviourOverlay`` paints on the ``VideoView`` after the faces: the 478 landmarks as dots
  (``mesh``), the head's right / up / forward axes from the nose tip (``axes``: red, green,
  blue; forward points where the face points) and, on any face whose head is outside the
  attention cone, an amber "looking away" tag at the bottom of its box.
* ``AuBars`` is a compact list of the action units of the selected face (or the first one).
* ``BehaviourControls`` adds the Behaviour menu (read behaviour, mesh, axes) and the AU dock to
  the main window, and applies ``--behaviour``, ``--mesh`` and ``--head-axes``.

Nothing is painted for faces without behaviour fields (behaviour off).

Example::

    controls = BehaviourControls(window)          # in MainWindow.__init__
    controls.apply_args(args)                     # --behaviour --mesh --head-axes
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFontMetricsF, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QDockWidget, QWidget

from emolens.behaviour.signals import AU_NAMES, AU_TABLE, rotation_from_pose
from emolens.gui.drawing import paint_score_bars, pixel_font
from emolens.options import AnalyzerOptions
from emolens.types import Faces

_AXIS_COLOURS = (QColor(229, 57, 53), QColor(67, 160, 71), QColor(30, 136, 229))  # right, up, forward
_MESH = QColor(120, 230, 255, 170)
_AWAY = QColor(255, 179, 0)
_NOSE_TIP = 1  # face-mesh index of the nose tip


class BehaviourOverlay:
    """What to paint over the faces; ``paint`` is called by the ``VideoView``."""

    def __init__(self) -> None:
        self.mesh = False
        self.axes = False

    def paint(self, painter: QPainter, faces: Faces, target: QRectF, image_width: int, mirror: bool,
              boxes: list[QRectF], label_px: float) -> None:
        """Paint on ``target`` (the picture in widget pixels; ``boxes`` the faces' boxes there)."""
        if faces.head_pose is None or not len(faces):
            return
        scale = target.width() / image_width

        def widget(points: np.ndarray) -> np.ndarray:
            x = target.right() - points[:, 0] * scale if mirror else target.left() + points[:, 0] * scale
            return np.stack([x, target.top() + points[:, 1] * scale], axis=1)

        for row, box in enumerate(boxes):
            if np.isnan(faces.head_pose[row, 0]):
                continue
            points = widget(faces.landmarks[row])
            if self.mesh:
                painter.setPen(QPen(_MESH, max(1.5, box.width() / 120)))
                painter.drawPoints(QPolygonF([QPointF(x, y) for x, y in points]))
            if self.axes:
                self._paint_axes(painter, points[_NOSE_TIP], faces.head_pose[row], box.width() * 0.45, mirror)
            if faces.attentive[row] == 0:
                self._paint_away(painter, box, label_px)

    @staticmethod
    def _paint_axes(painter: QPainter, origin: np.ndarray, pose_deg: np.ndarray, length: float, mirror: bool) -> None:
        rotation = rotation_from_pose(*(float(v) for v in pose_deg))
        for column, colour in enumerate(_AXIS_COLOURS):
            dx, dy = rotation[0, column], -rotation[1, column]  # camera y is up, image y is down
            if mirror:
                dx = -dx
            pen = QPen(colour, max(2.0, length / 25))
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            painter.drawLine(QPointF(*origin), QPointF(origin[0] + dx * length, origin[1] + dy * length))

    @staticmethod
    def _paint_away(painter: QPainter, box: QRectF, label_px: float) -> None:
        painter.setFont(pixel_font(label_px * 0.85, bold=True))
        text = "looking away"
        metrics = QFontMetricsF(painter.font())
        tag = QRectF(box.left(), box.bottom() - metrics.height() * 1.2, metrics.horizontalAdvance(text) + 8,
                     metrics.height() * 1.2)
        painter.fillRect(tag, _AWAY)
        painter.setPen(QColor(20, 20, 20))
        painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
        painter.setPen(QPen(_AWAY, 2, Qt.PenStyle.DashLine))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(box.adjusted(-3, -3, 3, 3))


_EVERYDAY = {"AU04": "frown", "AU06": "smiling eyes", "AU12": "smile", "AU15": "sad mouth", "AU26": "mouth open",
             "AU45": "blink"}  # the words a moderator would use, beside the FACS names


def au_label(code: str) -> str:
    """An action unit as a moderator reads it: ``AU12 lip corner puller ("smile")``."""
    name = AU_TABLE[code][0].split(" (")[0]
    return f"{code} {name}" + (f' ("{_EVERYDAY[code]}")' if code in _EVERYDAY else "")


class AuBars(QWidget):
    """Compact bars of the action units (0..1) of one face, with its head pose and eyes."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(300, 14 * (len(AU_NAMES) + 3))
        self._aus: np.ndarray | None = None
        self._title = "behaviour off"

    def show_face(self, faces: Faces, face_id: int | None) -> None:
        """Show the face with ``face_id`` (None: the first face); nothing when behaviour is off."""
        rows = [] if faces.aus is None or faces.face_id is None else (
            list(np.flatnonzero(faces.face_id == face_id)) if face_id is not None else [0] * (len(faces) > 0))
        if not rows or np.isnan(faces.aus[rows[0]]).any():
            self._aus, self._title = None, "behaviour off" if faces.aus is None else "no face read"
        else:
            row = rows[0]
            yaw, pitch, roll = faces.head_pose[row]
            self._aus = faces.aus[row]
            looking = "attentive" if faces.attentive[row] == 1 else "looking away"
            self._title = (f"#{int(faces.face_id[row])} {looking}\n"
                           f"yaw {yaw:+.0f}°  pitch {pitch:+.0f}°  roll {roll:+.0f}°")
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        row_px = max(11.0, min(16.0, self.height() / (len(AU_NAMES) + 3)))
        painter.setFont(pixel_font(row_px * 0.8))
        painter.setPen(QColor(232, 232, 232))
        painter.drawText(QRectF(4, 0, self.width() - 8, row_px * 2.4),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._title)
        if self._aus is not None:
            rect = QRectF(4, row_px * 2.6, self.width() - 8, row_px * len(AU_NAMES))
            paint_score_bars(painter, rect, self._aus, [au_label(code) for code in AU_NAMES],
                             [QColor(78, 121, 167)] * len(AU_NAMES),
                             QColor(232, 232, 232), percent=True)
        painter.end()


class BehaviourControls:
    """The window's behaviour menu, AU dock and overlay switches (see the module docstring)."""

    def __init__(self, window) -> None:
        from emolens.gui.worker import SetOptions

        self._window, self._set_options = window, SetOptions
        self._selected: int | None = None
        self.bars = AuBars()
        self.dock = QDockWidget("Action units", window)
        self.dock.setObjectName("action-units")
        self.dock.setWidget(self.bars)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        self.dock.hide()
        overlay = window.video_view.behaviour_overlay
        self.read_action = self._checkable("&Read behaviour (action units, head pose, attention, blinks)",
                                           self.set_behaviour)
        self.mesh_action = self._checkable("Landmark &mesh", lambda on: self._overlay(mesh=on))
        self.axes_action = self._checkable("Head-pose &axes", lambda on: self._overlay(axes=on))
        menu = window.menuBar().addMenu("&Behaviour")
        for action in (self.read_action, self.mesh_action, self.axes_action):
            menu.addAction(action)
        self._overlay_state = overlay
        window.side_panel.selection_changed.connect(self._on_selection)
        window.frame_shown.connect(self._on_frame)

    def _checkable(self, text: str, slot) -> QAction:
        action = QAction(text, self._window)
        action.setCheckable(True)
        action.toggled.connect(slot)
        return action

    def options(self, options: AnalyzerOptions) -> AnalyzerOptions:
        """``options`` with behaviour as the menu has it (for any rebuild of the pipeline)."""
        return replace(options, behaviour=self.read_action.isChecked())

    def set_behaviour(self, on: bool) -> None:
        """Rebuild the pipeline with or without the landmarker; the AU dock shows while it is on."""
        window = self._window
        options = replace(window.analyzer_options(), behaviour=on)
        window.worker.request(self._set_options(options))
        self.dock.setVisible(on)
        if self.read_action.isChecked() != on:
            self.read_action.setChecked(on)

    def _overlay(self, **switches: bool) -> None:
        for name, on in switches.items():
            setattr(self._overlay_state, name, on)
        if any(switches.values()) and not self.read_action.isChecked():
            self.read_action.setChecked(True)  # the overlays need the landmarker
        self._window.video_view.update()

    def _on_selection(self, face_id) -> None:
        self._selected = face_id

    def _on_frame(self, update) -> None:
        self.bars.show_face(update.result.faces, self._selected)

    def apply_args(self, args) -> None:
        """``--behaviour``, ``--mesh`` and ``--head-axes`` of the command line."""
        if getattr(args, "behaviour", False):
            self.read_action.setChecked(True)
        if getattr(args, "mesh", False):
            self.mesh_action.setChecked(True)
        if getattr(args, "head_axes", False):
            self.axes_action.setChecked(True)
