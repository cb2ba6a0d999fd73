"""Session reports: timelines written by CsvRecorder (and by ``emolens analyze``) -> tables, charts, page.

Every number in the segment table is checked against a direct computation from the CSV that
shares no code with the report: rows are cut at the marker rows in file order and averaged
per segment.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emolens.bench.report import main as bench_main
from emolens.bench.report import synthesize_timeline
from emolens.cli import main
from emolens.errors import EmolensError
from emolens.evaluation.labels import FER2013_LABELS as LABELS
from emolens.record import CsvRecorder, timeline_columns
from emolens.report import build_report
from emolens.report.compare import alignment
from emolens.report.moments import strongest_moments
from emolens.report.segments import segment_table, valence
from emolens.report.timeline import load_timelines
from emolens.types import Faces, Frame

FPS = 10
BEFORE = "(before first marker)"  # the segment before the first marker
IMAGE = np.zeros((4, 4, 3), np.uint8)


# --- helpers: synthetic timelines written by the real recorder ------------------------------------------------------

def faces_with(probs: np.ndarray, face_ids: list[int]) -> Faces:
    n = len(face_ids)
    return Faces(xyxy=np.tile(np.float32([10, 10, 60, 70]), (n, 1)), det_score=np.full(n, 0.9, np.float32),
                 probs=np.asarray(probs, np.float32).reshape(n, len(LABELS)), face_id=np.asarray(face_ids, np.int64))


def record_session(path: Path, frames: list[tuple[np.ndarray, list[int]]], marks: dict[int, str] | None = None,
                   source: str = "clip.mp4", final_mark: str | None = None) -> Path:
    """Write ``frames`` (probs, face ids) at FPS with CsvRecorder; ``marks`` maps frame index -> marker."""
    with CsvRecorder(path, LABELS) as recorder:
        append_session(recorder, frames, marks or {}, source)
        if final_mark:
            recorder.mark(final_mark)
    return path


def append_session(recorder: CsvRecorder, frames, marks: dict[int, str], source: str) -> None:
    for index, (probs, face_ids) in enumerate(frames):
        if index in marks:
            recorder.mark(marks[index])
        recorder.append(Frame(index, index / FPS, IMAGE, source), faces_with(probs, face_ids))


def random_frames(count: int, faces: int = 3, seed: int = 0) -> list[tuple[np.ndarray, list[int]]]:
    """Random probabilities; faces come and go, and every 9th frame shows nobody."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        ids = [] if index % 9 == 4 else [i for i in range(1, faces + 1) if rng.random() > 0.2]
        frames.append((rng.dirichlet(np.ones(len(LABELS)), size=len(ids)), ids))
    return frames


def steady(label: str, value: float) -> np.ndarray:
    """Probabilities with ``value`` on ``label`` and the rest spread evenly."""
    probs = np.full(len(LABELS), (1 - value) / (len(LABELS) - 1))
    probs[LABELS.index(label)] = value
    return probs


