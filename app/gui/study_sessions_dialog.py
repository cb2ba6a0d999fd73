"""The list of a study's sessions, to open one in replay (``emolens replay STUDY_DIR``, File → Open study…).

Example::

    dialog = StudySessionsDialog(Path("ad-test"), study_sessions(Path("ad-test")))
    if dialog.exec():
        open_replay(dialog.chosen)
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from emolens.replay.study_sessions import SessionEntry

COLUMNS = ("Participant", "#", "Date", "Session", "Face found")


def entry_cells(entry: SessionEntry) -> tuple[str, ...]:
    """The row of one session, as the list shows it."""
    found = "no stimulus frame" if entry.face_found is None else f"{entry.face_found:.0%}"
    return (entry.participant, str(entry.number), entry.date[:16].replace("T", " "),
            "complete" if entry.complete else "incomplete (ended early)", found)


class StudySessionsDialog(QDialog):
    """A table of the study's sessions; Open (or a double-click) accepts with ``chosen`` set to its timeline."""

    def __init__(self, folder: Path, entries: list[SessionEntry], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Sessions of {Path(folder).name} · Emolens")
        self.resize(640, 360)
        self.entries = entries
        self.chosen: Path | None = None
        self.table = QTableWidget(len(entries), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row, entry in enumerate(entries):
            for column, text in enumerate(entry_cells(entry)):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.cellDoubleClicked.connect(lambda row, _: self._choose(row))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        self.open_button = buttons.button(QDialogButtonBox.StandardButton.Open)
        self.open_button.setEnabled(False)
        self.table.itemSelectionChanged.connect(lambda: self.open_button.setEnabled(bool(self.table.selectedItems())))
        buttons.accepted.connect(lambda: self._choose(self.table.currentRow()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(entries)} session(s) in {folder}: choose one to replay" if entries else
                                f"{folder} has no sessions yet: add them with emolens study add or run one"))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
        if entries:
            self.table.selectRow(0)

    def _choose(self, row: int) -> None:
        if 0 <= row < len(self.entries):
            self.chosen = self.entries[row].timeline
            self.accept()
