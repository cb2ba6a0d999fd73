"""Markers from a presentation log merged into the timeline (``analyze --markers``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from emolens.analyze import analyze_inputs
from emolens.errors import EmolensError
from emolens.markers import Marker, MarkerFeed, parse_time, read_markers
from emolens.record import CsvRecorder
from emolens.types import Faces, Frame


@pytest.mark.parametrize(("text", "expected"), [
    ("12.5", 12.5),
    (" 0 ", 0.0),
    ("2026-03-02T14:05:12.250Z", datetime(2026, 3, 2, 14, 5, 12, 250000, tzinfo=timezone.utc)),
    ("2026-03-02T15:05:12+01:00", datetime(2026, 3, 2, 14, 5, 12, tzinfo=timezone.utc)),
    ("-1", None),
    ("nan", None),
    ("soon", None),
])
def test_times_are_seconds_or_iso_8601(text, expected):
    assert parse_time(text) == expected


def test_a_file_with_a_header_and_quoted_labels(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text('time,label\n42,ad ends\n12.5,"ad starts, 30 s spot"\n\n0,intro\n')
    assert read_markers(path) == [Marker("intro", seconds=0.0), Marker("ad starts, 30 s spot", seconds=12.5),
                                  Marker("ad ends", seconds=42.0)]


@pytest.mark.parametrize(("content", "message"), [
    (None, "markers file not found"),
    ("", "has no markers"),
    ("time,label\n", "has no markers"),
    ("time,label\n3,start\nlater,end\n", "line 3: 'later' is neither seconds"),
    ("time,label\n3\n", "line 2: expected time,label"),
    ("3,\n", "line 1: expected time,label"),
    (b"\xff\xfe\x00bad", "cannot read markers file"),
])
def test_bad_marker_files_give_one_clear_message(tmp_path, content, message):
    path = tmp_path / "events.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(EmolensError, match=message):
        read_markers(path)


def _frame(t_s: float, source: str = "clip.mp4") -> Frame:
    return Frame(index=int(t_s * 10), t_s=t_s, image=np.zeros((4, 4, 3), np.uint8), source=source)


def test_each_marker_lands_on_the_first_frame_at_or_after_it_in_every_source(tmp_path):
    markers = [Marker("intro", seconds=0.0), Marker("ad starts", seconds=0.25), Marker("also", seconds=0.25),
               Marker("late", seconds=9.0)]
    with CsvRecorder(tmp_path / "t.csv", ("happy", "sad")) as recorder:
        feed = MarkerFeed(recorder, markers)
        for source in ("a.mp4", "b.mp4"):
            for step in range(5):
                feed.append(_frame(step / 10, source), Faces.empty())
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    for source in ("a.mp4", "b.mp4"):
        rows = table[table["source"] == source]
        assert rows["marker"].tolist() == ["intro", "", "", "ad starts | also", ""]
    assert feed.merged == 6 and feed.left_over() == {"a.mp4": 1, "b.mp4": 1}


def test_iso_markers_follow_the_timestamp_column(tmp_path):
    """An ISO marker goes to the first frame whose timestamp (start + time_s) is at or after it."""
    stimulus = datetime.now(timezone.utc) + timedelta(seconds=0.7)
    with CsvRecorder(tmp_path / "t.csv", ("happy", "sad")) as recorder:
        feed = MarkerFeed(recorder, [Marker("stimulus", moment=stimulus)])
        for t_s in (0.0, 0.5, 1.0, 1.5):
            feed.append(_frame(t_s), Faces.empty())
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False, parse_dates=["timestamp"])
    assert table.loc[table["marker"] == "stimulus", "time_s"].tolist() == [1.0]
    assert (table["timestamp"].iloc[2] - pd.Timestamp(stimulus)).total_seconds() == pytest.approx(0.3, abs=0.05)


def test_analyze_merges_a_presentation_log(tmp_path, two_face_video):
    events = tmp_path / "events.csv"
    events.write_text("time,label\n0.5,ad starts\n1.25,ad ends\n30,after the end\n")
    summary = analyze_inputs([str(two_face_video)], tmp_path / "t.csv", markers=events, log=lambda _: None)
    table = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    marked = table[table["marker"] != ""]  # on both faces' rows of the frame
    assert marked[["time_s", "marker"]].values.tolist() == [[0.5, "ad starts"]] * 2 + [[1.3, "ad ends"]] * 2
    text = summary.format()
    assert "markers: 2 merged from" in text
    assert "1 marker(s) of" in text and "fall after the last frame" in text


def test_a_bad_markers_file_stops_analyze_before_any_output(tmp_path, two_face_video):
    events = tmp_path / "events.csv"
    events.write_text("time,label\nnoon,lunch\n")
    with pytest.raises(EmolensError, match="line 2"):
        analyze_inputs([str(two_face_video)], tmp_path / "t.csv", markers=events, log=lambda _: None)
    assert not (tmp_path / "t.csv").exists()
