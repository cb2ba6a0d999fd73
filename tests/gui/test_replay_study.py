"""Replay of a study session: the stimulus in a second pane, in step on the rows' ``stimulus_t_s``, and the
study's session list. The study is built with ``emolens study new`` / ``study add`` around the numbered clip of
real faces (analysed once by ``emolens analyze``); the stimulus is a clip whose frames carry their own number."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from emolens.bench.numbered import frame_number, stamp_number, write_numbered_video
from emolens.cli import main
from emolens.evaluation.labels import FER2013_LABELS as LABELS
from emolens.gui.replay_app import wait_for_frame
from emolens.gui.replay_window import ReplayWindow
from emolens.gui.stimulus_pane import BASELINE_TEXT, NONE_TEXT
from emolens.replay.recording import load_recording
from emolens.replay.study_sessions import study_sessions
from tests.replay.fixtures import numbered_session  # noqa: F401 -- the fixture

STIMULUS_AT_S = 1.0  # the stimulus starts 1 s into the session (frame 10 at 10 fps), after a 0.5 s baseline


@pytest.fixture
def study(numbered_session, tmp_path) -> Path:  # noqa: F811
    """A study of one 2 s numbered stimulus at 10 fps and one session (P01), placed at ``STIMULUS_AT_S``."""
    stimulus = write_numbered_video(tmp_path / "ad_a.mp4", (320, 240), faces=1, seconds=2.0, fps=10)
    folder = tmp_path / "adtest"
    assert main(["study", "new", str(folder), "--stimulus", str(stimulus), "--baseline", "0.5"]) == 0
    assert main(["study", "add", str(folder), str(numbered_session), "--participant", "P01",
                 "--stimulus-at", str(STIMULUS_AT_S)]) == 0
    return folder


def open_window(qtbot, csv: Path) -> ReplayWindow:
    window = ReplayWindow(load_recording(csv))
    qtbot.addWidget(window)
    window.show()
    return window


def assert_stimulus_frame(qtbot, window: ReplayWindow, index: int) -> None:
    pane = window.stimulus_pane
    qtbot.waitUntil(lambda: pane.shown == ("ad_a", index), timeout=10_000)
    assert frame_number(pane.view._pixels) == index  # the pixels of that very frame of the stimulus


def test_the_stimulus_pane_shows_the_stimulus_frame_of_the_moment(qtbot, study):
    window = open_window(qtbot, study / "sessions" / "P01.csv")
    assert window.decoder is not None and window.stimulus_pane is not None
    for t_s in (2.3, 1.0, 2.9, 1.6):
        window.seek_time(t_s)
        assert wait_for_frame(window, round(t_s * 10), timeout_ms=10_000)
        assert frame_number(window.video_view._pixels) == round(t_s * 10)  # the session's own frame beside it
        assert_stimulus_frame(qtbot, window, round((t_s - STIMULUS_AT_S) * 10))
    window.seek_time(0.7)
    assert window.stimulus_pane.shown is None and window.stimulus_pane.message.text() == BASELINE_TEXT
    window.seek_time(0.2)
    assert window.stimulus_pane.message.text() == NONE_TEXT
    window.seek_time(3.5)  # the 2 s stimulus ended at 3.0
    assert window.stimulus_pane.shown is None and window.stimulus_pane.message.text() == NONE_TEXT
    window.close()
    assert all(decoder.isFinished() for decoder in window.stimulus_pane._decoders.values())


def test_without_the_session_video_the_chart_and_the_stimulus_play_alone(qtbot, study, tmp_path):
    sessions = study / "sessions"
    rows = sessions.joinpath("P01.csv").read_text().replace(str(tmp_path.parent), "/nowhere")
    sessions.joinpath("P01.csv").write_text(rows)  # the video it was analysed from is not found
    window = open_window(qtbot, sessions / "P01.csv")
    assert window.decoder is None and window.no_video_label.isVisible()
    assert window.no_video_label.text().endswith("the chart and the stimulus play alone")
    window.seek_time(2.4)
    assert window.shown_frame == 24
    assert_stimulus_frame(qtbot, window, 14)
    window.close()


def test_an_image_stimulus_is_shown_as_it_is(qtbot, numbered_session, tmp_path):  # noqa: F811
    poster = tmp_path / "poster.png"
    cv2.imwrite(str(poster), stamp_number(np.full((240, 320, 3), 90, np.uint8), 7))
    folder = tmp_path / "posters"
    assert main(["study", "new", str(folder), "--stimulus", f"{poster}=2"]) == 0
    assert main(["study", "add", str(folder), str(numbered_session), "--participant", "P01", "--stimulus-at", "1"]) == 0
    window = open_window(qtbot, folder / "sessions" / "P01.csv")
    window.seek_time(2.5)
    assert window.stimulus_pane.shown == ("poster", 0) and frame_number(window.stimulus_pane.view._pixels) == 7
    window.close()


def test_a_missing_stimulus_file_is_said_in_the_pane(qtbot, study):
    (study / "stimuli" / "ad_a.mp4").unlink()
    window = open_window(qtbot, study / "sessions" / "P01.csv")
    window.seek_time(2.0)
    assert window.stimulus_pane.shown is None
    assert "ad_a was on screen; its file is not found" in window.stimulus_pane.message.text()
    assert "no stimulus file for ad_a" in window.status_message.text()
    window.close()


@pytest.fixture
def two_sessions(study, numbered_session) -> Path:  # noqa: F811
    """The study with a second session, P02, marked incomplete as a remote participant who left early."""
    assert main(["study", "add", str(study), str(numbered_session), "--participant", "P02",
                 "--stimulus-at", "0.5"]) == 0
    sidecar = study / "sessions" / "P02.json"
    sidecar.write_text(sidecar.read_text().replace('"complete": true', '"complete": false'))
    return study


def test_the_study_session_list_shows_each_session_and_opens_the_chosen_one(qtbot, two_sessions):
    window = open_window(qtbot, two_sessions / "sessions" / "P01.csv")
    dialog = window.open_study(two_sessions)
    table = dialog.table
    cells = [[table.item(row, column).text() for column in range(table.columnCount())]
             for row in range(table.rowCount())]
    assert [row[:2] + row[3:] for row in cells] == [["P01", "1", "complete", "100%"],
                                                    ["P02", "2", "incomplete (ended early)", "100%"]]
    assert cells[0][2][:4].isdigit()  # the date
    dialog.table.selectRow(1)
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    (opened,) = window.others
    assert opened.recording.csv == two_sessions / "sessions" / "P02.csv"
    opened.seek_time(2.0)  # P02's stimulus started at 0.5 s
    assert_stimulus_frame(qtbot, opened, 15)
    window.close()
    assert not opened.isVisible()


def test_the_face_found_share_counts_frames_without_a_face(study):
    rows = pd.read_csv(study / "sessions" / "P01.csv", dtype=str, keep_default_na=False)
    gone = rows["frame"].astype(int).between(10, 14)  # no face during the first half second of the stimulus
    rows.loc[gone, ["face_id", "x", "y", "w", "h", "det_score", *LABELS, "dominant"]] = ""
    rows[~gone | ~rows["frame"].duplicated()].to_csv(study / "sessions" / "P01.csv", index=False)
    (entry,) = study_sessions(study)
    assert entry.face_found == pytest.approx(15 / 20)


def test_replay_of_a_study_folder_lists_its_sessions_and_a_folder_that_is_not_one_is_one_line(two_sessions, tmp_path,
                                                                                              capsys):
    shot = tmp_path / "sessions.png"
    assert main(["replay", str(two_sessions), "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 5_000
    assert main(["replay", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"emolens: error: {tmp_path} is not a study: it has no study.json")
