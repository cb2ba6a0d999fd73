"""A card over the video that says what is going on (starting, no camera, the end of a file, a
lost camera) and offers the way on: open a file, play the demo clip, or retry the source.

Example::

    panel = MessagePanel()
    panel.open_clicked.connect(window.choose_file)
    panel.show_message("No camera", "camera 0 not found or busy ...", retry="Try camera 0 again")
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

_STYLE = """
MessagePanel { background: rgba(24, 24, 28, 225); border: 1px solid #555; border-radius: 10px; }
QLabel { color: #eee; background: transparent; }
QLabel#title { font-size: 20px; font-weight: bold; }
"""


class MessagePanel(QFrame):
    """Title, text and up to three buttons; ``show_message`` shows it, ``hide`` hides it.

    Signals:
        open_clicked(): open a video, image or folder.
        demo_clicked(): play the bundled demo clip.
        retry_clicked(): open the last source again (reconnect a camera, replay a file).
    """

    open_clicked = Signal()
    demo_clicked = Signal()
    retry_clicked = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setStyleSheet(_STYLE)
        self.setMaximumWidth(560)
        self.title = QLabel()
        self.title.setObjectName("title")
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open video or images…")
        self.demo_button = QPushButton("Play the demo clip")
        self.retry_button = QPushButton()
        self.open_button.clicked.connect(self.open_clicked)
        self.demo_button.clicked.connect(self.demo_clicked)
        self.retry_button.clicked.connect(self.retry_clicked)
        buttons = QHBoxLayout()
        for button in (self.retry_button, self.open_button, self.demo_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.addWidget(self.title)
        layout.addWidget(self.text)
        layout.addLayout(buttons)

    def show_message(self, title: str, text: str, retry: str | None = None, actions: bool = True) -> None:
        """Show the card; ``retry`` labels the retry button (None hides it), ``actions`` the other two."""
        self.title.setText(title)
        self.text.setText(text)
        self.retry_button.setVisible(retry is not None)
        self.retry_button.setText(retry or "")
        self.open_button.setVisible(actions)
        self.demo_button.setVisible(actions)
        self.show()
        self.raise_()
