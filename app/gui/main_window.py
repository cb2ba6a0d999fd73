"""The main window: live view, side panel, status bar, menus and shortcuts around one PipelineWorker.

The window never processes frames: it sends requests to the worker (open a source, record,
mark, change settings) and, on ``result_ready``, takes the newest result and hands it to the
view, which paints it at once. The side panel and the status bar refresh five times a second
from the last result shown. Settings are loaded from and saved to the ``QSettings`` it is
given; command-line overrides apply to this run only, until the user changes that setting.

Example::

    window = MainWindow(QSettings("Emolens", "Emolens"), overrides={"tau_s": 0.0})
    window.show()
    window.open_source("clip.mp4")        # None: the camera from the settings
"""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDesktopServices, QKeyEvent, QKeySequence, QPixmap
from PySide6.QtWidgets import QApplication, QFileDialog, QGridLayout, QMainWindow, QPushButton, QSplitter, QWidget

from emolens.errors import EmolensError, error_line
from emolens.gui.behaviour_overlay import BehaviourControls
from emolens.gui.message_panel import MessagePanel
from emolens.gui.preferences import PreferencesDialog
from emolens.gui.presenter_panel import PresenterPanel
from emolens.gui.settings import (
    PIPELINE_FIELDS,
    RECORDING_VIDEO_TEXT,
    SAVE_VIDEO_TEXT,
    SAVE_VIDEO_TIP,
    Settings,
    default_recording_folder,
    load_settings,
    save_settings,
)
from emolens.gui.side_panel import SidePanel
from emolens.gui.status_bar import StatusField, StatusMessage
from emolens.gui.study_dialog import StudyMenu
from emolens.gui.video_view import VideoView
from emolens.gui.worker import (
    AddMarker,
    AnalyzerInfo,
    MarkerOutcome,
    OpenSource,
    PipelineWorker,
    RecordingState,
    SetOptions,
    SetTau,
    SourceEnd,
    StartRecording,
    StopRecording,
    Update,
)
from emolens.images import IMAGE_SUFFIXES
from emolens.options import STAGES, AnalyzerOptions

CAMERA_INDICES = range(5)
_REFRESH_MS = 200
_REBUILD_FIELDS = set(PIPELINE_FIELDS) - {"tau_s"}  # smoothing changes in place; the rest rebuilds the pipeline
_DETAILS = ("provider", "fps", "stages")  # the engineer's status fields, behind View → Details
_VIDEO_PATTERNS = "*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.wmv"


def demo_clip() -> str:
    """Path of the bundled demo clip: a real face going from sad through surprise to a laugh (assets/README.md)."""
    return str(resources.files("emolens.assets") / "reactions.mp4")


