"""A whole study session in the real window: the demo clip of real faces as the camera, a short stimulus with
a tone played by Qt Multimedia (FFmpeg backend, no audio device needed), then ``emolens study report``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from emolens.gui.main_window import demo_clip
from emolens.gui.study_dialog import multimedia_missing

pytest.importorskip("av", reason="the stimulus with sound is written with PyAV (the study extra)")
pytestmark = pytest.mark.skipif(multimedia_missing(), reason="Qt Multimedia is in PySide6-Addons (the study extra)")

RATE = 48000
STIMULUS_S = 2.0


@pytest.fixture
def study(tmp_path):
    """A study of one 2 s stimulus (real faces, numbered frames, a 440 Hz tone) after a 0.5 s baseline."""
    from emolens.bench.sound import write_clip
    from emolens.study.file import create_study

    t = np.arange(int(STIMULUS_S * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    clip = write_clip(tmp_path / "ad_tone.mp4", (320, 240), faces=1, fps=25, sound=tone, rate=RATE, numbered=True)
    folder = tmp_path / "study"
    create_study(folder, [str(clip)], baseline_s=0.5)
    return folder


def run_session(qtbot, make_window, folder, participant, during=None, overrides=None):
    """Open the demo clip as the camera, run a session of ``participant``; ``during(session)`` runs once the
    stimulus plays. Returns the outcome and the positions (s) of the stimulus frames that reached the screen."""
    window = make_window(overrides=overrides)
    window.open_source(demo_clip())
    qtbot.waitUntil(lambda: window.source_open, timeout=60000)
    assert window.study.open_study(folder)
    session = window.study.run_session(participant, screen=None, countdown_s=1)
    assert session is not None
    shown = []
    session.screen.frame_shown.connect(lambda frame: shown.append(frame.startTime() / 1e6))
    with qtbot.waitSignal(window.study.session_finished, timeout=60000) as finished:
        if during is not None:
            qtbot.waitUntil(lambda: session.clock.at(time.perf_counter()) is not None, timeout=30000)
            during(session)
    return finished.args[0], shown


def test_a_session_in_the_window_is_recorded_in_the_players_time_and_reported(qtbot, make_window, study, capsys):
    outcome, shown = run_session(qtbot, make_window, study, "P01")
    assert outcome.info is not None, outcome.error
    rows = pd.read_csv(study / "sessions" / "P01.csv", keep_default_na=False)
    sidecar = json.loads((study / "sessions" / "P01.json").read_text())
    assert sidecar["complete"] is True and sidecar["participant"] == "P01" and sidecar["order"] == ["ad_tone"]
    assert sidecar["camera"].endswith(Path(demo_clip()).name)
    assert not list((study / "sessions").glob(".*")), "the hidden recording is removed once the session is written"

    during = rows[rows["stimulus"] == "ad_tone"]
    positions = during.groupby("frame")["stimulus_t_s"].first().astype(float)
    assert len(positions) >= 10  # the camera was analysed all along the stimulus
    assert positions.is_monotonic_increasing and positions.iloc[0] < 0.5 and positions.iloc[-1] > STIMULUS_S - 0.5
    # each row's position is that of a stimulus frame the player put on screen, not a wall-clock guess
    assert set(positions.round(3)) <= {round(position, 3) for position in shown}
    before = rows[rows["frame"] < during["frame"].min()]
    assert (before["stimulus"] == "").all() and len(before) > 0  # the countdown and the baseline: no stimulus
    assert (during["face_id"] != "").mean() > 0.8  # the demo's faces were found

    starts = rows[rows["marker"].str.contains("ad_tone starts")]
    ends = rows[rows["marker"].str.contains("ad_tone ends")]
    assert set(starts["frame"]) == {during["frame"].min()}
    assert set(ends["frame"]) == {rows.loc[rows["frame"] > during["frame"].max(), "frame"].min()}
    placement = sidecar["placements"][0]
    assert placement["end_s"] - placement["start_s"] == pytest.approx(STIMULUS_S, abs=0.01)
    assert sidecar["stimulus_at_s"] == placement["start_s"]

    from emolens.cli import main

    assert main(["study", "report", str(study)]) == 0
    assert (study / "report" / "study.html").is_file()
    assert "P01" in capsys.readouterr().out + (study / "report" / "study.html").read_text()


def test_esc_ends_the_session_early_and_keeps_it_marked_incomplete(qtbot, make_window, study):
    marked = []

    def mark_then_press_esc(session):
        window = session.parent()
        marked.append(window.settings.marker_presets[0])
        qtbot.keyClick(window.video_view, Qt.Key.Key_1)  # the moderator's marker keys still mark
        qtbot.waitUntil(lambda: marked[0] in [text for _, text in window.side_panel.chart.markers()], timeout=10000)
        # some way into the stimulus, so that camera frames were captured while it played
        qtbot.waitUntil(lambda: (session.clock.at(time.perf_counter()) or ("", 0.0))[1] >= 0.4, timeout=10000)
        qtbot.keyClick(session.screen, Qt.Key.Key_Escape)

    outcome, _ = run_session(qtbot, make_window, study, "P02", during=mark_then_press_esc)
    assert outcome.info is not None and outcome.info.complete is False
    sidecar = json.loads((study / "sessions" / "P02.json").read_text())
    rows = pd.read_csv(study / "sessions" / "P02.csv", keep_default_na=False)
    assert sidecar["complete"] is False
    assert rows["marker"].str.contains(marked[0], regex=False).any()
    during = rows[rows["stimulus"] == "ad_tone"]
    assert len(during) > 0 and during["stimulus_t_s"].astype(float).max() < STIMULUS_S - 0.5
    assert rows["marker"].str.contains("ad_tone starts").any()
    ends = rows.loc[rows["marker"].str.contains("ad_tone ends"), "frame"]  # where it left the screen
    assert set(ends) == {rows.loc[rows["frame"] > during["frame"].max(), "frame"].min()}
    assert sidecar["placements"][0]["end_s"] < sidecar["placements"][0]["start_s"] + STIMULUS_S - 0.5


def test_without_qt_multimedia_the_study_menu_says_how_to_install_it(make_window, monkeypatch, tmp_path):
    monkeypatch.setattr("emolens.gui.study_dialog.multimedia_missing", lambda: True)
    window = make_window()
    window.study.run_action.trigger()
    assert window.study.run_session("P01") is None
    assert "pip install 'emolens[study]'" in window.status_message.text()


def test_with_one_screen_the_stimuli_are_offered_in_a_window_on_it(make_window):
    from emolens.gui.study_dialog import RunSessionDialog

    window = make_window()
    dialog = RunSessionDialog("ad test", window.screen(), window)
    assert [dialog.where.itemText(i) for i in range(dialog.where.count())] == ["In a window on this screen"]
    assert dialog.screen_choice is None


@pytest.mark.parametrize("participant, message", [
    ("P 01", "no session: participant ID 'P 01': use letters, digits"),
    ("P01", "no session: P01 already has a session in this study; choose another participant ID"),
])
def test_a_session_is_refused_in_one_line_for_a_bad_or_taken_participant_id(qtbot, make_window, study,
                                                                             participant, message):
    (study / "sessions" / "P01.json").write_text("{}")  # P01's session, as far as the window must care
    window = make_window()
    window.open_source(demo_clip())
    qtbot.waitUntil(lambda: window.source_open, timeout=60000)
    assert window.study.open_study(study)
    assert window.study.run_session(participant, countdown_s=0) is None
    assert window.status_message.text().startswith(message)
    assert (study / "sessions" / "P01.json").read_text() == "{}" and not window.recording.active


def test_esc_before_the_first_stimulus_keeps_an_incomplete_session_and_the_report_builds(qtbot, make_window, study):
    window = make_window()
    window.open_source(demo_clip())
    qtbot.waitUntil(lambda: window.source_open, timeout=60000)
    assert window.study.open_study(study)
    session = window.study.run_session("P03", countdown_s=3)
    with qtbot.waitSignal(window.study.session_finished, timeout=60000) as finished:
        qtbot.waitUntil(lambda: window.recording.active, timeout=30000)
        qtbot.wait(500)
        qtbot.keyClick(session.screen, Qt.Key.Key_Escape)  # during the countdown
    info = finished.args[0].info
    assert info is not None and info.complete is False and info.placements == []
    rows = pd.read_csv(study / "sessions" / "P03.csv", keep_default_na=False)
    assert len(rows) > 0 and (rows["stimulus"] == "").all()

    from emolens.cli import main

    assert main(["study", "info", str(study)]) == 0
    assert main(["study", "report", str(study)]) == 0


def test_the_camera_video_of_a_session_is_kept_as_the_session_when_asked(qtbot, make_window, study):
    """With "Save the camera video with recordings" on, the video follows the session to sessions/P03.mp4, where
    replay finds a camera session's video, a frame for each frame of the timeline; no hidden file is left."""
    from emolens.replay.recording import load_recording
    from emolens.replay.video import open_video_info

    outcome, _ = run_session(qtbot, make_window, study, "P03", overrides={"save_video": True},
                             during=lambda session: qtbot.keyClick(session.screen, Qt.Key.Key_Escape))
    assert outcome.info is not None and outcome.error == ""
    assert (study / "sessions" / "P03.mp4").is_file()
    assert not list((study / "sessions").glob(".*")), "the hidden recording and video are gone"
    # one video frame per processed frame (here the camera is a clip, which replay prefers: it is the source)
    saved = open_video_info(study / "sessions" / "P03.mp4")
    assert saved.frame_count == len(load_recording(study / "sessions" / "P03.csv").processed) > 0


