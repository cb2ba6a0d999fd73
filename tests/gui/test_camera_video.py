"""The camera video saved beside a window recording ("Save the camera video with recordings", ``--save-video``):
one video frame per timeline frame, written under a hidden name until the recording stops, never over a file,
said on screen while on, and replayed with each frame's own faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emolens.bench.numbered import frame_number, write_numbered_video
from emolens.cli import build_parser
from emolens.gui.main_window import demo_clip
from emolens.gui.replay_app import wait_for_frame
from emolens.gui.replay_window import ReplayWindow
from emolens.gui.settings import RECORDING_VIDEO_TEXT, load_settings, overrides_from_args
from emolens.replay.recording import load_recording
from emolens.replay.video import VideoFrames


def record_with_video(qtbot, make_window, source: str, csv: Path, rows: int | None = None):
    """Record ``source`` in the window with the option on: until ``rows`` rows, or until the source ends."""
    window = make_window(overrides={"save_video": True})
    window.open_source(source)
    qtbot.waitSignal(window.frame_shown, timeout=30_000).wait()
    with qtbot.waitSignal(window.worker.recording_changed, timeout=30_000):
        window.start_recording(csv)
    assert window.recording.video == csv.with_suffix(".mp4")
    window.refresh_panels()
    assert RECORDING_VIDEO_TEXT in window.status_labels["recording"].text()  # said on screen while on
    assert not csv.with_suffix(".mp4").exists()  # only the hidden partial until the recording stops
    assert csv.with_name(f".{csv.stem}.mp4.partial.mp4").exists() or window.recording.rows == 0
    if rows is None:
        qtbot.waitUntil(lambda: not window.recording.active, timeout=60_000)  # the clip ended: recording stopped
    else:
        qtbot.waitUntil(lambda: (window._last.recorded_rows or 0) >= rows, timeout=30_000)
        with qtbot.waitSignal(window.worker.recording_changed, timeout=30_000):
            window.stop_recording()
    assert window.recording.video == csv.with_suffix(".mp4") and window.recording.message == ""
    assert sorted(path.name for path in csv.parent.iterdir()) == sorted([csv.name, f"{csv.stem}.mp4"])
    return window


def as_camera_session(csv: Path, folder: Path) -> Path:
    """The timeline and its video moved into ``folder`` with the source a camera: replay has only the saved video."""
    folder.mkdir()
    shutil.copy(csv.with_suffix(".mp4"), folder / "session.mp4")
    rows = pd.read_csv(csv)
    rows["source"] = "camera 0"
    rows.to_csv(folder / "session.csv", index=False)
    return folder / "session.csv"


def test_the_saved_video_holds_the_frame_of_each_timeline_frame(qtbot, make_window, tmp_path):
    clip = write_numbered_video(tmp_path / "numbered.mp4", (320, 240), faces=2, seconds=4.0, fps=10)
    out = tmp_path / "out"
    out.mkdir()
    record_with_video(qtbot, make_window, str(clip), out / "take.csv")
    timeline = pd.read_csv(out / "take.csv")
    frames = timeline["frame"].drop_duplicates().tolist()
    with VideoFrames(out / "take.mp4") as video:
        shown = [frame_number(video.read(index)) for index in range(len(frames))]
        assert video.read(len(frames)) is None  # no frame more than the timeline has
    assert shown == frames  # the i-th video frame is the i-th frame with rows, whatever was skipped

    recording = load_recording(as_camera_session(out / "take.csv", tmp_path / "camera"))
    assert recording.per_row and recording.video.frame_count == len(frames)
    replay = ReplayWindow(recording)
    qtbot.addWidget(replay)
    replay.show()
    for frame in (frames[len(frames) // 2], frames[-1], frames[1]):
        replay.seek_frame(frame)
        assert wait_for_frame(replay, frame, timeout_ms=10_000)
        assert frame_number(replay.video_view._pixels) == frame
        rows = recording.timeline.faces[recording.timeline.faces["frame"] == frame].sort_values("face_id")
        faces = replay.video_view.faces
        assert sorted(faces.face_id) == rows["face_id"].tolist() and len(faces) == 2
    replay.close()


def test_a_few_seconds_of_the_demo_recorded_with_its_video_replay_from_that_video(qtbot, make_window, tmp_path):
    window = record_with_video(qtbot, make_window, demo_clip(), tmp_path / "demo-session.csv", rows=20)
    recording = load_recording(as_camera_session(tmp_path / "demo-session.csv", tmp_path / "camera"))
    assert recording.per_row and recording.video.frame_count == len(recording.processed)
    first, last = (int(recording.processed[k]) for k in (0, -1))
    assert recording.time_of(last) - recording.time_of(first) == pytest.approx(
        recording.processed_s[-1] - recording.processed_s[0])  # played on the timeline's clock
    with VideoFrames(tmp_path / "camera" / "session.mp4") as saved, VideoFrames(Path(demo_clip())) as demo:
        middle = len(recording.processed) // 2
        image = saved.read(middle).astype(int)
        differences = [np.abs(image - demo.read(int(recording.processed[middle]) + shift).astype(int)).mean()
                       for shift in (0, 10)]
    assert differences[0] < 5 < differences[1]  # the demo's frame of that row, not another
    window.close()


def test_an_existing_video_is_never_replaced_and_the_recording_says_so(qtbot, make_window, tmp_path):
    csv = tmp_path / "take.csv"
    csv.with_suffix(".mp4").write_bytes(b"an earlier session's video")
    window = make_window(overrides={"save_video": True})
    window.open_demo()
    qtbot.waitSignal(window.frame_shown, timeout=30_000).wait()
    with qtbot.waitSignal(window.worker.recording_changed, timeout=30_000):
        window.start_recording(csv)
    assert not window.recording.active and "take.mp4 already exists" in window.recording.message
    assert csv.with_suffix(".mp4").read_bytes() == b"an earlier session's video" and not csv.exists()


def test_the_option_is_off_by_default_kept_in_the_settings_and_set_by_save_video(qtbot, make_window, store):
    assert not load_settings(store).save_video
    assert overrides_from_args(build_parser().parse_args(["--save-video"])) == {"save_video": True}
    assert overrides_from_args(build_parser().parse_args([])) == {}
    window = make_window()
    assert not window.save_video_action.isChecked()
    window.save_video_action.trigger()
    assert window.settings.save_video and load_settings(store).save_video
