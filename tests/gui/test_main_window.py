"""The real window on a video of real faces: display, recording, markers, sources that end or fail, settings."""

import csv
from dataclasses import replace
from pathlib import Path

import cv2
import pytest
from PySide6.QtCore import Qt

from emolens import sources as sources_module
from emolens.card import ModelCard
from emolens.gui import main_window as main_window_module
from emolens.gui.settings import load_settings
from emolens.record import timeline_columns
from emolens.sources import SourceLost, VideoSource

from .helpers import LABELS

TIMEOUT_MS = 30000


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "the file must end with a complete line"
    reader = csv.DictReader(text.splitlines())
    return reader.fieldnames, list(reader)


def rows_recorded(window) -> int:
    return window._last.recorded_rows or 0


def recorded(window, path: Path, qtbot, min_rows: int = 1) -> None:
    window.start_recording(path)
    qtbot.waitUntil(lambda: window.recording.active, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: rows_recorded(window) >= min_rows, timeout=TIMEOUT_MS)


def test_faces_appear_with_ids_and_scores(qtbot, make_window, clip):
    window = make_window()
    window.open_source(clip)
    with qtbot.waitSignal(window.video_view.frame_painted, timeout=TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: len(window.video_view.faces) == 2, timeout=TIMEOUT_MS)
    faces = window.video_view.faces
    assert sorted(faces.face_id.tolist()) == [1, 2]
    assert faces.smoothed.shape == (2, len(LABELS))
    assert faces.smoothed.sum(axis=1) == pytest.approx([1, 1], abs=1e-3)
    window.details_action.trigger()  # the engineer's fields
    status = {name: label.text() for name, label in window.status_labels.items()}
    assert "320×240" in status["source"] and status["provider"] in ("CPU", "CUDA")
    assert status["faces"] == "2 faces" and status["fps"].endswith("/ 10 fps")
    assert all(stage in status["stages"] for stage in ("detect", "crop", "classify", "track"))
    assert [window.side_panel.selector.itemText(i) for i in range(3)] == ["mean of all faces", "face #1", "face #2"]
    assert len(window.side_panel.chart.series(None)[0]) > 0
    assert not window.message_panel.isVisible()


