"""Markers typed the way a moderator types them, on the real window playing real faces: every key
does what the presets say whatever has focus, and the recording holds every marker, none invented."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from emolens.gui.settings import MARKER_PRESETS

TIMEOUT_MS = 30000


def recorded_markers(path: Path) -> list[str]:
    """The markers of a recording, in order: once per frame (a marker stands on every face row of its frame)."""
    with open(path, encoding="utf-8", newline="") as file:
        marked = dict.fromkeys((row["frame"], row["marker"]) for row in csv.DictReader(file) if row["marker"])
    return [part for _, marker in marked for part in marker.split(" | ")]


@pytest.fixture
def moderator(qtbot, make_window, long_clip):
    """A window playing a clip in real time, active, with the keyboard on the video."""
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=TIMEOUT_MS)
    window.open_source(long_clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    return window


def press(qtbot, window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key pressed on the real keyboard: it goes to whatever widget has focus."""
    qtbot.keyClick(QApplication.focusWidget() or window, key, modifier)


def marked(qtbot, window, count: int) -> None:
    """Wait until the worker has answered ``count`` markers in all (recorded or not)."""
    qtbot.waitUntil(lambda: len(window.side_panel.chart.markers()) >= count, timeout=TIMEOUT_MS)


def test_a_moderator_marks_a_session_without_looking(qtbot, moderator, tmp_path):
    window, panel = moderator, moderator.side_panel
    window.apply_settings(replace(window.settings, recording_folder=str(tmp_path)))
    tau_before = window.settings.tau_s

    press(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: record
    qtbot.waitUntil(lambda: window.recording.active, timeout=TIMEOUT_MS)
    path = window.recording.path
    press(qtbot, window, Qt.Key.Key_1)  # "start", the keyboard on the video
    marked(qtbot, window, 1)

    qtbot.mouseClick(panel.marker_edit, Qt.MouseButton.LeftButton)  # types a marker of her own
    assert panel.marker_edit.hasFocus()
    qtbot.keyClicks(panel.marker_edit, "price 2 shown")  # digits in the field are text
    press(qtbot, window, Qt.Key.Key_Return)
    assert window.video_view.hasFocus() and panel.marker_edit.text() == ""
    press(qtbot, window, Qt.Key.Key_2)  # at once: "ad starts", not a "2" in the field
    marked(qtbot, window, 3)
    assert panel.marker_edit.text() == ""

    panel.smoothing.setFocus()  # Tab took the keyboard to the smoothing box
    press(qtbot, window, Qt.Key.Key_7)  # "ad ends", not 7 s of smoothing
    marked(qtbot, window, 4)
    assert panel.smoothing.value() == tau_before

    panel.selector.setFocus()
    press(qtbot, window, Qt.Key.Key_3)  # "laugh" from the face selector too
    marked(qtbot, window, 5)

    qtbot.mouseClick(window.video_view, Qt.MouseButton.LeftButton)  # a click on the video takes the keys back
    assert window.video_view.hasFocus()

    press(qtbot, window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)  # Ctrl+M, field empty: type one
    assert panel.marker_edit.hasFocus() and "Type the marker" in window.status_message.text()
    qtbot.keyClicks(panel.marker_edit, "logo")
    press(qtbot, window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)  # Ctrl+M adds the typed text
    marked(qtbot, window, 6)
    assert window.video_view.hasFocus()

    with qtbot.waitSignal(window.worker.recording_changed, timeout=TIMEOUT_MS) as stopped:
        press(qtbot, window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Ctrl+R: stop
    assert not stopped.args[0].active and not stopped.args[0].message

    expected = [MARKER_PRESETS[0], "price 2 shown", MARKER_PRESETS[1], MARKER_PRESETS[6], MARKER_PRESETS[2], "logo"]
    assert recorded_markers(path) == expected  # every marker typed, in order, and no invented "marker"
    assert [text for _, text in panel.chart.markers()] == expected


def test_a_marker_outside_a_recording_is_refused_out_loud(qtbot, moderator):
    window = moderator
    with qtbot.waitSignal(window.worker.marker_added, timeout=TIMEOUT_MS) as answered:
        press(qtbot, window, Qt.Key.Key_4)
    assert not answered.args[0].recorded and answered.args[0].text == MARKER_PRESETS[3]
    assert "not recorded" in window.status_message.text() and MARKER_PRESETS[3] in window.status_message.text()
    assert window.side_panel.chart.markers() == []
    press(qtbot, window, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)  # nothing typed, nothing recording
    assert "start one first" in window.status_message.text()


def test_a_marker_sent_right_after_record_goes_into_that_recording(qtbot, moderator, tmp_path):
    window = moderator
    path = tmp_path / "quick.csv"
    window.start_recording(path)
    window.add_marker("at once")  # before the worker has even said the recording started
    qtbot.waitUntil(lambda: bool(window.side_panel.chart.markers()), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.worker.recording_changed, timeout=TIMEOUT_MS):
        window.stop_recording()
    assert recorded_markers(path) == ["at once"]
