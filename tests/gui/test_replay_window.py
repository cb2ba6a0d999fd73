"""The replay window, driven as a moderator would: seek, step, play, markers, export, on a clip
whose frames carry their own number (analysed by ``emolens analyze``)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt

from emolens.bench.numbered import frame_number
from emolens.cli import main
from emolens.gui.replay_app import wait_for_frame
from emolens.gui.replay_window import ReplayWindow
from emolens.replay.markers import markers_path
from emolens.replay.recording import load_recording
from emolens.replay.video import VideoFrames
from tests.replay.fixtures import numbered_session  # noqa: F401 -- the fixture


@pytest.fixture
def session(numbered_session, tmp_path):  # noqa: F811
    """A copy of the numbered session (the timeline and its video) that a test may mark and export into."""
    shutil.copy(numbered_session.with_name("session-video.mp4"), tmp_path)
    rows = pd.read_csv(numbered_session)
    rows["source"] = "session-video.mp4"  # found beside the timeline
    rows.to_csv(tmp_path / "session.csv", index=False)
    return tmp_path / "session.csv"


@pytest.fixture
def replay(qtbot, session):
    window = ReplayWindow(load_recording(session))
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()  # the keys go to the active window (on a real X server too)
    qtbot.waitUntil(window.isActiveWindow, timeout=10_000)
    yield window
    window.close()
    assert window.decoder.isFinished(), "the decoder thread outlived its window"


def shown_number(window: ReplayWindow) -> int:
    return frame_number(window.video_view._pixels)


def assert_frame_and_rows_agree(window: ReplayWindow, frame: int) -> None:
    assert wait_for_frame(window, frame, timeout_ms=10_000)
    assert shown_number(window) == frame
    rows = window.recording.timeline.faces
    expected = rows[rows["frame"] == frame].sort_values("face_id")
    faces = window.video_view.faces
    order = np.argsort(faces.face_id)
    assert faces.face_id[order].tolist() == expected["face_id"].tolist()
    np.testing.assert_allclose(faces.smoothed[order], expected[list(window.recording.labels)], atol=1e-6)


def test_seeking_shows_the_frame_and_the_rows_of_that_frame(replay):
    for t_s in (2.3, 0.0, 3.9, 1.0):
        replay.seek_time(t_s)
        assert_frame_and_rows_agree(replay, round(t_s * 10))


def test_a_click_on_the_chart_seeks_and_keys_step(replay, qtbot):
    chart = replay.chart
    plot = chart.plot_rect()
    qtbot.mouseClick(chart, Qt.MouseButton.LeftButton, pos=QPoint(int(chart.x_of(3.0)), int(plot.center().y())))
    frame = replay.position
    assert abs(frame - 30) <= 1
    assert_frame_and_rows_agree(replay, frame)
    qtbot.keyClick(replay, Qt.Key.Key_Right)
    assert_frame_and_rows_agree(replay, frame + 1)
    qtbot.keyClick(replay, Qt.Key.Key_Left)
    qtbot.keyClick(replay, Qt.Key.Key_Left)
    assert_frame_and_rows_agree(replay, frame - 1)


def test_playing_moves_forward_and_stops_at_the_end(replay, qtbot):
    replay.seek_time(3.0)
    qtbot.keyClick(replay, Qt.Key.Key_Space)
    assert replay.direction == 1
    qtbot.waitUntil(lambda: replay.direction == 0, timeout=10_000)  # paused by itself at the last frame
    assert replay.position == replay.recording.last_frame == 39
    assert_frame_and_rows_agree(replay, 39)


def test_markers_added_renamed_and_deleted_are_saved_beside_the_untouched_timeline(replay, session, qtbot):
    before = session.read_bytes()
    replay.seek_time(1.5)
    replay.marker_edit.setText("logo shown")
    qtbot.keyClick(replay.marker_edit, Qt.Key.Key_Return)
    replay.seek_time(0.5)
    replay.add_marker(replay.position_s, "ad starts")
    assert replay.marker_list.count() == 2 and replay.marker_list.item(0).text() == "0:00  ad starts"
    replay.rename_marker(1, "logo")
    assert markers_path(session).read_text().splitlines() == ["time,label", "0.500,ad starts", "1.500,logo"]
    replay.delete_marker(0)
    assert markers_path(session).read_text().splitlines() == ["time,label", "1.500,logo"]
    assert session.read_bytes() == before
    reopened = ReplayWindow(load_recording(session))
    qtbot.addWidget(reopened)
    assert reopened.markers.to_dict("list") == {"time_s": [1.5], "text": ["logo"]}
    assert reopened.chart.markers_shown() == [(1.5, "logo")]
    reopened.close()


def test_export_writes_the_clip_between_in_and_out_and_a_still(replay, session):
    assert replay.export_clip() is None  # no in and out points yet: says so
    assert "in point" in replay.status_message.text()
    replay.seek_time(1.0)
    replay.set_in()
    replay.seek_time(2.0)
    replay.set_out()
    clip = replay.export_clip()
    assert clip == session.with_name("session_0m01s-0m02s.mp4")
    with VideoFrames(clip) as video:
        assert [frame_number(video.read(i)) for i in (0, 10)] == [10, 20]
    still = replay.export_still()
    assert still == session.with_name("session_0m02s.png")
    assert replay.export_still() == session.with_name("session_0m02s-2.png")  # never over the first


def test_without_a_video_the_chart_plays_alone_and_says_why(qtbot, session):
    session.with_name("session-video.mp4").unlink()
    window = ReplayWindow(load_recording(session))
    qtbot.addWidget(window)
    window.show()
    assert window.decoder is None and window.no_video_label.isVisible()
    assert "session-video.mp4 is not found" in window.no_video_label.text()
    window.seek_time(2.0)
    assert window.shown_frame == 20
    assert not window.clip_button.isEnabled()
    window.close()


def test_replay_screenshot_renders_the_moment(session, tmp_path):
    out = tmp_path / "replay.png"
    assert main(["replay", str(session), "--at", "2.5", "--screenshot", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_replay_of_a_file_that_is_not_a_timeline_is_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.csv"
    bad.write_text("hello,world\n1,2\n")
    assert main(["replay", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("emolens: error: ")


def test_the_demo_recorded_in_the_window_opens_in_replay(qtbot, make_window, tmp_path):
    """A newcomer's path: the demo clip, record, stop, Open replay: the recorded frames come back with their faces."""
    window = make_window()
    window.open_demo()
    qtbot.waitSignal(window.frame_shown, timeout=30_000).wait()
    assert window.replay_button.isHidden()
    window.start_recording(tmp_path / "demo-session.csv")
    qtbot.waitUntil(lambda: (window._last.recorded_rows or 0) >= 6, timeout=30_000)
    with qtbot.waitSignal(window.worker.recording_changed, timeout=30_000):
        window.stop_recording()
    assert not window.replay_button.isHidden()
    qtbot.mouseClick(window.replay_button, Qt.MouseButton.LeftButton)
    (replay,) = window.replays
    assert replay.recording.video is not None  # the demo clip the window played
    frame = int(replay.recording.processed[len(replay.recording.processed) // 2])
    replay.seek_frame(frame)
    assert wait_for_frame(replay, frame, timeout_ms=10_000)
    rows = replay.recording.timeline.faces
    assert sorted(replay.video_view.faces.face_id) == sorted(rows.loc[rows["frame"] == frame, "face_id"])
    assert len(replay.video_view.faces) > 0


def test_open_replay_of_a_bad_file_is_one_line_in_the_status_bar(make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "notes.csv"
    bad.write_text("hello,world\n")
    assert window.open_replay(bad) is None
    assert window.status_message.text().startswith(f"no replay: {bad} is not an Emolens timeline")