def test_recording_writes_rows_and_markers(qtbot, make_window, clip, tmp_path):
    window = make_window()
    window.open_source(clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    path = tmp_path / "session.csv"
    recorded(window, path, qtbot)
    qtbot.keyClicks(window.side_panel.marker_edit, "ad starts")
    qtbot.mouseClick(window.side_panel.marker_button, Qt.MouseButton.LeftButton)
    window.side_panel.record_button.setFocus()
    qtbot.keyClick(window.side_panel.record_button, Qt.Key.Key_3)  # preset 3: "laugh"
    qtbot.waitUntil(lambda: rows_recorded(window) >= 6, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.worker.recording_changed, timeout=TIMEOUT_MS) as stopped:
        qtbot.mouseClick(window.side_panel.record_button, Qt.MouseButton.LeftButton)
    state = stopped.args[0]
    assert not state.active and state.path == path and state.rows >= 6 and not state.message
    columns, rows = read_rows(path)
    assert columns == timeline_columns(ModelCard.load().labels)
    assert len(rows) == state.rows
    assert {row["face_id"] for row in rows} == {"1", "2"}
    # A marker stands on every face row of its frame (filtering by face_id keeps it): one per frame here.
    marked = dict.fromkeys((row["frame"], row["marker"]) for row in rows if row["marker"])
    assert " | ".join(marker for _, marker in marked) == "ad starts | laugh"  # one frame may hold both
    assert [marker for _, marker in window.side_panel.chart.markers()] == ["ad starts", "laugh"]
    assert window.side_panel.record_button.text() == "● Record"


def test_open_report_after_a_recording_stops(qtbot, make_window, clip, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(main_window_module.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    window = make_window()
    window.open_source(clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    assert not window.report_action.isEnabled()
    recorded(window, tmp_path / "session.csv", qtbot, min_rows=4)
    marked_at = rows_recorded(window)
    window.add_marker("ad starts")
    qtbot.waitUntil(lambda: rows_recorded(window) >= marked_at + 4, timeout=TIMEOUT_MS)  # frames after the marker
    with qtbot.waitSignal(window.worker.recording_changed, timeout=TIMEOUT_MS):
        window.stop_recording()
    assert window.report_action.isEnabled() and not window.report_button.isHidden()
    with qtbot.waitSignal(window.report_ready, timeout=60_000) as ready:
        qtbot.mouseClick(window.report_button, Qt.MouseButton.LeftButton)
    page = ready.args[0]
    assert page == tmp_path / "session_report" / "report.html" and page.is_file()
    assert opened == [str(page)]
    assert "ad starts" in page.read_text(encoding="utf-8")


def test_a_report_that_fails_is_one_line_in_the_window(qtbot, make_window, clip, tmp_path, monkeypatch):
    import emolens.report
    from tests.report.test_report import oversized_chart

    monkeypatch.setattr(emolens.report, "emotion_chart", oversized_chart)
    window = make_window()
    window.open_source(clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    recorded(window, tmp_path / "session.csv", qtbot, min_rows=4)
    with qtbot.waitSignal(window.worker.recording_changed, timeout=TIMEOUT_MS):
        window.stop_recording()
    with qtbot.waitSignal(window.report_ready, timeout=60_000) as ready:
        window.open_report()
    assert isinstance(ready.args[0], str) and "Format 'nope'" in ready.args[0]
    assert window.status_message.text().startswith("no report: cannot build the report: unexpected error")
    assert window.report_button.isEnabled()  # the user may try again


def test_closing_the_window_finishes_the_recording(qtbot, make_window, clip, tmp_path):
    window = make_window()
    window.open_source(clip)
    path = tmp_path / "closed.csv"
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    recorded(window, path, qtbot)
    window.add_marker("bye")
    window.close()
    assert window.worker.isFinished()
    _, rows = read_rows(path)
    assert rows and rows[-1]["marker"] == "bye"


def test_the_end_of_a_file_is_reported_and_the_recording_closed(qtbot, make_window, short_clip, tmp_path):
    window = make_window()
    window.open_source(short_clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS) as ended:
        window.start_recording(tmp_path / "end.csv")
    assert not ended.args[0].failed
    assert window.message_panel.isVisible() and window.message_panel.title.text() == "Finished"
    assert "Recording saved" in window.message_panel.text.text()
    assert not window.recording.active and window.recording.rows > 0
    _, rows = read_rows(tmp_path / "end.csv")
    assert len(rows) == window.recording.rows
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.message_panel.retry_button, Qt.MouseButton.LeftButton)  # "Play again"
    assert not window.message_panel.isVisible()


@pytest.mark.parametrize(("spec", "title", "retry"), [
    ("missing.mp4", "Cannot open", "Try again"),
    ("9", "No camera", "Try camera 9 again"),
])
def test_a_source_that_fails_is_reported_in_the_window(qtbot, make_window, tmp_path, spec, title, retry):
    window = make_window()
    spec = str(tmp_path / spec) if not spec.isdigit() else spec
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS):
        window.open_source(spec)
    panel = window.message_panel
    assert panel.isVisible() and panel.title.text() == title and panel.retry_button.text() == retry
    assert panel.open_button.isVisible() and panel.demo_button.isVisible()
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(panel.demo_button, Qt.MouseButton.LeftButton)
    assert not panel.isVisible() and window.isVisible()


class FlakyCamera(VideoSource):
    """A camera made of a video file, unplugged when ``unplug`` is set."""

    unplug = None

    def __init__(self, index, size_wh=None):
        super().__init__(Path(FlakyCamera.clip))
        self.name, self.live = f"camera {index}", True

    def __iter__(self):
        for frame in super().__iter__():
            if FlakyCamera.unplug.is_set():
                raise SourceLost(f"{self.name} stopped delivering frames (unplugged or taken by another program)")
            yield frame


def test_a_lost_camera_keeps_the_recording_and_reconnects(qtbot, make_window, clip, tmp_path, monkeypatch):
    import threading

    FlakyCamera.clip, FlakyCamera.unplug = clip, threading.Event()
    monkeypatch.setattr(sources_module, "CameraSource", FlakyCamera)
    window = make_window()
    window.open_source("0")
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    assert window.video_view._mirror  # cameras are mirrored by default
    recorded(window, tmp_path / "lost.csv", qtbot)
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS) as ended:
        FlakyCamera.unplug.set()
    assert ended.args[0].failed
    assert window.message_panel.title.text() == "Camera lost"
    assert "Recording saved" in window.message_panel.text.text()
    _, rows = read_rows(tmp_path / "lost.csv")
    assert len(rows) == window.recording.rows > 0
    FlakyCamera.unplug.clear()
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(window.message_panel.retry_button, Qt.MouseButton.LeftButton)  # "Reconnect"
    assert not window.message_panel.isVisible()


def test_settings_survive_a_restart(qtbot, make_window, store, tmp_path):
    window = make_window()
    window.side_panel.smoothing.setValue(1.5)
    window.mirror_action.trigger()
    presets = tuple(f"preset {i}" for i in range(1, 10))
    window.apply_settings(replace(window.settings, camera=2, resolution="1280x720", min_confidence=0.3, max_faces=6,
                                  detector="full", recording_folder=str(tmp_path / "rec"), marker_presets=presets))
    expected = window.settings
    window.close()
    again = make_window()
    assert again.settings == expected and expected.tau_s == 1.5 and not expected.mirror
    assert again.side_panel.smoothing.value() == 1.5 and not again.mirror_action.isChecked()
    assert not any(action.isChecked() for action in again.camera_actions)  # no source yet
    again.open_source()  # the saved camera
    assert [action.isChecked() for action in again.camera_actions] == [False, False, True, False, False]
    assert again.settings.recording_path().parent == tmp_path / "rec"
    again.close()
    override = make_window(overrides={"tau_s": 0.0, "device": "cpu"})
    assert override.settings.tau_s == 0.0 and override.side_panel.smoothing.value() == 0.0
    assert load_settings(store).tau_s == 1.5  # the command line counts for one run only


def test_presenter_mode_is_full_screen_with_larger_labels(qtbot, make_window):
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    normal = window.video_view.label_pixels()
    qtbot.keyClick(window, Qt.Key.Key_F11)
    assert window.presenter_action.isChecked() and not window.menuBar().isVisible()
    assert window.video_view.label_pixels() > normal
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.presenter_action.isChecked() and window.menuBar().isVisible()



def test_a_pipeline_that_cannot_start_is_reported_in_the_window(qtbot, make_window, tmp_path, clip):
    window = make_window(overrides={"model": str(tmp_path / "missing.json")})
    with qtbot.waitSignal(window.failed, timeout=TIMEOUT_MS) as failed:
        window.open_source(clip)
    assert "model card not found" in failed.args[0]
    panel = window.message_panel
    assert panel.isVisible() and panel.title.text() == "The pipeline could not start"
    assert failed.args[0] in panel.text.text() and panel.retry_button.text() == "Try again"


def test_a_new_pipeline_setting_rebuilds_the_analyzer_and_playback_goes_on(qtbot, make_window, clip, tmp_path):
    window = make_window()
    window.open_source(clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    recorded(window, tmp_path / "rebuild.csv", qtbot)
    with qtbot.waitSignal(window.worker.analyzer_ready, timeout=TIMEOUT_MS):
        window.apply_settings(replace(window.settings, max_faces=1))
    qtbot.waitUntil(lambda: len(window.video_view.faces) == 1, timeout=TIMEOUT_MS)
    assert window.recording.active and not window.message_panel.isVisible()


def test_the_accurate_model_chosen_in_preferences_reads_the_faces_and_is_remembered(qtbot, make_window, clip, store):
    window = make_window()
    window.open_source(clip)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    with qtbot.waitSignal(window.worker.analyzer_ready, timeout=TIMEOUT_MS) as ready:
        window.apply_settings(replace(window.settings, model="accurate"))
    assert "emotion-accurate.onnx" in ready.args[0].description and window.model == "accurate"
    qtbot.waitUntil(lambda: window._last is not None and len(window._last.result.faces) == 2, timeout=TIMEOUT_MS)
    assert load_settings(store).model == "accurate"


def test_the_camera_menu_ticks_no_camera_while_a_folder_plays(qtbot, make_window, tmp_path, astronaut):
    import cv2

    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), astronaut)
    window = make_window()
    window.open_source("0")
    assert window.camera_actions[0].isChecked()
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS):
        window.open_source(str(folder))
    assert not any(action.isChecked() for action in window.camera_actions)
    window.retry()  # replaying the folder ticks no camera either
    assert not any(action.isChecked() for action in window.camera_actions)


