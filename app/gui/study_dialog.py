"""The window's Study menu: New study…, Open study…, Run session… and End the session (Esc).

A study is the folder ``emolens study new`` makes (``emolens.study.file``); a session runs in the live window
(``emolens.gui.study_session``) with the window's open camera. Playing stimuli needs Qt Multimedia, from
PySide6-Addons (the ``study`` extra): without it the menu's actions say how to install it, and nothing fails.

Example::

    menu = StudyMenu(window)            # adds the Study menu to a MainWindow
    menu.open_study(Path("ad-test"))
    menu.run_session("P07", screen=None, countdown_s=3)
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QGuiApplication, QScreen
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from emolens.errors import EmolensError, SettingError
from emolens.images import IMAGE_SUFFIXES

INSTALL_HINT = "Running a study session needs Qt Multimedia: pip install 'emolens[study]' (PySide6-Addons)."


def multimedia_missing() -> bool:
    """Whether Qt Multimedia (PySide6-Addons) is absent."""
    return find_spec("PySide6.QtMultimedia") is None


class RunSessionDialog(QDialog):
    """Who watches, and where the stimuli are shown: full screen on another screen, or a window on this one."""

    def __init__(self, study_name: str, moderator_screen: QScreen | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Run a session of {study_name}")
        self.participant = QLineEdit(placeholderText="e.g. P07")
        self.where = QComboBox()
        others = [screen for screen in QGuiApplication.screens() if screen is not moderator_screen]
        for screen in others:
            self.where.addItem(f"Full screen on {screen.name()} ({screen.size().width()}×{screen.size().height()})",
                               screen)
        self.where.addItem("In a window on this screen", None)
        form = QFormLayout(self)
        form.addRow("Participant ID", self.participant)
        form.addRow("Show the stimuli", self.where)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def screen_choice(self) -> QScreen | None:
        return self.where.currentData()


class StudyMenu(QObject):
    """The Study menu of ``window`` (a ``MainWindow``) and the session it runs.

    Attributes:
        folder: the open study, or None.
        session: the session running, or None.

    Signals:
        session_finished(object): the ``SessionOutcome`` of each session run.
    """

    session_finished = Signal(object)

    def __init__(self, window):
        super().__init__(window)
        self._window = window
        self.folder: Path | None = None
        self.session = None
        self.new_action = QAction("&New study…", window, triggered=self.new_study)
        self.open_action = QAction("&Open study…", window, triggered=self.choose_study)
        self.run_action = QAction("&Run session…", window, triggered=self.ask_session)
        self.end_action = QAction("&End the session (Esc)", window, triggered=self.end_session, enabled=False)
        menu = window.menuBar().addMenu("&Study")
        for action in (self.new_action, self.open_action, self.run_action, self.end_action):
            menu.addAction(action)

    def _refuse_without_multimedia(self) -> bool:
        if multimedia_missing():
            self._window.show_status(INSTALL_HINT, 15000)
            return True
        return False

    def new_study(self) -> None:
        """Choose an empty folder, the stimuli (an image's seconds asked), a baseline and the order; make the study."""
        window = self._window
        folder = QFileDialog.getExistingDirectory(window, "An empty folder for the new study")
        if not folder:
            return
        files, _ = QFileDialog.getOpenFileNames(window, "The stimuli, in order", folder)
        if not files:
            return
        stimuli = []
        for file in files:
            if Path(file).suffix.lower() in IMAGE_SUFFIXES:
                seconds, ok = QInputDialog.getDouble(window, "Image stimulus", f"Show {Path(file).name} for (s)",
                                                     5.0, 0.1, 3600.0, 1)
                if not ok:
                    return
                file = f"{file}={seconds:g}"
            stimuli.append(file)
        baseline, ok = QInputDialog.getDouble(window, "Baseline", "Neutral screen before the first stimulus (s)",
                                              5.0, 0.0, 600.0, 1)
        if not ok:
            return
        shuffle = QMessageBox.question(window, "Order", "Shuffle the stimuli's order for each session?"
                                       ) == QMessageBox.StandardButton.Yes
        from emolens.study.file import create_study

        try:
            create_study(Path(folder), stimuli, baseline_s=baseline, shuffle=shuffle)
        except EmolensError as error:
            window.show_status(f"no study: {error}", 15000)
            return
        self.open_study(Path(folder))

    def choose_study(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._window, "Open a study folder")
        if folder:
            self.open_study(Path(folder))

    def open_study(self, folder: Path) -> bool:
        """Make ``folder`` the open study; False (and why, in the status bar) if it is not one."""
        from emolens.study.file import load_study

        try:
            study = load_study(folder)
        except EmolensError as error:
            self._window.show_status(f"no study: {error}", 15000)
            return False
        self.folder = Path(folder)
        self._window.show_status(f"study: {study.name} ({len(study.stimuli)} stimuli) in {folder}; "
                                 f"Study › Run session… to start one", 10000)
        return True

    def ask_session(self) -> None:
        if self._refuse_without_multimedia():
            return
        if self.folder is None:
            self.choose_study()
            if self.folder is None:
                return
        from emolens.study.file import load_study

        dialog = RunSessionDialog(load_study(self.folder).name, self._window.screen(), self._window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.run_session(dialog.participant.text().strip(), dialog.screen_choice)

    def run_session(self, participant: str, screen: QScreen | None = None, countdown_s: int = 3):
        """Start a session of the open study with the window's source; the ``StudySession``, or None (and why)."""
        window = self._window
        if self._refuse_without_multimedia():
            return None
        if self.session is not None:
            window.show_status("A session is running: end it first (Esc).", 8000)
            return None
        if self.folder is None:
            window.show_status("Open a study first (Study › Open study…).", 8000)
            return None
        if not window.source_open:
            window.show_status("Open the camera before the session: it records the participant's face.", 8000)
            return None
        if window.recording.active:
            window.show_status("Stop the recording in progress first: the session records on its own.", 8000)
            return None
        from emolens.gui.study_session import StudySession
        from emolens.study.sessions import session_files

        if any(path.exists() for path in session_files(self.folder, participant)):
            window.show_status(f"no session: {participant} already has a session in this study; "
                               f"choose another participant ID", 15000)
            return None
        try:
            session = StudySession(window, self.folder, participant, screen, countdown_s)
        except SettingError as error:  # the ID is not a plain name: the dialog's field, not a flag, is named
            window.show_status(f"no session: {error.naming(lambda name: name.replace('_', ' ') + ' ID')}", 15000)
            return None
        except EmolensError as error:
            window.show_status(f"no session: {error}", 15000)
            return None
        self.session = session
        session.finished.connect(self._on_finished)
        self._set_running(True)
        session.start()
        return session

    def end_session(self) -> None:
        if self.session is not None:
            self.session.end_early()

    def close(self) -> None:
        """The window closes: the stimulus screen goes too (the worker finishes the session's recording, kept)."""
        if self.session is not None:
            self.session.screen.close()

    def _set_running(self, running: bool) -> None:
        self.end_action.setEnabled(running)
        self.end_action.setShortcut("Esc" if running else "")
        self._window.leave_presenter_action.setShortcut("" if running else "Esc")  # one owner of Esc at a time
        for action in (self.new_action, self.open_action, self.run_action):
            action.setEnabled(not running)

    def _on_finished(self, outcome) -> None:
        self.session = None
        self._set_running(False)
        window = self._window
        if outcome.info is None:
            kept = f"; the recording is kept in {outcome.recording}" if outcome.recording else ""
            window.show_status(f"study: the session was not saved: {outcome.error}{kept}", 30000)
        else:
            state = "complete" if outcome.info.complete else "ended early (marked incomplete)"
            note = f"; {outcome.error}" if outcome.error else ""
            window.show_status(f"study: the session of {outcome.info.participant} is saved, {state}; "
                               f"emolens study report {self.folder} builds the report{note}", 30000)
        self.session_finished.emit(outcome)
