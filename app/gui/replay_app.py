"""``emolens replay SESSION.csv``: the replay window, and its screenshot mode; ``emolens replay STUDY_DIR``:
the study's session list first (its screenshot mode saves the list).

With ``--screenshot`` the window opens at ``--at`` seconds, waits until that frame is painted (or
the chart moved there, without a video) and the stimulus pane's frame, closes and is saved as an image. The
screenshot is refused before the window opens when it is an input or exists (without ``--overwrite``), and is
written whole or not at all (see ``emolens.gui.app.check_screenshot``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from emolens.gui.app import application, check_screenshot, save_screenshot
from emolens.gui.replay_window import ReplayWindow
from emolens.gui.study_sessions_dialog import StudySessionsDialog
from emolens.replay.markers import markers_path
from emolens.replay.recording import Recording, load_recording
from emolens.replay.study_sessions import study_sessions

SCREENSHOT_TIMEOUT_MS = 30_000


def run_replay(args: argparse.Namespace) -> int:
    """See ``emolens.gui.run_replay``.

    Raises:
        EmolensError: the file is not a timeline, or holds no such session; the folder is not a study; the
            screenshot is refused or cannot be written.
    """
    path = Path(args.session_csv)
    if path.is_dir():
        return _replay_from_study(path, args)
    recording = load_recording(path, args.session)
    if args.screenshot:
        check_screenshot(Path(args.screenshot), _inputs(recording), args.overwrite)
    app = application()
    window = ReplayWindow(recording)
    window.show()
    if args.screenshot:
        return _screenshot(window, args.at or 0.0, Path(args.screenshot), args.overwrite)
    if args.at is not None:
        window.seek_time(args.at)
    app.exec()
    return 0


def _replay_from_study(folder: Path, args: argparse.Namespace) -> int:
    """The study's session list; the session chosen is replayed (with ``--screenshot``: the list is saved)."""
    if args.screenshot:
        check_screenshot(Path(args.screenshot), [folder], args.overwrite)
    entries = study_sessions(folder)
    application()
    dialog = StudySessionsDialog(folder, entries)
    if args.screenshot:
        dialog.show()
        shot = dialog.grab()
        dialog.close()
        save_screenshot(shot, Path(args.screenshot), args.overwrite)
        return 0
    if not dialog.exec() or dialog.chosen is None:
        return 0
    args.session_csv, args.session = str(dialog.chosen), 1
    return run_replay(args)


def _inputs(recording: Recording) -> list[Path]:
    """The files a replay reads: the timeline, its markers, its video and the study's stimuli it showed."""
    video = [recording.video.path] if recording.video is not None else []
    stimuli = [stimulus.path for stimulus in recording.stimuli.files.values()]
    return [recording.csv, markers_path(recording.csv), *video, *stimuli]


def wait_for_frame(window: ReplayWindow, frame: int, timeout_ms: int = SCREENSHOT_TIMEOUT_MS) -> bool:
    """Wait (running Qt's events) until ``frame`` is on screen; whether it came before ``timeout_ms``."""
    if window.shown_frame == frame:
        return True
    loop = QEventLoop()
    window.frame_shown.connect(lambda shown: loop.quit() if shown == frame else None)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    return window.shown_frame == frame


def wait_for_stimulus(window: ReplayWindow, timeout_ms: int = SCREENSHOT_TIMEOUT_MS) -> bool:
    """Wait until the stimulus pane (if any) shows the frame asked for; whether it came before ``timeout_ms``."""
    pane = window.stimulus_pane
    if pane is None or not pane.pending:
        return True
    loop = QEventLoop()
    pane.stimulus_shown.connect(lambda *_: loop.quit() if not pane.pending else None)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    return not pane.pending


def _screenshot(window: ReplayWindow, at_s: float, path: Path, overwrite: bool) -> int:
    """Save the window at ``at_s`` once its frames are painted; a frame not decoded in time is one line on
    stderr, exit status 1 and nothing saved."""
    window.seek_time(at_s)
    shown = wait_for_frame(window, window.position) and wait_for_stimulus(window)
    shot = window.snapshot()
    window.close()
    if not shown:
        print(f"emolens: error: frame {window.position} was not decoded in time", file=sys.stderr)
        return 1
    save_screenshot(shot, path, overwrite)
    return 0