class MainWindow(QMainWindow):
    """The live window.

    Args:
        store: where settings persist (``QSettings("Emolens", "Emolens")``; an .ini file in tests).
        overrides: settings for this run only (from the command line, ``--model`` among them), not saved.
        tiles: detector tiles per side (command line only; see ``AnalyzerOptions``).
        realtime: play files at their own speed (False: every frame as fast as possible).

    Attributes:
        worker: the ``PipelineWorker`` thread; ``video_view``, ``side_panel``, ``message_panel``,
        ``status_message`` and ``status_labels`` are the parts of the window.

    Signals:
        frame_shown(object): the ``Update`` just handed to the view.
        report_ready(object): the report page (a ``Path``) of the last recording, or why it failed (``str``).
        source_ended(object): a ``SourceEnd``, after the window has shown it.
        failed(str): the pipeline could not start (e.g. a broken model).
    """

    frame_shown = Signal(object)
    report_ready = Signal(object)
    source_ended = Signal(object)
    failed = Signal(str)

    def __init__(self, store: QSettings, overrides: dict | None = None, tiles: int = 1,
                 realtime: bool = True, parent: QWidget | None = None):
        super().__init__(parent)
        self._store = store
        self._saved = load_settings(store)
        self._settings = replace(self._saved, **(overrides or {}))
        self._tiles = tiles
        self._spec: str | None = None
        self._source_label = ""
        self._source_open = False
        self._last: Update | None = None
        self._recording = RecordingState()
        self.replays: list[QMainWindow] = []  # the replay windows opened from here, closed with it
        self._saved_note = ""
        self._no_face_note = ""
        self.setWindowTitle("Emolens")
        self.resize(1280, 760)

        self.video_view = VideoView()
        self.message_panel = MessagePanel()
        video = QWidget()
        self.presenter_panel = PresenterPanel(video)
        grid = QGridLayout(video)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.video_view, 0, 0)
        grid.addWidget(self.presenter_panel, 0, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
        grid.addWidget(self.message_panel, 0, 0, Qt.AlignmentFlag.AlignCenter)
        self.side_panel = SidePanel()
        self.side_panel.setMinimumWidth(300)
        self.splitter = QSplitter()
        self.splitter.addWidget(video)
        self.splitter.addWidget(self.side_panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        self._build_status_bar()
        self._build_actions()
        self._build_menus()
        self._connect_panels()
        self._show_settings()
        self._restore_geometry()

        self.worker = PipelineWorker(self.analyzer_options(), realtime, self)
        self.worker.analyzer_ready.connect(self._on_analyzer_ready)
        self.worker.failed.connect(self._on_failed)
        self.worker.source_opened.connect(self._on_source_opened)
        self.worker.source_ended.connect(self._on_source_ended)
        self.worker.recording_changed.connect(self._on_recording_changed)
        self.worker.marker_added.connect(self._on_marker_added)
        self.worker.no_face.connect(self._on_no_face)
        self.worker.result_ready.connect(self._on_result_ready)
        self.report_ready.connect(self._on_report_ready)
        self.worker.start()
        self.behaviour = BehaviourControls(self)  # Behaviour menu, AU dock, overlays
        self.study = StudyMenu(self)  # Study menu: sessions with the stimuli played and the camera recorded
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(_REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh_panels)
        self._refresh_timer.start()
        self.message_panel.show_message("Starting", "Loading the face detector and the emotion model…", actions=False)
        # The marker keys must work whatever has focus (a moderator marks without looking): see eventFilter.
        QApplication.instance().installEventFilter(self)
        self.video_view.setFocus()

    # -- building -------------------------------------------------------------------------

    def _build_status_bar(self) -> None:
        self.status_message = StatusMessage()
        self.statusBar().addWidget(self.status_message, 1)
        names = ("source", *_DETAILS, "faces", "recording")
        self.status_labels = {name: StatusField() for name in names}
        self.status_labels["fps"].setToolTip("frames processed per second / the source's frame rate")
        self.status_labels["stages"].setToolTip("milliseconds per pipeline stage for the last frame")
        self.status_labels["recording"].setText("not recording")
        for label in self.status_labels.values():
            self.statusBar().addPermanentWidget(label)
        self.report_button = QPushButton("Open report")
        self.report_button.setToolTip("charts and per-segment tables of the last recording, in the browser")
        self.report_button.clicked.connect(self.open_report)
        self.report_button.hide()
        self.statusBar().addPermanentWidget(self.report_button)
        self.replay_button = QPushButton("Open replay")
        self.replay_button.setToolTip("the last recording's video, faces and chart, to review and mark")
        self.replay_button.clicked.connect(self.replay_last_recording)
        self.replay_button.hide()
        self.statusBar().addPermanentWidget(self.replay_button)

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        """A message in the status bar, shortened to the room beside the fixed fields."""
        self.status_message.show_text(text, timeout_ms)

    def _action(self, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None,
                checkable: bool = False, everywhere: bool = False) -> QAction:
        """An action in the window; ``everywhere``: its key works whatever widget has focus (see eventFilter)."""
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if everywhere:
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.setAutoRepeat(False)  # a key held down is one marker
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts keep working while the menu bar is hidden (presenter mode)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open video or images…", self.choose_file, QKeySequence.StandardKey.Open)
        self.folder_action = self._action("Open image &folder…", self.choose_folder, "Ctrl+Shift+O")
        self.demo_action = self._action("Play the &demo clip", self.open_demo)
        self.open_recording_action = self._action("Open a recording to re&play…", self.choose_recording,
                                                  "Ctrl+Shift+P")
        self.retry_action = self._action("&Reconnect / replay", self.retry, "F5")
        self.preferences_action = self._action("&Preferences…", self.edit_preferences, "Ctrl+,")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.camera_group = QActionGroup(self)
        self.camera_group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)  # none while a file plays
        self.camera_actions = []
        for index in CAMERA_INDICES:
            action = self._action(f"Camera {index}", lambda _=False, i=index: self.choose_camera(i), checkable=True)
            self.camera_group.addAction(action)
            self.camera_actions.append(action)
        self.mirror_action = self._action("&Mirror the camera", self._on_mirror_toggled, checkable=True)
        self.presenter_action = self._action("&Presenter mode", self.set_presenter, "F11", checkable=True)
        self.details_action = self._action("&Details in the status bar (device, fps, stage timings)",
                                           self._on_details_toggled, checkable=True)
        self.leave_presenter_action = self._action("Leave presenter mode", lambda: self.set_presenter(False), "Esc")
        self.leave_presenter_action.setEnabled(False)
        self.record_action = self._action("Start &recording", self.toggle_recording, "Ctrl+R")
        self.record_to_action = self._action("Record &to…", self.record_to, "Ctrl+Shift+R")
        self.marker_action = self._action("Add the typed &marker", self.add_typed_marker, "Ctrl+M", everywhere=True)
        self.preset_actions = [self._action("", lambda _=False, i=index: self.add_preset_marker(i), str(index + 1),
                                            everywhere=True)
                               for index in range(len(self._settings.marker_presets))]
        self.recordings_action = self._action("Show the recordings &folder", self.show_recordings_folder)
        self.save_video_action = self._action(SAVE_VIDEO_TEXT, self._on_save_video_toggled, checkable=True)
        self.save_video_action.setToolTip(SAVE_VIDEO_TIP)
        self.report_action = self._action("Open the &report of the last recording", self.open_report)
        self.report_action.setEnabled(False)
        self.replay_action = self._action("Re&play the last recording", self.replay_last_recording)
        self.replay_action.setEnabled(False)

    def _build_menus(self) -> None:
        menus = {
            "&File": [self.open_action, self.folder_action, self.demo_action, self.retry_action,
                      self.open_recording_action, None,
                      self.preferences_action, None, self.quit_action],
            "&Camera": self.camera_actions,
            "&View": [self.mirror_action, self.presenter_action, self.details_action],
            "&Record": [self.record_action, self.record_to_action, self.save_video_action, None, self.marker_action,
                        *self.preset_actions, None, self.report_action, self.replay_action, self.recordings_action],
        }
        for title, actions in menus.items():
            menu = self.menuBar().addMenu(title)
            for action in actions:
                menu.addSeparator() if action is None else menu.addAction(action)

    def _connect_panels(self) -> None:
        self.side_panel.tau_changed.connect(self.set_tau)
        self.side_panel.span_changed.connect(lambda span_s: self.apply_settings(replace(self._settings,
                                                                                        chart_span_s=span_s)))
        self.side_panel.record_clicked.connect(self.toggle_recording)
        self.side_panel.marker_requested.connect(self.add_marker)
        for done in (self.side_panel.marker_edit.returnPressed, self.side_panel.marker_button.clicked):
            done.connect(self.video_view.setFocus)  # the keys go back to the video: the preset keys mark again
        self.side_panel.selection_changed.connect(self.video_view.set_selected)
        self.video_view.face_clicked.connect(self.side_panel.select)
        self.message_panel.open_clicked.connect(self.choose_file)
        self.message_panel.demo_clicked.connect(self.open_demo)
        self.message_panel.retry_clicked.connect(self.retry)

    def _show_settings(self) -> None:
        """Put the effective settings into the widgets that show them."""
        settings = self._settings
        self.side_panel.set_tau(settings.tau_s)
        self.side_panel.set_presets(settings.marker_presets)
        for action, text in zip(self.preset_actions, settings.marker_presets):
            action.setText(f"Marker “{text}”")
            action.setEnabled(bool(text))
        self.mirror_action.setChecked(settings.mirror)
        self.save_video_action.setChecked(settings.save_video)
        self._apply_mirror()
        self.side_panel.set_span(settings.chart_span_s)
        self.details_action.setChecked(settings.details)
        for name in _DETAILS:
            self.status_labels[name].setVisible(settings.details)

    def _restore_geometry(self) -> None:
        geometry, splitter = self._store.value("window/geometry"), self._store.value("window/splitter")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if splitter is not None:
            self.splitter.restoreState(splitter)

    # -- settings -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings in effect: the saved ones with this run's overrides."""
        return self._settings

    def apply_settings(self, new: Settings) -> None:
        """Use and save every setting that differs from the ones in effect."""
        changed = {item.name: getattr(new, item.name) for item in fields(Settings)
                   if getattr(new, item.name) != getattr(self._settings, item.name)}
        if not changed:
            return
        self._change(**changed)
        self._show_settings()
        if changed.keys() & _REBUILD_FIELDS:
            self.worker.request(SetOptions(self.behaviour.options(self.analyzer_options())))
        elif "tau_s" in changed:
            self.worker.request(SetTau(self._settings.tau_s))
        if changed.keys() & {"camera", "resolution"} and self._on_camera:
            self.open_source(str(self._settings.camera))

    def _change(self, **values) -> None:
        self._settings = replace(self._settings, **values)
        self._saved = replace(self._saved, **values)
        save_settings(self._store, self._saved)

    def edit_preferences(self) -> None:
        dialog = PreferencesDialog(self._settings, self)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def set_tau(self, tau_s: float) -> None:
        """Score smoothing time constant in seconds (0 = raw), from the next frame on."""
        self.apply_settings(replace(self._settings, tau_s=round(tau_s, 1)))

    def _on_mirror_toggled(self, mirror: bool) -> None:
        self.apply_settings(replace(self._settings, mirror=mirror))

    def _on_save_video_toggled(self, save_video: bool) -> None:
        """From the next recording on (one in progress keeps what it started with)."""
        self.apply_settings(replace(self._settings, save_video=save_video))

    def _on_details_toggled(self, details: bool) -> None:
        self.apply_settings(replace(self._settings, details=details))
        self.refresh_panels()

    @property
    def _on_camera(self) -> bool:
        """Whether the source open, or last asked for, is a camera."""
        return self._spec is not None and self._spec.isdigit()

    def _apply_mirror(self) -> None:
        self.video_view.set_mirror(self._settings.mirror and self._on_camera)

    # -- sources --------------------------------------------------------------------------

    def open_source(self, spec: str | None = None) -> None:
        """Open a camera index (digits), a video file, an image or a folder; None: the saved camera."""
        self._spec = str(self._settings.camera) if spec is None else str(spec)
        self._source_open = False
        self._apply_mirror()
        size_wh = self._settings.resolution_wh if self._spec.isdigit() else None
        self.worker.request(OpenSource(self._spec, size_wh))
        self._check_camera()

    def _check_camera(self) -> None:
        """Tick the camera that is the source in the Camera menu; none for a file or folder."""
        for index, action in enumerate(self.camera_actions):
            action.setChecked(self._on_camera and int(self._spec) == index)

    def choose_file(self) -> None:
        images = " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or an image", "",
                                              f"Videos and images ({_VIDEO_PATTERNS} {images});;All files (*)")
        if path:
            self.open_source(path)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_source(folder)

    def open_demo(self) -> None:
        self.open_source(demo_clip())

    def choose_camera(self, index: int) -> None:
        if index != self._settings.camera:
            self._change(camera=index)
        self.open_source(str(index))

    def retry(self) -> None:
        """Open the last source again: reconnect a camera, replay a file."""
        self.open_source(self._spec)

    # -- recording ------------------------------------------------------------------------

    @property
    def recording(self) -> RecordingState:
        """The last recording state the worker reported."""
        return self._recording

    @property
    def source_open(self) -> bool:
        return self._source_open

    @property
    def source_spec(self) -> str:
        """The source asked for last: a camera's index, a file or a folder ("" before the first)."""
        return self._spec or ""

    def analyzer_options(self) -> AnalyzerOptions:
        """The pipeline's options now: the settings in effect and this run's ``--tiles`` (behaviour off)."""
        return self._settings.analyzer_options(self._tiles)

    @property
    def model(self) -> str:
        """The emotion model in use: ``fast``, ``accurate`` or a card given with ``--model``."""
        return self._settings.model

    def toggle_recording(self) -> None:
        if self._recording.active:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self, path: str | Path | None = None) -> None:
        """Record to ``path``, by default a new timestamped CSV in the recording folder."""
        if not self._source_open:
            self.show_status("Open a camera, video or folder before recording.", 5000)
            return
        self.worker.request(StartRecording(Path(path) if path else self._settings.recording_path(),
                                           save_video=self._settings.save_video))

    def stop_recording(self) -> None:
        self.worker.request(StopRecording())

    def record_to(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Record to", str(self._settings.recording_path()),
                                              "CSV timeline (*.csv)")
        if path:
            self.start_recording(path)

    def add_marker(self, text: str) -> None:
        """Ask the worker to write a marker into the recording; ``marker_added`` says whether it did.

        The worker, which owns the recording, decides: a marker sent just after "record" goes into
        that recording, one sent after it stopped is reported as not recorded, never dropped silently.
        """
        text = " ".join(text.split())
        if text:
            self.worker.request(AddMarker(text))

    def add_preset_marker(self, index: int) -> None:
        self.add_marker(self._settings.marker_presets[index])

    def add_typed_marker(self) -> None:
        """Ctrl+M: add the marker field's text; with the field empty, put the cursor there to type one."""
        edit = self.side_panel.marker_edit
        if edit.text().strip():
            self.side_panel.add_typed_marker()
            self.video_view.setFocus()
        elif not self._recording.active:
            self.show_status("Markers go into a recording: start one first (Ctrl+R).", 5000)
        else:
            edit.setFocus()
            self.show_status("Type the marker, then Enter (the keys 1-9 add the preset markers).", 5000)

    def _on_marker_added(self, outcome: MarkerOutcome) -> None:
        if outcome.recorded:
            self.side_panel.chart.add_marker(outcome.text)
            self.show_status(f"marker: {outcome.text}", 3000)
        else:
            self.show_status(f"Marker “{outcome.text}” not recorded: markers go into a recording; "
                             f"start one first (Ctrl+R).", 8000)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 -- Qt's name
        """Let the marker keys reach their actions from any widget of this window but the marker field.

        A spin box or combo box takes digits for itself (Qt asks it first, by a ShortcutOverride
        event); refusing that request on its behalf lets the application-wide shortcut fire. In the
        marker field digits are text, and Enter hands the keys back to the video.
        """
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(watched, QWidget)
                and watched.window() is self and watched is not self.side_panel.marker_edit
                and self._is_marker_key(event)):
            event.ignore()
            return True
        return super().eventFilter(watched, event)

    def _is_marker_key(self, event: QKeyEvent) -> bool:
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        pressed = QKeySequence(event.key() | modifiers.value)
        return any(action.isEnabled() and action.shortcut().matches(pressed) == QKeySequence.SequenceMatch.ExactMatch
                   for action in (self.marker_action, *self.preset_actions))

    def open_report(self) -> None:
        """Build the report of the last recording off the GUI thread; ``report_ready`` opens it."""
        path = self._recording.path
        if path is None or self._recording.active or not self._recording.rows:
            self.show_status("Record a session first; its report opens when the recording stops.", 5000)
            return
        self.report_action.setEnabled(False)
        self.report_button.setEnabled(False)
        self.show_status(f"building the report of {path.name}…")
        threading.Thread(target=self._build_report, args=(path,), name="emolens-report", daemon=True).start()

    def _build_report(self, csv_path: Path) -> None:
        from emolens.report import build_report

        try:
            # the window's own report folder: built again each time the report is asked for
            outcome: Path | str = build_report([csv_path], csv_path.with_name(f"{csv_path.stem}_report"),
                                               overwrite=True).html
        except Exception as error:  # noqa: BLE001 -- whatever fails, the window says it in one line
            outcome = error_line(error)
        with suppress(RuntimeError):  # the window was closed and freed meanwhile: the report is written, no one to tell
            self.report_ready.emit(outcome)

    def _on_report_ready(self, outcome: Path | str) -> None:
        self.report_action.setEnabled(True)
        self.report_button.setEnabled(True)
        if isinstance(outcome, Path):
            self.show_status(f"report: {outcome}", 15000)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(outcome)))
        else:
            self.show_status(f"no report: {outcome}", 15000)

    def choose_recording(self) -> None:
        folder = self._settings.recording_folder or str(default_recording_folder())
        path, _ = QFileDialog.getOpenFileName(self, "Open a recording to replay", folder, "Timelines (*.csv)")
        if path:
            self.open_replay(Path(path))

    def replay_last_recording(self) -> None:
        path = self._recording.path
        if path is None or self._recording.active or not self._recording.rows:
            self.show_status("Record a session first; its replay opens when the recording stops.", 5000)
            return
        self.open_replay(path)

    def open_replay(self, csv_path: Path):
        """A replay window on a timeline (returned), or why not in the status bar (None)."""
        from emolens.gui.replay_window import ReplayWindow
        from emolens.replay.recording import load_recording

        try:
            window = ReplayWindow(load_recording(csv_path))
        except EmolensError as error:
            self.show_status(f"no replay: {error}", 15000)
            return None
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.replays.append(window)
        window.destroyed.connect(lambda _=None, w=window: self.replays.remove(w) if w in self.replays else None)
        window.show()
        return window

    def show_recordings_folder(self) -> None:
        folder = Path(self._settings.recording_folder or default_recording_folder())
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # -- presenter mode -------------------------------------------------------------------

    def set_presenter(self, presenter: bool) -> None:
        """Full screen with large labels; menus and status bar hidden (F11 or Esc to leave)."""
        self.presenter_action.setChecked(presenter)
        self.leave_presenter_action.setEnabled(presenter)
        self.menuBar().setVisible(not presenter)
        self.statusBar().setVisible(not presenter)
        self.video_view.set_presenter(presenter)
        self.presenter_panel.setVisible(presenter)
        self._show_presenter_panel()
        if presenter:
            self.showFullScreen()
        else:
            self.showNormal()

    # -- from the worker ------------------------------------------------------------------

    def _on_analyzer_ready(self, info: AnalyzerInfo) -> None:
        self.video_view.set_labels(info.labels)
        self.side_panel.set_labels(info.labels)
        self.presenter_panel.set_labels(info.labels)
        self.status_labels["provider"].setText(info.provider)
        self.status_labels["provider"].setToolTip(info.description)

    def _on_failed(self, message: str) -> None:
        self.message_panel.show_message("The pipeline could not start",
                                        f"{message}\n\nChange the device or detector in File › Preferences.",
                                        "Try again" if self._spec is not None else None)
        self.failed.emit(message)

    def _on_source_opened(self, name: str) -> None:
        self._source_label = Path(name).name
        self._source_open = True
        self._saved_note = self._no_face_note = ""
        self.message_panel.hide()
        self.side_panel.chart.clear()
        for label in self.status_labels.values():
            label.reset_width()
        self.setWindowTitle(f"Emolens — {self._source_label}")

    def _on_source_ended(self, end: SourceEnd) -> None:
        camera = self._on_camera
        self._source_open = False
        if not end.failed:
            title, retry = "Finished", "Play again"
        elif end.opened:
            title, retry = ("Camera lost", "Reconnect") if camera else ("The source failed", "Try again")
        else:
            title, retry = ("No camera", f"Try camera {self._spec} again") if camera else ("Cannot open", "Try again")
        text = end.message[0].upper() + end.message[1:] + "."
        if camera and not end.opened:
            text += " Other cameras are in the Camera menu."
        for note in (self._no_face_note, self._saved_note):
            if note:
                text += "\n\n" + note
        self.message_panel.show_message(title, text, retry)
        self.refresh_panels()
        self.source_ended.emit(end)

    def _on_recording_changed(self, state: RecordingState) -> None:
        self._recording = state
        self.side_panel.set_recording(state.active)
        self.video_view.set_recording(state.active)
        self.record_action.setText("Stop &recording" if state.active else "Start &recording")
        finished = not state.active and state.path is not None and state.rows > 0
        self.report_action.setEnabled(finished)
        self.report_button.setVisible(finished)
        self.replay_action.setEnabled(finished)
        self.replay_button.setVisible(finished)
        if state.active:
            self.show_status(state.message or f"recording to {state.path}" + (
                f" and the camera video to {state.video.name}" if state.video else ""), 0 if state.message else 5000)
        elif state.path is not None:
            video = f" Camera video: {state.video}." if state.video else ""
            self._saved_note = (f"Recording stopped: {state.message}" if state.message else
                                f"Recording saved: {state.path} ({state.rows} rows).") + video
            self.show_status(self._saved_note, 15000)
        self.refresh_panels()

    def _on_result_ready(self) -> None:
        update = self.worker.take()
        if update is None:
            return
        self._last = update
        result = update.result
        self.video_view.show_frame(result.frame.image, result.faces, update.captured_s)
        self.side_panel.show_faces(result.frame.t_s, result.faces)
        self._show_presenter_panel()
        if len(result.faces):
            self._no_face_note = ""
        self.frame_shown.emit(update)

    def _show_presenter_panel(self) -> None:
        if self.presenter_panel.isVisible():
            self.presenter_panel.show_faces(self.video_view.faces, self.side_panel.selector.currentData() or None)

    def _on_no_face(self, reason: str) -> None:
        self._no_face_note = f"No face found: {reason}."
        self.show_status(self._no_face_note, 8000)

    # -- refresh and close ----------------------------------------------------------------

    def refresh_panels(self) -> None:
        """Update the side panel and the status bar from the last frame shown."""
        labels = self.status_labels
        update = self._last
        if update is not None:
            result = update.result
            height, width = result.frame.image.shape[:2]
            labels["source"].setText(f"{self._source_label}  {width}×{height}" if self._settings.details
                                     else self._source_label)
            source_fps = f" / {update.source_fps:.0f}" if update.source_fps else ""
            labels["fps"].setText(f"{update.fps:.1f}{source_fps} fps" if update.fps else f"…{source_fps} fps")
            shown = [stage for stage in STAGES if stage in result.timings_ms and
                     (stage != "record" or self._recording.active)]
            labels["stages"].setText("  ".join(f"{stage} {result.timings_ms[stage]:.1f}" for stage in shown) + " ms")
            count = len(result.faces)
            labels["faces"].setText(f"{count} face{'' if count == 1 else 's'}")
            self.side_panel.refresh()
        state = self._recording
        if state.active:
            elapsed = int(time.monotonic() - state.started_s)
            rows = (update.recorded_rows if update is not None else None) or 0
            text = f"● REC {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}" + (
                f" · {RECORDING_VIDEO_TEXT}" if state.video else "")
            labels["recording"].setText(f"{text}  {rows} rows" if self._settings.details else text)
            self.side_panel.recording_label.setText(f"{text}  {rows} rows\n{state.path}")
        else:
            labels["recording"].setText("not recording")
            self.side_panel.recording_label.setText(self._saved_note or "not recording")

    def snapshot(self) -> QPixmap:
        """The whole window as it looks now, panels and status bar brought up to date first."""
        self.refresh_panels()
        for widget in (self.statusBar(), self.side_panel, self):
            widget.layout().activate()  # new texts resize their fields now, not at the next event loop pass
        return self.grab()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Finish the recording and stop the worker before the window goes."""
        QApplication.instance().removeEventFilter(self)
        for replay in list(self.replays):
            replay.close()
        self.study.close()
        self._refresh_timer.stop()
        self.worker.stop()
        self._store.setValue("window/geometry", self.saveGeometry())
        self._store.setValue("window/splitter", self.splitter.saveState())
        self._store.sync()
        super().closeEvent(event)