MARKS = {7: "ad starts", 20: "=logo", 33: "price shown", 41: "logo"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    csv = record_session(folder / "session.csv", random_frames(50), MARKS)
    return csv, build_report([csv], folder / "out")


# --- the direct computation the report is checked against -----------------------------------------------------------

def direct_segments(csv: Path) -> pd.DataFrame:
    """Per segment and face ("all" = every face row): the numbers the issue asks for, from raw rows."""
    rows = pd.read_csv(csv, keep_default_na=False, na_values=[""])
    frames = rows[rows["time_s"].notna()].copy()
    # a marker is on every row of its frame: count it once, on the frame's first row
    frames["segment"] = (frames["marker"].notna() & ~frames["frame"].duplicated()).cumsum()
    interval = np.median(np.diff(frames["time_s"].unique()))
    starts = frames.groupby("segment")["time_s"].min()
    ends = list(starts.iloc[1:]) + [frames["time_s"].max() + interval]
    expected = []
    for (segment, part), end_s in zip(frames.groupby("segment"), ends):
        face_rows = part[part["face_id"].notna()]
        n_frames = part["frame"].nunique()
        groups = [("all", face_rows, face_rows["frame"].nunique())]
        groups += [(str(int(face)), rows_, len(rows_)) for face, rows_ in face_rows.groupby("face_id")]
        for face, sub, seen in groups:
            probs = sub[list(LABELS)].to_numpy()
            values = {"segment_key": segment, "face": face, "start_s": starts[segment], "end_s": end_s,
                      "duration_s": end_s - starts[segment], "frames": n_frames, "coverage": seen / n_frames}
            values |= {f"mean_{label}": probs[:, i].mean() for i, label in enumerate(LABELS)}
            values |= {f"dominant_{label}": (sub["dominant"] == label).mean() for label in LABELS}
            negative = probs[:, [LABELS.index(name) for name in ("angry", "disgust", "fear", "sad")]].max(axis=1)
            values["valence"] = (probs[:, LABELS.index("happy")] - negative).mean()
            expected.append(values)
    return pd.DataFrame(expected)


def assert_segments_match(segments_csv: Path, timeline_csv: Path) -> None:
    actual = pd.read_csv(segments_csv, dtype={"face": str})
    expected = direct_segments(timeline_csv)
    assert len(actual) == len(expected)
    numbers = [column for column in expected.columns if column not in ("segment_key", "face")]
    assert list(actual["face"]) == list(expected["face"])
    np.testing.assert_allclose(actual[numbers].to_numpy(float), expected[numbers].to_numpy(float), atol=2e-4)


# --- segments -------------------------------------------------------------------------------------------------------

def test_segment_table_matches_a_direct_computation(report):
    csv, result = report
    assert_segments_match(result.segments_csv, csv)


def test_segments_are_named_by_their_markers(report):
    _, result = report
    segments = pd.read_csv(result.segments_csv, dtype={"face": str})
    group = segments[segments["face"] == "all"]
    # a formula-like marker is shown as typed but stays escaped in the CSV; a repeated one is numbered
    assert list(group["marker"]) == [BEFORE, "ad starts", "'=logo", "price shown", "logo"]
    assert list(group["segment"]) == [1, 2, 3, 4, 5]


def test_a_marker_named_start_keeps_its_name_in_tables_and_alignment(tmp_path):
    # "start" is the window's first preset marker: the segment before it must not take its name
    first = record_session(tmp_path / "a.csv", random_frames(20, seed=1), {4: "start", 12: "ad starts"})
    second = record_session(tmp_path / "b.csv", random_frames(20, seed=2), {6: "start", 15: "ad starts"})
    result = build_report([first, second], tmp_path / "out", align_marker="start")
    segments = pd.read_csv(result.segments_csv, dtype={"face": str})
    assert segments.query("face == 'all'")["marker"].tolist() == [BEFORE, "start", "ad starts"] * 2
    comparison = pd.read_csv(result.comparison_csv, index_col=0)
    assert list(comparison.index) == [BEFORE, "start", "ad starts"]
    assert comparison.loc["start", "duration_s [a]"] == pytest.approx(0.8)
    assert comparison.loc["start", "duration_s [b]"] == pytest.approx(0.9)
    moments = pd.read_csv(result.moments_csv)
    assert set(moments["segment"]) <= {BEFORE, "start", "ad starts"}


def test_repeated_marker_is_numbered(tmp_path):
    csv = record_session(tmp_path / "t.csv", random_frames(30), {5: "logo", 15: "logo"})
    timeline = load_timelines(csv)[0][0]
    assert list(segment_table(timeline).query("face == 'all'")["marker"]) == [BEFORE, "logo", "logo (2)"]


def test_marker_after_the_last_frame_closes_the_last_segment(tmp_path):
    csv = record_session(tmp_path / "t.csv", random_frames(20), {10: "ad starts"}, final_mark="end")
    timeline = load_timelines(csv)[0][0]
    assert list(timeline.markers["text"]) == ["ad starts", "end"]
    assert timeline.markers["time_s"].iloc[-1] >= 2.0  # not before the end of the last frame (19 / FPS + 1 / FPS)
    table = segment_table(timeline)
    assert list(table.query("face == 'all'")["marker"]) == [BEFORE, "ad starts"]
    assert table["end_s"].max() == pytest.approx(timeline.end_s)


def test_frame_without_faces_counts_against_coverage(tmp_path):
    frames = [(steady("happy", 0.8)[None], [1]), (np.zeros((0, len(LABELS))), []),
              (steady("happy", 0.6)[None], [1]), (steady("sad", 0.7)[None], [1])]
    table = segment_table(load_timelines(record_session(tmp_path / "t.csv", frames))[0][0])
    group = table.iloc[0]
    assert (group["face"], group["frames"], group["coverage"]) == ("all", 4, 0.75)
    assert group["mean_happy"] == pytest.approx((0.8 + 0.6 + 0.05) / 3, abs=1e-5)
    assert group["dominant_happy"] == pytest.approx(2 / 3)


def test_session_in_which_nobody_is_seen(tmp_path):
    nobody = [(np.zeros((0, len(LABELS))), [])] * 20
    result = build_report([record_session(tmp_path / "t.csv", nobody, {10: "logo"})], tmp_path / "out")
    segments = pd.read_csv(result.segments_csv, dtype={"face": str})
    assert segments[["marker", "face", "frames", "coverage"]].values.tolist() == [[BEFORE, "all", 10, 0.0],
                                                                                  ["logo", "all", 10, 0.0]]
    assert segments["valence"].isna().all() and len(pd.read_csv(result.moments_csv)) == 0
    # no black cells where there is nothing to colour: the colour map's black for NaN is overridden (CSS: last wins)
    blocks = re.findall(r"\{([^}]*)\}", result.html.read_text())
    for block in blocks:
        backgrounds = re.findall(r"background-color: ([^;]+);", block)
        assert not backgrounds or backgrounds[-1] != "#000000"


def test_labels_come_from_the_header(tmp_path):
    labels = ("happy", "sad", "bored")
    with CsvRecorder(tmp_path / "three.csv", labels) as recorder:
        for index, probs in enumerate([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]):
            faces = Faces(xyxy=np.float32([[0, 0, 9, 9]]), det_score=np.float32([1]), probs=np.float32([probs]),
                          face_id=np.array([1]))
            recorder.append(Frame(index, index / FPS, IMAGE, "clip.mp4"), faces)
    result = build_report([tmp_path / "three.csv"], tmp_path / "out")
    group = pd.read_csv(result.segments_csv).iloc[0]
    assert [group["mean_happy"], group["mean_bored"], group["dominant_sad"]] == pytest.approx([0.4, 0.2, 0.5])
    assert group["valence"] == pytest.approx(((0.7 - 0.2) + (0.1 - 0.6)) / 2, abs=1e-6)

    other = record_session(tmp_path / "seven.csv", random_frames(5))
    with pytest.raises(EmolensError, match="different emotion labels"):
        build_report([tmp_path / "three.csv", other], tmp_path / "out")


def test_a_timeline_from_before_the_stimulus_columns_still_reads(tmp_path):
    csv = record_session(tmp_path / "t.csv", random_frames(30), {10: "ad starts"})
    old = tmp_path / "old.csv"
    pd.read_csv(csv, dtype=str, keep_default_na=False).drop(columns=["stimulus", "stimulus_t_s"]).to_csv(old, index=False)
    timeline = load_timelines(old)[0][0]
    assert "stimulus" not in timeline.faces.columns
    assert timeline.markers["text"].tolist() == ["ad starts"]
    assert_segments_match(build_report([old], tmp_path / "out").segments_csv, old)


def test_a_marker_on_every_face_row_of_its_frame_is_one_marker(tmp_path):
    frames = [(np.stack([steady("happy", 0.8)] * 3), [1, 2, 3])] * 20
    timeline = load_timelines(record_session(tmp_path / "t.csv", frames, {5: "ad starts", 12: "logo"}))[0][0]
    assert timeline.markers.values.tolist() == [[0.5, "ad starts"], [1.2, "logo"]]


def test_keypoint_columns_are_accepted(tmp_path):
    with CsvRecorder(tmp_path / "t.csv", LABELS, keypoints=True) as recorder:
        append_session(recorder, random_frames(12), {5: "logo"}, "clip.mp4")
    (timeline,), warnings = load_timelines(tmp_path / "t.csv")
    assert len(timeline.frames) == 12 and timeline.markers["text"].tolist() == ["logo"] and not warnings


@pytest.mark.parametrize("label, value, expected", [
    ("happy", 0.7, 0.7 - 0.05),
    ("sad", 0.7, 0.05 - 0.7),
    ("neutral", 0.7, 0.0),
    ("surprise", 0.4, 0.0),
])
def test_valence(label, value, expected):
    probs = pd.DataFrame([steady(label, value)], columns=list(LABELS))
    assert valence(probs, LABELS).iloc[0] == pytest.approx(expected, abs=1e-6)


# --- strongest moments ----------------------------------------------------------------------------------------------

def test_strongest_moments_are_separate_peaks_with_time_and_face(tmp_path):
    frames = [(np.stack([steady("neutral", 0.6)] * 2), [1, 2]) for _ in range(120)]
    spikes = {(20, 0): 0.90, (21, 0): 0.95, (98, 0): 0.93, (101, 0): 0.94, (21, 1): 0.80}  # (frame, face): p(happy)
    for (index, face), value in spikes.items():
        frames[index][0][face] = steady("happy", value)
    moments = strongest_moments(load_timelines(record_session(tmp_path / "t.csv", frames))[0][0], top=3, gap_s=5.0)
    happy = moments[moments["emotion"] == "happy"]
    # 2.0 s is the same smile as 2.1 s; 9.8 s lies across a window edge from 10.1 s, but within 5 s on
    # the same face; face 2 smiles at the same time as face 1
    assert happy[["rank", "time_s", "face"]].values.tolist() == [[1, 2.1, 1], [2, 10.1, 1], [3, 2.1, 2]]
    assert happy["probability"].tolist() == pytest.approx([0.95, 0.94, 0.80], abs=1e-5)
    assert happy["segment"].tolist() == [BEFORE] * 3


def test_strongest_moments_leave_out_emotions_nobody_showed(tmp_path):
    """The ten-viewer test: emotions no face showed were listed with 0.00 peaks."""
    frames = [(np.stack([steady("neutral", 0.9)]), [1]) for _ in range(50)]
    frames[20] = (np.stack([steady("happy", 0.8)]), [1])
    moments = strongest_moments(load_timelines(record_session(tmp_path / "t.csv", frames))[0][0])
    assert sorted(set(moments["emotion"])) == ["happy", "neutral"]
    assert (moments["probability"] > 0.5).all()
    # Before: the emotions without a moment turned the column into objects, written unrounded (0.800000011920929).
    assert moments["probability"].dtype == np.float32


def test_moments_csv_is_rounded_like_the_other_tables(tmp_path):
    frames = [(np.stack([steady("neutral", 0.9)]), [1]) for _ in range(50)]
    frames[20] = (np.stack([steady("happy", 0.8)]), [1])
    result = build_report([record_session(tmp_path / "t.csv", frames)], tmp_path / "out")
    probabilities = [line.split(",")[5] for line in result.moments_csv.read_text().splitlines()[1:]]
    assert probabilities and all(len(value.split(".")[1]) <= 4 for value in probabilities), probabilities


@pytest.mark.parametrize("seen", [(False, True), (False, False)], ids=["first-without-faces", "none-with-faces"])
def test_sessions_compared_with_one_in_which_nobody_is_seen(tmp_path, monkeypatch, seen):
    """The ten-viewer test: a session with no face made the comparison's time axis read -0:00 ... 0:00."""
    from matplotlib.figure import Figure

    drawn, save = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda figure, path, **kw: (drawn.append((Path(path).name, figure)),
                                                                         save(figure, path, **kw)))
    nobody, somebody = [(np.zeros((0, len(LABELS))), [])] * 20, [(steady("happy", 0.8), [1])] * 20
    paths = [record_session(tmp_path / f"s{index}.csv", somebody if face else nobody, source=f"cam{index}")
             for index, face in enumerate(seen)]
    build_report(paths, tmp_path / "out")
    comparison = dict(drawn)["comparison.png"]
    comparison.draw_without_rendering()
    ticks = [label.get_text() for label in comparison.axes[-2].get_xticklabels()]
    assert ticks[0] == "0:00" and not any(tick.startswith("-") for tick in ticks)


