from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from emolens.bench.numbered import frame_number, stamp_number
from emolens.errors import EmolensError
from emolens.replay.export import export_clip, export_still, free_path
from emolens.replay.markers import markers_path, replay_markers, save_markers
from emolens.replay.recording import load_recording
from emolens.replay.video import VideoFrames


def test_faces_are_the_timeline_rows_of_the_frame(numbered_session):
    recording = load_recording(numbered_session)
    rows = pd.read_csv(numbered_session)
    for frame in (0, 17, 39):
        faces = recording.faces_at(frame)
        expected = rows[rows["frame"] == frame].sort_values("face_id")
        order = np.argsort(faces.face_id)
        assert faces.face_id[order].tolist() == expected["face_id"].tolist()
        np.testing.assert_allclose(faces.xyxy[order, :2], expected[["x", "y"]], atol=1e-3)
        np.testing.assert_allclose(faces.probs[order], expected[list(recording.labels)], atol=1e-5)


def test_seeking_shows_the_frame_asked_for(numbered_session):
    recording = load_recording(numbered_session)
    with VideoFrames(recording.video.path) as video:
        for frame in (33, 2, 2, 3, 39, 0, 21):
            assert frame_number(video.read(frame)) == frame


def test_a_moved_video_is_found_beside_the_timeline_and_a_missing_one_is_explained(numbered_session, tmp_path):
    rows = pd.read_csv(numbered_session)
    rows["source"] = "/moved/away/session-video.mp4"
    csv = tmp_path / "copy.csv"
    rows.to_csv(csv, index=False)
    missing = load_recording(csv)
    assert missing.video is None and "session-video.mp4 is not found" in missing.why_no_video
    assert missing.faces_at(5).face_id is not None and len(missing.faces_at(5)) == 2  # the chart still plays
    shutil.copy(numbered_session.with_name("session-video.mp4"), tmp_path)
    assert load_recording(csv).video.path == tmp_path / "session-video.mp4"


def test_a_camera_session_without_video_says_why(tmp_path, numbered_session):
    rows = pd.read_csv(numbered_session)
    rows["source"] = "camera 0"
    csv = tmp_path / "live.csv"
    rows.to_csv(csv, index=False)
    recording = load_recording(csv)
    assert recording.video is None and "recorded live and its video was not kept" in recording.why_no_video
    assert recording.frame_at(2.05) == 20 and recording.step_from(20, 1) == 21


def test_markers_go_to_their_own_file_and_the_timeline_is_never_written(numbered_session, tmp_path):
    csv = tmp_path / "s.csv"
    shutil.copy(numbered_session, csv)
    before = csv.read_bytes()
    recording = load_recording(csv)
    markers = pd.DataFrame({"time_s": [1.5, 0.5], "text": ["=logo", "ad starts"]})
    save_markers(markers_path(csv), markers)
    assert csv.read_bytes() == before
    assert markers_path(csv).read_text().splitlines() == ["time,label", "1.500,'=logo", "0.500,ad starts"]
    assert replay_markers(recording).to_dict("list") == {"time_s": [0.5, 1.5], "text": ["ad starts", "=logo"]}
    save_markers(markers_path(csv), markers.iloc[:0])
    assert replay_markers(recording).empty


def test_exports_never_replace_a_file(numbered_session, tmp_path):
    recording = load_recording(numbered_session)
    taken = tmp_path / "moment.png"
    taken.write_bytes(b"the client's own file")
    still = export_still(recording, 1.0, taken)
    assert still == tmp_path / "moment-2.png" and taken.read_bytes() == b"the client's own file"
    clip = export_clip(recording, 1.0, 2.0, tmp_path / "moment.mp4")
    with VideoFrames(clip) as video:
        assert frame_number(video.read(0)) == 10  # the in point's frame first
    assert free_path(clip) == tmp_path / "moment-2.mp4"
    with pytest.raises(EmolensError, match="holds no frame"):
        export_clip(recording, 2.0, 2.0, tmp_path / "empty.mp4")
    assert not (tmp_path / "empty.mp4").exists()


def test_no_such_session_is_one_line(numbered_session):
    with pytest.raises(EmolensError, match="holds 1 session"):
        load_recording(numbered_session, session=2)


@pytest.mark.parametrize("number", [0, 1, 65535, 65536, 107_999])  # one hour at 30 fps reaches 107,999
def test_a_frame_number_reads_back_as_stamped(number):
    image = np.full((240, 320, 3), 96, np.uint8)
    assert frame_number(stamp_number(image, number)) == number