def test_status_bar_fields_keep_their_text_beside_a_long_message(qtbot, make_window, clip):
    window = make_window()
    window.resize(1000, 700)
    window.details_action.trigger()  # every field shown: the most crowded status bar
    window.open_source(clip)
    qtbot.waitUntil(lambda: window._last is not None and len(window._last.result.faces) == 2, timeout=TIMEOUT_MS)
    path = "/home/moderator/Documents/Emolens/" + "focus group of the first of december/" * 4 + "session-1.csv"
    window.show_status(f"recording to {path}")
    window.snapshot()  # what --screenshot saves: the fields have their new texts laid out
    fields = [label for label in window.status_labels.values() if label.text() and label.isVisibleTo(window)]
    assert len(fields) >= 5
    for label in fields:
        assert label.width() >= label.sizeHint().width(), (label.text(), label.width())
    message = window.status_message
    assert message.geometry().right() < min(label.geometry().left() for label in fields)
    shown = message.displayed_text()
    assert "…" in shown and shown.endswith("session-1.csv") and shown.startswith("recording to")


def visible_fields(window) -> dict[str, str]:
    return {name: label.text() for name, label in window.status_labels.items() if label.isVisibleTo(window)}


def test_the_status_bar_is_simple_until_view_details(qtbot, make_window, clip, store, tmp_path):
    """Source, faces and recording by default; device, fps and stage timings behind View → Details, remembered."""
    window = make_window()
    window.open_source(clip)
    qtbot.waitUntil(lambda: len(window.video_view.faces) == 2, timeout=TIMEOUT_MS)
    window.refresh_panels()
    assert visible_fields(window) == {"source": "clip.mp4", "faces": "2 faces", "recording": "not recording"}
    recorded(window, tmp_path / "session.csv", qtbot)
    window.refresh_panels()
    assert visible_fields(window)["recording"].startswith("● REC 0:00:0")
    window.details_action.trigger()
    fields = visible_fields(window)
    assert fields.keys() == {"source", "provider", "fps", "stages", "faces", "recording"}
    assert "320×240" in fields["source"] and "detect" in fields["stages"] and "rows" in fields["recording"]
    assert load_settings(store).details
    window.close()
    again = make_window()
    assert again.details_action.isChecked() and set(visible_fields(again)) == set(fields)