def test_attention_is_not_drawn_dashed_like_the_markers(tmp_path, monkeypatch):
    """A flickering attention drawn as a dashed line looked like a forest of markers: only markers are dashed."""
    from matplotlib.figure import Figure

    from emolens.report.charts import emotion_chart

    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, path, **_: drawn.append(figure))
    curve = pd.DataFrame({"time_s": np.arange(100) / FPS, **{label: np.full(100, 1 / 7) for label in LABELS},
                          "attentive": np.arange(100) % 2})  # flickers every frame
    markers = pd.DataFrame({"time_s": [2.0], "text": ["ad starts"]})
    emotion_chart(curve, LABELS, markers, "t", tmp_path / "t.png", 0.0, 10.0)
    dashed = [line for line in drawn[0].axes[0].get_lines() if line.get_linestyle() == "--"]
    assert [list(line.get_xdata()) for line in dashed] == [[2.0, 2.0]]  # the marker, and nothing else


# --- sessions -------------------------------------------------------------------------------------------------------

def test_each_source_of_a_file_is_a_session(tmp_path):
    path = tmp_path / "both.csv"
    with CsvRecorder(path, LABELS) as recorder:
        append_session(recorder, random_frames(15, seed=1), {3: "ad starts"}, "/videos/a.mp4")
        append_session(recorder, random_frames(25, seed=2), {8: "ad starts"}, "/videos/b.mp4")
    timelines, warnings = load_timelines(path)
    assert [t.name for t in timelines] == ["both · a.mp4", "both · b.mp4"]
    assert [len(t.frames) for t in timelines] == [15, 25] and not warnings
    assert alignment(timelines, "ad starts") == pytest.approx([0.3, 0.8])

    result = build_report([path], tmp_path / "out", align_marker="ad starts")
    comparison = pd.read_csv(result.comparison_csv, index_col=0)
    assert list(comparison.index) == [BEFORE, "ad starts"]
    assert comparison.loc["ad starts", "duration_s [both · b.mp4]"] == pytest.approx(1.7)