def test_two_cuts_play_one_after_the_other_and_each_is_placed_in_its_own_time(qtbot, make_window, tmp_path):
    """An A/B study: both cuts play in the session's order, the second from its first frame once the first ended."""
    from emolens.bench.sound import write_clip
    from emolens.study.file import create_study

    cuts = [write_clip(tmp_path / f"cut_{name}.mp4", (320, 240), faces=1, fps=25, numbered=True,
                       sound=np.zeros(RATE, np.float32), rate=RATE) for name in ("a", "b")]
    folder = tmp_path / "ab"
    create_study(folder, [str(cut) for cut in cuts], baseline_s=0.2)
    outcome, _ = run_session(qtbot, make_window, folder, "P05")
    assert outcome.info is not None and outcome.info.complete, outcome.error
    sidecar = json.loads((folder / "sessions" / "P05.json").read_text())
    assert [placement["stimulus"] for placement in sidecar["placements"]] == sidecar["order"]
    first, second = sidecar["placements"]
    assert first["end_s"] <= second["start_s"]
    rows = pd.read_csv(folder / "sessions" / "P05.csv", keep_default_na=False)
    for name in sidecar["order"]:
        positions = rows.loc[rows["stimulus"] == name].groupby("frame")["stimulus_t_s"].first().astype(float)
        assert positions.is_monotonic_increasing and positions.iloc[0] < 0.3 and positions.iloc[-1] > 0.6