def test_the_box_and_the_side_panel_show_the_same_numbers(qtbot, make_window, clip):
    """Every frame: the side panel's bars hold the scores the boxes show (the smoothed ones, which it says)."""
    window = make_window()
    same: list[bool] = []
    window.frame_shown.connect(lambda _: same.append(
        len(window.video_view.faces) > 0 and window.side_panel.face_scores.faces is window.video_view.faces))
    window.open_source(clip)
    qtbot.waitUntil(lambda: sum(same) >= 10, timeout=TIMEOUT_MS)
    assert all(same[-10:])
    tau = window.settings.tau_s
    assert window.side_panel.scores_caption.text() == f"Scores smoothed over {tau:.1f} s, as on the video " \
                                                      f"(raw in recordings)"
    window.side_panel.smoothing.setValue(0.0)
    assert window.side_panel.scores_caption.text() == "Raw scores, as on the video and in recordings"


def test_presenter_mode_shows_the_top_emotions_large(qtbot, make_window, clip):
    """F11: a panel with the group's (or the selected face's) top emotions, its first line a twelfth of the
    video area's height: readable from across a room."""
    window = make_window()
    window.open_source(clip)
    qtbot.waitUntil(lambda: len(window.video_view.faces) == 2, timeout=TIMEOUT_MS)
    window.set_presenter(True)
    panel = window.presenter_panel
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    assert panel.isVisible()
    assert panel.font().pixelSize() >= window.height() / 14 and panel.font().pixelSize() >= 24
    faces, labels = window.video_view.faces, window.presenter_panel._labels
    mean = faces.smoothed.mean(axis=0)
    assert "all faces" in panel.text() and f"{labels[mean.argmax()]} {mean.max():.0%}" in panel.text()
    window.side_panel.select(2)
    qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT_MS).wait()
    faces = window.video_view.faces
    scores = faces.smoothed[list(faces.face_id).index(2)]
    assert "#2" in panel.text() and f"{labels[scores.argmax()]} {scores.max():.0%}" in panel.text()
    window.set_presenter(False)
    assert not panel.isVisible()


def test_a_photo_without_a_face_says_why(qtbot, make_window, astronaut, tmp_path):
    from tests.test_diagnose import darkened

    photo = tmp_path / "dark.jpg"
    cv2.imwrite(str(photo), darkened(astronaut), [cv2.IMWRITE_JPEG_QUALITY, 95])
    window = make_window()
    with qtbot.waitSignal(window.source_ended, timeout=TIMEOUT_MS):
        window.open_source(str(photo))
    assert "No face found: too dark (mean brightness 6 of 255)." in window.message_panel.text.text()


def test_the_chart_span_is_remembered(qtbot, make_window, store):
    window = make_window()
    assert window.side_panel.chart.window_s == 60.0
    span = window.side_panel.span
    span.setCurrentIndex(span.findText("whole session"))
    assert window.side_panel.chart.window_s is None and load_settings(store).chart_span_s == 0.0
    window.close()
    assert make_window().side_panel.span.currentText() == "whole session"


def test_a_report_finished_after_its_window_was_freed_is_written_without_a_traceback(qtbot, store, tmp_path):
    """The report is built on a thread of its own; if the window was closed and freed meanwhile, telling it the
    report is ready used to raise in that thread (a traceback on the terminal)."""
    import shiboken6
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from emolens.cli import main

    timeline = tmp_path / "session.csv"
    assert main(["analyze", str(Path("assets") / "astronaut.jpg"), "-o", str(timeline)]) == 0
    window = main_window_module.MainWindow(store)
    window.close()
    window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(window)  # the C++ window is gone, its Python wrapper is not
    window._build_report(timeline)  # what the report thread runs
    assert (tmp_path / "session_report" / "report.html").is_file()
