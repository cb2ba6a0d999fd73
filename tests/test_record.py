import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emolens.errors import EmolensError
from emolens.record import CsvRecorder, safe_text, timeline_columns
from emolens.types import Faces, Frame

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def two_faces() -> Faces:
    probs = np.array([np.eye(7)[3] * 0.7 + 0.3 / 7, np.full(7, 1 / 7)], np.float32)
    return Faces(xyxy=np.array([[10, 20, 110, 140], [200, 20, 260, 90]], np.float32),
                 det_score=np.array([0.9, 0.8], np.float32), probs=probs, face_id=np.array([1, 2]))


def frame(index: int, t_s: float) -> Frame:
    return Frame(index=index, t_s=t_s, image=np.zeros((4, 4, 3), np.uint8), source="clip.mp4")


def test_a_marker_stays_with_each_face_filtered_by_face_id(tmp_path):
    """The ten-viewer test: a marker written on the first face's row only was lost to face 2's rows."""
    path = tmp_path / "timeline.csv"
    with CsvRecorder(path, LABELS) as recorder:
        recorder.append(frame(0, 0.0), two_faces())
        recorder.mark("ad starts")
        recorder.append(frame(1, 0.04), two_faces())
    table = pd.read_csv(path)
    for face_id in (1, 2):
        rows = table[table["face_id"] == face_id]
        assert rows["marker"].tolist() == [np.nan, "ad starts"]


def test_stimulus_columns_are_empty_unless_given(tmp_path):
    path = tmp_path / "timeline.csv"
    with CsvRecorder(path, LABELS) as recorder:
        recorder.append(frame(0, 0.0), two_faces())
        recorder.append(frame(1, 0.04), two_faces(), stimulus=("=ad_a", 1.25))
        recorder.append(frame(2, 0.08), Faces.empty(), stimulus=("ad_a", 1.2916))
    table = pd.read_csv(path)
    assert table["stimulus"].tolist() == [np.nan, np.nan, "'=ad_a", "'=ad_a", "ad_a"]
    assert table["stimulus_t_s"].tolist()[2:] == [1.25, 1.25, 1.292]
    assert table["stimulus_t_s"].iloc[:2].isna().all()


def test_schema_rows_and_markers(tmp_path):
    path = tmp_path / "timeline.csv"
    with CsvRecorder(path, LABELS) as recorder:
        recorder.mark("ad starts")
        recorder.append(frame(0, 0.0), two_faces())
        recorder.append(frame(1, 0.04), Faces.empty())
        recorder.mark("=HYPERLINK(\"http://x\")")
        recorder.append(frame(2, 0.08), two_faces())
        recorder.mark("after the end")
    table = pd.read_csv(path)
    assert list(table.columns) == timeline_columns(LABELS)
    assert len(table) == 6
    # a marker is on every row of its frame, so that the rows of one face_id keep it
    formula = "'=HYPERLINK(\"http://x\")"
    assert table["marker"].tolist()[:5] == ["ad starts", "ad starts", np.nan, formula, formula]
    assert table["marker"].iloc[5] == "after the end" and pd.isna(table["frame"].iloc[5])
    no_face = table.iloc[2]
    assert no_face["frame"] == 1 and pd.isna(no_face["face_id"]) and pd.isna(no_face["happy"])
    faces = table.dropna(subset=["face_id"])
    assert np.allclose(faces[list(LABELS)].sum(axis=1), 1, atol=1e-4)
    assert faces["dominant"].tolist() == ["happy", "angry", "happy", "angry"]
    assert faces[["x", "y", "w", "h"]].iloc[0].tolist() == [10, 20, 100, 120]
    assert pd.to_datetime(table["timestamp"]).dt.tz is not None


def test_keypoint_columns_on_request(tmp_path):
    path = tmp_path / "k.csv"
    with CsvRecorder(path, LABELS, keypoints=True) as recorder:
        recorder.append(frame(0, 0.0), two_faces())
    table = pd.read_csv(path)
    assert list(table.columns)[-13:-1] == [f"kp{i}_{a}" for i in range(6) for a in "xy"]


def test_full_search_is_the_last_column_one_where_the_detector_searched(tmp_path):
    path = tmp_path / "searched.csv"
    with CsvRecorder(path, LABELS, keypoints=True) as recorder:
        recorder.append(frame(0, 0.0), two_faces())
        recorder.append(frame(1, 0.04), two_faces().with_fields(full_search=False))
        recorder.append(frame(2, 0.08), Faces.empty().with_fields(full_search=False))
    table = pd.read_csv(path)
    assert table.columns[-1] == "full_search"
    assert table["full_search"].tolist() == [1, 1, 0, 0, 0]


def test_a_timeline_from_before_the_full_search_column_still_loads(tmp_path):
    """Report, replay and studies read timelines through ``load_timelines``; older files lack ``full_search``."""
    from emolens.report.timeline import load_timelines

    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    with CsvRecorder(new, LABELS) as recorder:
        recorder.append(frame(0, 0.0), two_faces())
        recorder.append(frame(1, 0.04), two_faces().with_fields(full_search=False))
    pd.read_csv(new, dtype=str, keep_default_na=False).drop(columns="full_search").to_csv(old, index=False)
    (loaded_new, _), (loaded_old, _) = load_timelines(new), load_timelines(old)
    pd.testing.assert_frame_equal(loaded_old[0].faces, loaded_new[0].faces)
    assert len(loaded_old[0].faces) == 4


@pytest.mark.parametrize(("text", "expected"), [
    ("logo shown", "logo shown"),
    ("=1+1", "'=1+1"),
    ("+49 price", "'+49 price"),
    ("-", "'-"),
    ("@cmd", "'@cmd"),
    ("two\nlines", "two lines"),
])
def test_user_text_cannot_run_in_a_spreadsheet(text, expected):
    assert safe_text(text) == expected


def test_unwritable_output(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EmolensError, match="cannot write"):
        CsvRecorder(tmp_path / "file" / "t.csv", LABELS)


def test_full_disk_keeps_complete_rows(tmp_path):
    """The file-size limit makes writes fail like a full disk; rows written before must survive whole."""
    path = tmp_path / "t.csv"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path[:0] = {sys.path!r}
        from tests.test_record import frame, two_faces, LABELS
        from emolens.record import CsvRecorder
        from emolens.errors import EmolensError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
        recorder = CsvRecorder({str(path)!r}, LABELS)
        try:
            for i in range(1000):
                recorder.append(frame(i, i / 25), two_faces())
        except EmolensError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert "recording stopped" in result.stdout and "row(s) written before are kept" in result.stdout
    assert path.read_text().endswith("\n")
    table = pd.read_csv(path)
    assert len(table) > 0 and table["neutral"].notna().all()