def test_align_on_a_missing_marker_names_the_markers_there_are(tmp_path):
    first = record_session(tmp_path / "a.csv", random_frames(10), {2: "ad starts"})
    second = record_session(tmp_path / "b.csv", random_frames(10), {2: "logo"})
    with pytest.raises(EmolensError, match=r'session b lacks it \(its markers: "logo"\)'):
        build_report([first, second], tmp_path / "out", align_marker="ad starts")


def test_align_matches_one_of_several_markers_added_at_once(tmp_path):
    with CsvRecorder(tmp_path / "a.csv", LABELS) as recorder:
        recorder.mark("ad starts")
        recorder.mark("logo")
        append_session(recorder, random_frames(10), {4: "x"}, "clip.mp4")
    timelines, _ = load_timelines(tmp_path / "a.csv")
    assert timelines[0].markers["text"].tolist() == ["ad starts | logo", "x"]
    assert alignment(timelines, "logo") == [0.0]


# --- the page -------------------------------------------------------------------------------------------------------

def test_marker_texts_of_close_markers_do_not_overlap_on_the_charts():
    from matplotlib.figure import Figure

    from emolens.report.charts import _draw_markers

    figure = Figure(figsize=(12, 3.2), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set_xlim(0, 600)
    times = [60, 61, 62, 63, 200, 201, 590, 599]  # seconds apart on a ten-minute chart
    labels = _draw_markers(axes, times, ["ad starts", "logo", "price shown", "laugh", "question", "ad ends",
                                         "second ad", "end"])
    figure.draw_without_rendering()
    boxes = [label.get_window_extent() for label in labels]
    assert all(not first.overlaps(second) for i, first in enumerate(boxes) for second in boxes[i + 1:])
    assert all(axes.get_window_extent().x0 <= box.x0 and box.x1 <= axes.get_window_extent().x1 + 1 for box in boxes)


def test_page_is_self_contained_and_shows_every_chart(report):
    _, result = report
    page = result.html.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == len(result.charts) == 4  # group + 3 faces
    assert all(chart.stat().st_size > 1000 for chart in result.charts)
    assert "=logo" in page and "'=logo" not in page


def test_page_escapes_marker_text(tmp_path):
    csv = record_session(tmp_path / "t.csv", random_frames(10), {3: "<b>price</b> & more"})
    page = build_report([csv], tmp_path / "out").html.read_text(encoding="utf-8")
    assert "&lt;b&gt;price&lt;/b&gt; &amp; more" in page and "<b>price</b>" not in page


# --- bad input ------------------------------------------------------------------------------------------------------

def good_lines(tmp_path: Path) -> list[str]:
    return record_session(tmp_path / "good.csv", random_frames(6, faces=2), {2: "logo"}).read_text().splitlines()


def header_without(column: str, lines: list[str]) -> str:
    index = lines[0].split(",").index(column)
    return "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != index) for line in lines) + "\n"


def with_time(line: str, value: str) -> str:
    fields = line.split(",")
    fields[2] = value
    return ",".join(fields)


@pytest.mark.parametrize("make_text, message", [
    (lambda lines: "", r"is empty"),
    (lambda lines: "\n", r"is empty"),
    (lambda lines: lines[0] + "\n", r"has no frames"),
    (lambda lines: "name,score\nann,3\n", r"is not an Emolens timeline: its header does not start with timestamp"),
    (lambda lines: header_without("time_s", lines), r"missing column\(s\) time_s"),
    (lambda lines: lines[0].replace("angry,disgust,fear,happy,sad,surprise,neutral,", "") + "\n",
     r"no emotion columns between det_score and dominant"),
    (lambda lines: "\n".join([lines[0], with_time(lines[1], "soon"), *lines[2:]]) + "\n",
     r"not a valid Emolens timeline: line 2: column time_s holds 'soon', not a number"),
    (lambda lines: "\n".join([*lines[:3], lines[3].replace(lines[3].split(",")[13], "nan", 1), *lines[4:]]) + "\n",
     r"not a valid Emolens timeline: line 4: column happy holds 'nan', not a number"),
    (lambda lines: "\n".join([lines[0], lines[1], ",".join(lines[2].split(",")[:12]), *lines[3:]]) + "\n",
     r", line 3: a face without all its probabilities"),
    (lambda lines: "\n".join([*lines[:3], lines[3] + ",x,y", *lines[4:]]) + "\n",
     rf"Expected {len(timeline_columns(LABELS))} fields in line 4, saw {len(timeline_columns(LABELS)) + 2}"),
])
def test_bad_input_raises_one_clear_line(tmp_path, make_text, message):
    path = tmp_path / "bad.csv"
    path.write_text(make_text(good_lines(tmp_path)))
    with pytest.raises(EmolensError, match=message) as raised:
        build_report([path], tmp_path / "out")
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


@pytest.mark.filterwarnings("error")  # before: matplotlib warned three times of "identical low and high xlims"
def test_a_one_frame_timeline_reports_without_warnings(tmp_path):
    path = record_session(tmp_path / "one.csv", random_frames(1, faces=1), {})
    build_report([path], tmp_path / "out")
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.filterwarnings("error")  # numpy's "overflow encountered in cast" on the terminal too
@pytest.mark.parametrize(("label", "value"), [("happy", "1e308"), ("sad", "-5"), ("fear", "1.5"), ("angry", "inf")])
def test_a_probability_outside_0_1_is_refused_naming_its_line(tmp_path, label, value):
    """Before: ``happy`` = 1e308 and ``sad`` = -5 were drawn and averaged into the tables."""
    lines = good_lines(tmp_path)
    face_row = next(number for number, line in enumerate(lines) if number and line.split(",")[4])
    fields = lines[face_row].split(",")
    fields[lines[0].split(",").index(label)] = value
    path = tmp_path / "edited.csv"
    path.write_text("\n".join([*lines[:face_row], ",".join(fields), *lines[face_row + 1:]]) + "\n")
    with pytest.raises(EmolensError) as raised:
        build_report([path], tmp_path / "out")
    assert str(raised.value) == f"{path}, line {face_row + 1}: a probability outside 0-1"
    assert not (tmp_path / "out").exists()


def oversized_chart(curve, labels, markers, title, path, *args, **kwargs) -> Path:
    """A chart matplotlib refuses to write (a real ValueError: a file format it does not know)."""
    from matplotlib.figure import Figure

    Figure().savefig(path.with_suffix(".nope"))
    return path


def test_any_failure_while_building_is_one_line(tmp_path, monkeypatch):
    import emolens.report

    monkeypatch.setattr(emolens.report, "emotion_chart", oversized_chart)
    csv = record_session(tmp_path / "t.csv", random_frames(10))
    with pytest.raises(EmolensError) as raised:
        build_report([csv], tmp_path / "out")
    message = str(raised.value)
    assert message.startswith("cannot build the report: unexpected error (ValueError): Format 'nope' is not")
    assert "\n" not in message


def test_binary_file_is_not_a_timeline(tmp_path):
    path = tmp_path / "clip.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(EmolensError, match="not an Emolens timeline"):
        load_timelines(path)


def test_cut_off_last_line_is_left_out_with_a_warning(tmp_path):
    csv = record_session(tmp_path / "t.csv", random_frames(30), {12: "logo"})
    data = csv.read_bytes()
    csv.write_bytes(data[:-15])
    complete = tmp_path / "complete.csv"
    complete.write_bytes(data[:data[:-1].rfind(b"\n") + 1])
    result = build_report([csv], tmp_path / "out")
    assert len(result.warnings) == 1 and "last line was cut off" in result.warnings[0]
    assert_segments_match(result.segments_csv, complete)


def test_file_whose_only_line_is_cut_off(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(",".join(timeline_columns(LABELS))[:40])
    with pytest.raises(EmolensError, match="only line is cut off"):
        load_timelines(path)


# --- benchmark ------------------------------------------------------------------------------------------------------

def test_benchmark_timeline_is_a_recorder_timeline(tmp_path):
    path = tmp_path / "long.csv"
    rows = synthesize_timeline(path, seconds=30, fps=30, faces=6)
    assert pd.read_csv(path, nrows=0).columns.tolist() == timeline_columns(LABELS)
    (timeline,), warnings = load_timelines(path)
    assert len(timeline.faces) + (timeline.frames["faces"] == 0).sum() == rows and not warnings
    assert timeline.faces["face_id"].nunique() == 6 and len(timeline.frames) == 900


def test_benchmark_writes_its_figures(tmp_path):
    results = tmp_path / "bench" / "report.md"
    assert bench_main([str(results), "--minutes", "0.1", "--repeat", "1"]) == 0
    assert re.search(r"\| [\d.]+ s \| [\d.]+ s \| \d+ MiB \| met \|", results.read_text())


# --- never a user's file ---------------------------------------------------------------------------------------------

def error_lines(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("name", ["segments.csv", "moments.csv", "report.html"])
def test_a_report_never_replaces_its_input(tmp_path, capsys, name):
    """Before: ``report segments.csv -o .`` replaced the timeline with the segment table."""
    csv = record_session(tmp_path / name, random_frames(20), {5: "logo"})
    before = csv.read_bytes()
    for overwrite in ([], ["--overwrite"]):
        assert main(["report", str(csv), "-o", str(tmp_path), *overwrite]) == 1
        assert error_lines(capsys) == [(f"emolens: error: the report's {name} in {tmp_path} would replace the "
                                        f"input {csv}: choose another -o")]
    assert csv.read_bytes() == before and sorted(tmp_path.iterdir()) == [csv]


def test_an_earlier_report_is_replaced_only_with_overwrite(tmp_path, capsys):
    """Before: an existing report.html (or chart, or table) was replaced without a word, unlike ``analyze``."""
    csv = record_session(tmp_path / "session.csv", random_frames(20), {5: "logo"})
    out = tmp_path / "out"
    out.mkdir()
    (out / "session_group.png").write_bytes(b"my chart")
    assert main(["report", str(csv), "-o", str(out)]) == 1
    assert error_lines(capsys) == [(f"emolens: error: {out} already holds a report (session_group.png); pass "
                                    f"--overwrite to replace it, or choose another -o")]
    assert [file.name for file in out.iterdir()] == ["session_group.png"]
    assert main(["report", str(csv), "-o", str(out), "--overwrite"]) == 0
    assert (out / "session_group.png").read_bytes().startswith(b"\x89PNG") and (out / "report.html").is_file()


# --- end to end on real faces ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("emolens.cli") is None,
                    reason="emolens.cli (the analyze and report commands) is not written yet")
def test_report_of_a_real_analysis(tmp_path, two_face_video):
    csv = tmp_path / "two.csv"
    subprocess.run([sys.executable, "-m", "emolens", "analyze", str(two_face_video), "-o", str(csv)], check=True,
                   capture_output=True)
    rows = pd.read_csv(csv, dtype=str, keep_default_na=False)
    first_rows = ~rows["frame"].duplicated()
    for frame, text in {"5": "ad starts", "12": "logo"}.items():
        rows.loc[first_rows & (rows["frame"] == frame), "marker"] = text
    rows.to_csv(csv, index=False, lineterminator="\n")

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "emolens", "report", str(csv), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_segments_match(out / "segments.csv", csv)
    segments = pd.read_csv(out / "segments.csv", dtype={"face": str})
    assert segments.query("face == 'all'")["marker"].tolist() == [BEFORE, "ad starts", "logo"]
    assert segments["face"].nunique() >= 2 and (out / "report.html").stat().st_size > 10_000

    bad = tmp_path / "bad.csv"
    bad.write_text("name,score\nann,3\n")
    done = subprocess.run([sys.executable, "-m", "emolens", "report", str(bad), "-o", str(out)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1


def test_a_time_that_rounds_to_zero_reads_0_00_not_minus_0_00():
    from emolens.report.charts import clock

    assert [clock(-0.02), clock(-0.04), clock(-0.06), clock(0.04)] == ["0:00", "0:00", "-0:00.1", "0:00"]


def test_many_sessions_read_as_one_curve_with_contents_and_aligned_times(tmp_path):
    """Ten viewers: the page leads with contents and the comparison (their mean and band, each viewer in grey),
    folds each session's section, puts valence first in the table, and counts every session's times from the
    alignment marker, not only the comparison's."""
    starts = [3, 5, 4, 7, 6, 3, 8, 5, 4, 6]
    csvs = [record_session(tmp_path / f"viewer{number}.csv", random_frames(30, seed=number), {start: "ad starts"})
            for number, start in enumerate(starts)]
    result = build_report(csvs, tmp_path / "out", align_marker="ad starts")
    page = result.html.read_text()
    assert '<nav class="contents">' in page and page.count('<details class="session">') == 10
    assert "the mean of the sessions with its 95% bootstrap band over sessions" in page
    segments = pd.read_csv(result.segments_csv, dtype={"face": str}).query("face == 'all'")
    assert segments.query("marker == 'ad starts'")["start_s"].tolist() == [0.0] * 10
    before = segments.query(f"marker == '{BEFORE}'")["start_s"].to_numpy()
    np.testing.assert_allclose(before, [-start / FPS for start in starts])
    comparison = pd.read_csv(result.comparison_csv, index_col=0)
    assert comparison.columns[0] == "valence [viewer0]"


def test_two_sessions_keep_a_line_each_and_an_open_page(tmp_path):
    csvs = [record_session(tmp_path / f"{name}.csv", random_frames(20, seed=seed), {5: "ad starts"})
            for seed, name in enumerate("ab")]
    page = build_report(csvs, tmp_path / "out").html.read_text()
    assert '<details class="session">' not in page and "bootstrap band" not in page
    assert "Times from" not in page  # not aligned on a marker: recording time
