"""One study session run in the live window: the participant watches the stimuli while the camera is recorded.

The window's camera (or clip) must be open. The session records it into a hidden file in the study's
``sessions/`` (``recording_path``), with every row in stimulus time from the player (``StimulusClock``,
``FollowStimulus``), and shows on the ``StimulusScreen``: a countdown, the study's neutral baseline, then
each stimulus in the session's order (``StudyFile.order_for``). When the last one ends, or the moderator
presses Esc, the recording stops and the session is written into the study as ``emolens study add`` writes
it (``write_session``: ``sessions/<participant>.csv`` and its sidecar, ``complete`` False when ended early);
the hidden recording is then removed (kept, and said, if the session cannot be written).

With the window's "Save the camera video with recordings" on, the camera's video is saved beside
``recording_path`` and moves with the session to ``sessions/<participant>.mp4``, where replay finds it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QScreen

from emolens.errors import EmolensError, error_line
from emolens.gui.stimulus_clock import StimulusClock
from emolens.gui.stimulus_player import StimulusScreen
from emolens.gui.worker import FollowStimulus, RecordingState, StartRecording, StopRecording
from emolens.record import move_without_replacing
from emolens.study.file import load_study
from emolens.study.sessions import (
    SessionInfo,
    check_participant,
    model_line,
    placements_shown,
    session_number,
    write_session,
)

_AFTER_LAST_MS = 500  # the camera goes on this long after the last stimulus, so its "ends" marker has a frame
_WINDOWED_SIZE = (960, 540)


@dataclass(frozen=True)
class SessionOutcome:
    """How a session ended: written (``info``; ``error`` then tells what of it was kept elsewhere, if anything)
    or not (``error``, the recording kept at ``recording``)."""

    info: SessionInfo | None
    error: str = ""
    recording: Path | None = None


class StudySession(QObject):
    """Run one session of the study in ``folder`` for ``participant`` in ``window`` (a ``MainWindow``).

    Args:
        screen: show the stimuli full screen on this screen; None: in a window on the moderator's screen.
        countdown_s: seconds counted down before the baseline.

    Signals:
        finished(object): a ``SessionOutcome``, once.

    Raises (``__init__``):
        EmolensError: no study in ``folder``, a participant ID that is not a plain name or already has a session.
    """

    finished = Signal(object)

    def __init__(self, window, folder: Path, participant: str, screen: QScreen | None = None,
                 countdown_s: int = 3, notes: str = ""):
        super().__init__(window)
        self.folder, self.participant, self.notes = Path(folder), participant, notes
        self.study = load_study(self.folder)
        self.timeline_path, self.sidecar_path = check_participant(self.folder, participant)
        self.number = session_number(self.folder, participant)
        self.order = self.study.order_for(self.number)
        started = datetime.now(timezone.utc)
        self.date = started.isoformat(timespec="seconds")
        self.recording_path = self.timeline_path.with_name(f".{participant}.{started:%Y%m%dT%H%M%S}.recording.csv")
        self._window = window
        self._screen_choice = screen
        self._countdown = countdown_s
        self._next = 0  # the index in ``order`` of the next stimulus
        self._played: set[str] = set()  # the stimuli played to their end
        self._ending = False
        self.complete = False
        self.clock = StimulusClock()
        self.screen = StimulusScreen(self.clock)
        self.screen.stimulus_done.connect(self._on_stimulus_done)
        self.screen.escape_pressed.connect(self.end_early)
        self.screen.failed.connect(self._on_failed)
        # One timer for every step, connected once: connecting a signal takes a lock of Qt's that the player's
        # threads can hold, waiting for the GIL, just after a stimulus stops (see stimulus_player's docstring),
        # and the GUI thread holds the GIL while it connects; starting a timer takes no such lock.
        self._timer = QTimer(self, singleShot=True)
        self._timer.timeout.connect(lambda: self._step())
        self._step: Callable[[], None] = lambda: None

    def start(self) -> None:
        """Start recording the window's source and show the countdown; ``finished`` tells how it ended."""
        worker = self._window.worker
        worker.recording_changed.connect(self._on_recording_changed)
        worker.request(FollowStimulus(self.clock.at))
        worker.request(StartRecording(self.recording_path, save_video=self._window.settings.save_video))
        self._show_screen()
        self._count_down()

    def end_early(self) -> None:
        """Esc: stop the stimulus and keep the session, marked incomplete."""
        if not self._ending:
            self._finish(complete=False)

    # -- the sequence ------------------------------------------------------------------

    def _show_screen(self) -> None:
        if self._screen_choice is None:
            self.screen.resize(*_WINDOWED_SIZE)
            self.screen.show()
        else:
            self.screen.setScreen(self._screen_choice)
            self.screen.move(self._screen_choice.geometry().topLeft())
            self.screen.showFullScreen()
        self.screen.activateWindow()

    def _count_down(self) -> None:
        if self._ending:
            return
        if self._countdown <= 0:
            self._baseline()
            return
        self.screen.show_text(str(self._countdown))
        self._countdown -= 1
        self._after(1.0, self._count_down)

    def _baseline(self) -> None:
        self.screen.show_text("")
        self._after(self.study.baseline_s, self._play_next)

    def _on_stimulus_done(self) -> None:
        self._played.add(self.order[self._next - 1])
        self._play_next()

    def _play_next(self) -> None:
        if self._ending:
            return
        if self._next == len(self.order):
            self._finish(complete=True)
            return
        stimulus = self.study.stimulus(self.order[self._next])
        self._next += 1
        self._window.show_status(f"study: {self.participant} watches {stimulus.name} "
                                 f"({self._next} of {len(self.order)}); Esc ends the session")
        self.screen.play(stimulus, self.folder / stimulus.file)

    def _after(self, seconds: float, then: Callable[[], None]) -> None:
        """Call ``then`` in ``seconds``, in place of any step still waiting (one step at a time)."""
        self._step = then
        self._timer.start(round(seconds * 1000))

    def _on_failed(self, message: str) -> None:
        self._window.show_status(f"study: the stimulus failed: {message}; the session ends", 15000)
        self.end_early()

    def _finish(self, complete: bool) -> None:
        """Stop the stimuli; after a moment (the last frames recorded) stop the recording."""
        self._ending, self.complete = True, complete
        self.screen.show_text("Thank you")
        self._after(_AFTER_LAST_MS / 1000, lambda: self._window.worker.request(StopRecording()))

    # -- the recording -----------------------------------------------------------------

    def _on_recording_changed(self, state: RecordingState) -> None:
        if state.path != self.recording_path:
            return
        if state.active:
            return
        self._window.worker.recording_changed.disconnect(self._on_recording_changed)
        self._window.worker.request(FollowStimulus(None))
        self._ending = True  # also when the camera or the disk failed mid-session: what was recorded is kept
        self._timer.stop()
        self.screen.stimulus_done.disconnect(self._on_stimulus_done)
        self.screen.escape_pressed.disconnect(self.end_early)
        self.screen.close()
        # Freed now by the event loop, which holds no GIL while the player's threads end (see stimulus_player),
        # rather than at exit with the GIL held; nor does each session's player stay open till then.
        self.screen.deleteLater()
        self.finished.emit(self._write(state))

    def _write(self, state: RecordingState) -> SessionOutcome:
        if state.rows == 0:
            return SessionOutcome(None, state.message or "nothing was recorded (is a camera open?)")
        try:
            rows = pd.read_csv(self.recording_path, dtype=str, keep_default_na=False)
            placements = placements_shown(rows, self.study, self._played)
            stimulus_at = placements[0].start_s if placements else float(pd.to_numeric(rows["time_s"]).max())
            info = SessionInfo(participant=self.participant, number=self.number, date=self.date, order=self.order,
                               stimulus_at_s=stimulus_at, placements=placements,
                               baseline_s=([max(stimulus_at - self.study.baseline_s, 0.0), stimulus_at]
                                           if self.study.baseline_s else None),
                               recording=f"Emolens window: {self._window.source_spec}",
                               camera=self._window.source_spec, notes=self.notes,
                               model=model_line(self._window.model), complete=self.complete and not state.message)
            with tempfile.TemporaryDirectory(prefix=".window-", dir=self.timeline_path.parent) as scratch:
                write_session(rows, info, self.timeline_path, self.sidecar_path, Path(scratch))
        except (EmolensError, OSError, ValueError, KeyError) as error:
            return SessionOutcome(None, error_line(error), self.recording_path)
        self.recording_path.unlink(missing_ok=True)
        return SessionOutcome(info, self._move_video(state.video) if state.video else "")

    def _move_video(self, video: Path) -> str:
        """Give the camera video its session's name (where replay looks for it), never over a file; what
        went wrong, or ""."""
        target = self.timeline_path.with_suffix(video.suffix)
        try:
            move_without_replacing(video, target)
        except OSError as error:
            return f"the camera video is kept as {video} ({target.name}: {error.strerror or error})"
        return ""
