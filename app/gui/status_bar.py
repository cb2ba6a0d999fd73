"""The status bar's parts: a message that shortens itself to the room it has, and fixed fields that
never shrink below their text.

Qt's own ``QStatusBar.showMessage`` hides the other left-hand widgets and draws the message
across whatever width it finds; here the message is a widget of its own, laid out beside the
fields, and a path too long for it loses its middle ("…"), never its file name.

Example::

    message = StatusMessage()
    status_bar.addWidget(message, 1)
    message.show_text("recording to /home/me/Documents/Emolens/2026-12-01_21-30-00.csv", 5000)
    field = StatusField()
    status_bar.addPermanentWidget(field)
    field.setText("12.3 / 25 fps")
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class StatusMessage(QWidget):
    """A one-line message that takes the room left beside the fixed fields, elided in the middle."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clear)

    def text(self) -> str:
        """The whole message (what is painted may be shorter: ``displayed_text``)."""
        return self._text

    def displayed_text(self) -> str:
        """The message as it fits the widget's width."""
        return self.fontMetrics().elidedText(self._text, Qt.TextElideMode.ElideMiddle, max(self.width() - 4, 0))

    def show_text(self, text: str, timeout_ms: int = 0) -> None:
        """Show ``text`` (on one line) for ``timeout_ms`` (0: until the next message)."""
        self._text = " ".join(text.split())
        self.setToolTip(self._text)
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()
        self.update()

    def clear(self) -> None:
        self.show_text("")

    def sizeHint(self) -> QSize:
        return QSize(0, self.fontMetrics().height() + 4)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(self.rect().adjusted(2, 0, -2, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.displayed_text())
        painter.end()


class StatusField(QLabel):
    """A fixed field: as wide as the widest text it has shown, so it neither collapses nor jitters
    as its numbers change."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 -- Qt's name
        super().setText(text)
        if text:
            self.setMinimumWidth(max(self.minimumWidth(), super().sizeHint().width()))

    def reset_width(self) -> None:
        """Forget the widest text (a new source: its names and numbers differ); the field is never
        laid out narrower than its current text all the same (``QSizePolicy.Minimum``)."""
        self.setMinimumWidth(0)
