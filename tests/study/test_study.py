"""Ad tests (``emolens study``): the study folder, sessions placed in stimulus time, the aggregates and the page.

The confidence band is checked against the exact bootstrap distribution, enumerated by hand: with four
viewers there are 4**4 equally likely resamples, and the band must match their 2.5th and 97.5th percentiles
up to the Monte Carlo error of 1000 resamples.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emolens import Study
from emolens.bench.media import write_video
from emolens.cli import main
from emolens.errors import EmolensError
from emolens.evaluation.labels import FER2013_LABELS as LABELS
from emolens.record import CsvRecorder
from emolens.study.file import create_study, load_study
from emolens.study.sessions import add_session
from emolens.types import Faces, Frame

FPS = 10
IMAGE = np.zeros((4, 4, 3), np.uint8)


def probs_with(label: str, value: float) -> np.ndarray:
    probs = np.full(len(LABELS), (1 - value) / (len(LABELS) - 1), np.float32)
    probs[LABELS.index(label)] = value
    return probs


def record_viewer(path: Path, happy: float | list[float], seconds: float, faces: int = 1, seen=lambda t: True,
                  marks: dict[int, str] | None = None) -> Path:
    """A viewer's timeline at FPS: p(happy) constant (or one value per second), ``faces`` faces where ``seen``."""
    with CsvRecorder(path, LABELS) as recorder:
        for index in range(int(seconds * FPS)):
            t_s = index / FPS
            if marks and index in marks:
                recorder.mark(marks[index])
            value = happy if np.isscalar(happy) else happy[int(t_s)]
            count = faces if seen(t_s) else 0
            recorder.append(Frame(index, t_s, IMAGE, "webcam.mp4"),
                            Faces(xyxy=np.tile(np.float32([10, 10, 50, 60]), (count, 1)),
                                  det_score=np.full(count, 0.9, np.float32),
                                  probs=np.tile(probs_with("happy", value), (count, 1)),
                                  face_id=np.arange(1, count + 1)))
    return path


@pytest.fixture(scope="module")
def stimulus(tmp_path_factory) -> Path:
    """A 3 s clip of a real face: the ad."""
    return write_video(tmp_path_factory.mktemp("stimuli") / "ad_a.mp4", (320, 240), faces=1, seconds=3.0, fps=10)


def test_band_mean_and_share_match_a_computation_by_hand(tmp_path, stimulus):
    values = [0.13, 0.41, 0.67, 0.92]  # each viewer's p(happy) throughout
    create_study(tmp_path / "s", [str(stimulus)], seed=7)
    for number, value in enumerate(values):
        add_session(tmp_path / "s", record_viewer(tmp_path / f"v{number}.csv", value, 5.0), f"P{number}",
                    stimulus_at=1.0)
    curves = Study(tmp_path / "s").curves
    happy = curves[(curves["measure"] == "happy") & (curves["view"] == "raw")]
    assert happy["second"].tolist() == [0, 1, 2]  # the 3 s stimulus
    # The exact bootstrap distribution: the means of all 4**4 equally likely resamples. Its 2.5th and 97.5th
    # percentiles are atoms of a discrete distribution; 1000 resamples put the band's ends within 1.5 points of
    # percentile of them (three standard errors of an estimated 2.5% quantile: sqrt(.025 * .975 / 1000) = 0.5%).
    exact = [np.mean(pick) for pick in itertools.product(values, repeat=len(values))]

    def quantile(level: float) -> float:
        return float(np.quantile(exact, level, method="inverted_cdf"))

    np.testing.assert_allclose(happy["mean"], np.mean(values), atol=1e-5)
    assert ((quantile(0.010) - 1e-6 <= happy["ci_low"]) & (happy["ci_low"] <= quantile(0.040) + 1e-6)).all()
    assert ((quantile(0.960) - 1e-6 <= happy["ci_high"]) & (happy["ci_high"] <= quantile(0.990) + 1e-6)).all()
    assert quantile(0.04) < np.mean(values) < quantile(0.96)
    assert happy["share_expressing"].tolist() == [0.5] * 3  # 0.7 and 0.9 are above 0.5
    assert happy["viewers_with_face"].tolist() == [4] * 3
    again = Study(tmp_path / "s").curves  # seeded: the same band every time
    pd.testing.assert_frame_equal(curves, again)


def test_a_recording_is_placed_in_stimulus_time_with_markers_on_every_face_row(tmp_path, stimulus):
    create_study(tmp_path / "s", [str(stimulus)], baseline_s=1.0)
    record_viewer(tmp_path / "v.csv", 0.8, 6.0, faces=2, marks={12: "ad starts"})
    info, warnings = add_session(tmp_path / "s", tmp_path / "v.csv", "P01", stimulus_at_marker="ad starts")
    assert info.stimulus_at_s == pytest.approx(1.2) and info.baseline_s == pytest.approx([0.2, 1.2])
    assert warnings == []
    rows = pd.read_csv(tmp_path / "s" / "sessions" / "P01.csv")
    inside = rows["stimulus"].notna()
    assert rows.loc[inside, "time_s"].min() == pytest.approx(1.2) and rows.loc[inside, "time_s"].max() == pytest.approx(4.1)
    np.testing.assert_allclose(rows.loc[inside, "stimulus_t_s"], rows.loc[inside, "time_s"] - 1.2, atol=1e-3)
    assert rows.loc[~inside, "stimulus_t_s"].isna().all()
    for face_id in (1, 2):
        marked = rows[(rows["face_id"] == face_id) & rows["marker"].notna()]
        assert marked[["time_s", "marker"]].values.tolist() == [[1.2, "ad starts | ad_a starts"], [4.2, "ad_a ends"]]
    sidecar = json.loads((tmp_path / "s" / "sessions" / "P01.json").read_text())
    assert sidecar["participant"] == "P01" and sidecar["order"] == ["ad_a"] and sidecar["emolens_version"]


def test_a_viewer_seen_too_little_is_excluded_from_the_aggregates(tmp_path, stimulus):
    create_study(tmp_path / "s", [str(stimulus)])
    add_session(tmp_path / "s", record_viewer(tmp_path / "a.csv", 0.9, 4.0), "A", stimulus_at=0.5)
    add_session(tmp_path / "s", record_viewer(tmp_path / "b.csv", 0.1, 4.0, seen=lambda t: t < 1.5), "B",
                stimulus_at=0.5)
    study = Study(tmp_path / "s")
    assert study.quality.set_index("participant")["excluded"].to_dict() == {"A": False, "B": True}
    happy = study.curves[(study.curves["measure"] == "happy") & (study.curves["view"] == "raw")]
    np.testing.assert_allclose(happy["mean"], 0.9, atol=1e-5)  # B's 0.1 is left out
    assert happy["viewers"].tolist() == [1, 1, 1]


def test_shuffled_orders_are_drawn_from_the_recorded_seed(tmp_path, stimulus):
    other = write_video(tmp_path / "ad_b.mp4", (320, 240), faces=1, seconds=2.0, fps=10)
    study = create_study(tmp_path / "s", [str(stimulus), str(other)], shuffle=True)
    orders = {tuple(study.order_for(number)) for number in range(1, 21)}
    assert orders == {("ad_a", "ad_b"), ("ad_b", "ad_a")}
    assert load_study(tmp_path / "s").order_for(5) == study.order_for(5)
    info, _ = add_session(tmp_path / "s", record_viewer(tmp_path / "v.csv", 0.5, 6.0), "P1", stimulus_at=0.0)
    assert info.order == study.order_for(1)
    assert info.placements[1].start_s == pytest.approx(info.placements[0].end_s)


def test_report_page_tables_and_baseline(tmp_path, stimulus, capsys):
    create_study(tmp_path / "s", [str(stimulus)], baseline_s=1.0)
    for number, happy in enumerate([[0.1, 0.9, 0.95, 0.9, 0.1], [0.1, 0.8, 0.2, 0.1, 0.1], [0.2, 0.7, 0.9, 0.2, 0.2]]):
        add_session(tmp_path / "s", record_viewer(tmp_path / f"v{number}.csv", happy, 5.0), f"P{number}",
                    stimulus_at=1.0)
    assert main(["study", "report", str(tmp_path / "s")]) == 0
    out = tmp_path / "s" / "report"
    page = (out / "study.html").read_text()
    assert 'nav class="toc"' in page and "bootstrap over viewers" in page and "above 0.5" in page
    assert "data:image/jpeg;base64," in page  # the stimulus's own frame at a strong moment
    moments = pd.read_csv(out / "moments.csv")
    # the ad starts at 1 s of each recording: its second 0 holds p(happy) 0.9, 0.8, 0.7 (mean 0.8, the peak)
    assert moments.loc[moments["measure"] == "happy", ["second", "share_expressing"]].values.tolist() == [[0, 1.0]]
    assert "disgust" not in set(moments["measure"])  # nobody showed it: no 0.00 moment
    comparison = pd.read_csv(out / "comparison.csv").set_index("measure")
    # baseline (time 0-1 s) p(happy) 0.1, 0.1, 0.2; during the ad each viewer is above it in 3, 2 and 2 of 3 seconds
    assert comparison.loc["happy", "above_baseline"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-4)
    curves = pd.read_csv(out / "curves.csv")
    corrected = curves[(curves["view"] == "baseline-corrected") & (curves["measure"] == "happy")]
    assert corrected["mean"].iloc[0] == pytest.approx(np.mean([0.9 - 0.1, 0.8 - 0.1, 0.7 - 0.2]), abs=1e-4)
    assert main(["study", "report", str(tmp_path / "s")]) == 1  # an earlier report is kept without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["study", "report", str(tmp_path / "s"), "--overwrite"]) == 0


@pytest.mark.parametrize("args, message", [
    (["study", "add", "{tmp}/none", "{tmp}/v.csv", "--participant", "P1", "--stimulus-at", "0"], "is not a study"),
    (["study", "add", "{tmp}/s", "{tmp}/v.csv", "--participant", "../x", "--stimulus-at", "0"], "--participant"),
    (["study", "add", "{tmp}/s", "{tmp}/v.csv", "--participant", "P1", "--stimulus-at-marker", "go"],
     "has no marker named 'go' (it has no markers)"),
    (["study", "add", "{tmp}/s", "{tmp}/v.csv", "--participant", "P1", "--stimulus-at", "0", "--date", "yesterday"],
     "the session's date 'yesterday' is not an ISO 8601 date"),
    (["study", "add", "{tmp}/s", "{tmp}/v.csv", "--participant", "P1", "--stimulus-at", "99"], "after the end"),
    (["study", "add", "{tmp}/s", "{tmp}/v.csv", "--participant", "P1", "--stimulus-at", "0", "--order", "x"],
     "name each of the study's stimuli once"),
    (["study", "new", "{tmp}/s", "--stimulus", "{tmp}/v.csv"], "not an empty folder"),
    (["study", "new", "{tmp}/t", "--stimulus", "{tmp}/missing.mp4"], "stimulus not found"),
    (["study", "new", "{tmp}/t", "--stimulus", "{tmp}/still.jpg"], "needs a duration"),
    (["study", "new", "{tmp}/t", "--stimulus", "{tmp}/still.jpg=-2"],
     "--stimulus {tmp}/still.jpg=-2: an image's duration after '=' must be a positive number of seconds, got '-2'"),
    (["study", "invite", "{tmp}/s", "--count", "0"], "--count (participants to invite) must be 1 to 10000 at a time, "
                                                      "got 0"),
    (["study", "invite", "{tmp}/s", "--count", "100000000"], "must be 1 to 10000 at a time, got 100000000"),
    (["study", "invite", "{tmp}/s", "--url", "ftp://x"], "give an http:// or https:// address"),
    (["study", "invite", "{tmp}/s", "--url", "http://h:8000/panel?x=1#y"], "has a query or fragment"),
    (["study", "invite", "{tmp}/s", "--url", "http://h:8000/#"], "has a query or fragment"),
    (["study", "report", "{tmp}/s"], "has no sessions yet"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path, stimulus, astronaut, capsys, args, message):
    import cv2

    create_study(tmp_path / "s", [str(stimulus)])
    record_viewer(tmp_path / "v.csv", 0.5, 2.0)
    cv2.imwrite(str(tmp_path / "still.jpg"), astronaut)
    assert main([arg.format(tmp=tmp_path) for arg in args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emolens: error: ") and message.format(tmp=tmp_path) in err and err.count("\n") == 1
    assert not (tmp_path / "s" / "sessions" / "P1.csv").exists() and not (tmp_path / "t").exists()
    assert not (tmp_path / "s" / "invites.json").exists()


def test_a_participant_is_replaced_only_with_overwrite(tmp_path, stimulus):
    create_study(tmp_path / "s", [str(stimulus)])
    record_viewer(tmp_path / "v.csv", 0.5, 4.0)
    add_session(tmp_path / "s", tmp_path / "v.csv", "P1", stimulus_at=0.0)
    before = (tmp_path / "s" / "sessions" / "P1.csv").read_bytes()
    with pytest.raises(EmolensError, match="already has a session of P1"):
        add_session(tmp_path / "s", tmp_path / "v.csv", "P1", stimulus_at=0.5)
    assert (tmp_path / "s" / "sessions" / "P1.csv").read_bytes() == before
    info, _ = add_session(tmp_path / "s", tmp_path / "v.csv", "P1", stimulus_at=0.5, overwrite=True)
    assert info.number == 1 and info.stimulus_at_s == 0.5


def test_an_image_stimulus_and_a_timeline_from_before_the_stimulus_columns(tmp_path, astronaut):
    import cv2

    cv2.imwrite(str(tmp_path / "poster.jpg"), astronaut)
    study = create_study(tmp_path / "s", [f"{tmp_path / 'poster.jpg'}=2"])
    assert study.stimuli[0].kind == "image" and study.stimuli[0].duration_s == 2.0
    old = tmp_path / "old.csv"
    table = pd.read_csv(record_viewer(tmp_path / "v.csv", 0.8, 3.0), dtype=str, keep_default_na=False)
    table.drop(columns=["stimulus", "stimulus_t_s"]).to_csv(old, index=False)
    add_session(tmp_path / "s", old, "P1", stimulus_at=0.5)
    frames = Study(tmp_path / "s").frames
    assert set(frames["stimulus"].dropna()) == {"poster"} and frames["stimulus_t_s"].max() == pytest.approx(1.9)


def test_a_study_of_real_recordings_end_to_end(tmp_path, stimulus, capsys):
    """Two viewer clips of real faces analysed by the pipeline, the report, and ``study info``."""
    study = tmp_path / "adtest"
    assert main(["study", "new", str(study), "--stimulus", str(stimulus), "--baseline", "0.5"]) == 0
    for number in (1, 2):
        clip = write_video(tmp_path / f"viewer{number}.mp4", (320, 240), faces=1, seconds=4.0, fps=10)
        assert main(["study", "add", str(study), str(clip), "--participant", f"P0{number}", "--stimulus-at", "0.5",
                     "--camera", "webcam", "--device", "cpu"]) == 0
    assert main(["study", "report", str(study)]) == 0
    assert main(["study", "info", str(study)]) == 0
    out = capsys.readouterr().out
    assert "2 session(s)" in out and "P01 #1" in out and "ad_a 100% face found" in out
    quality = pd.read_csv(study / "report" / "quality.csv")
    assert quality["face_found"].min() > 0.9 and not quality["excluded"].any()
    frames = pd.read_parquet(study / "report" / "frames.parquet")
    assert set(frames["participant"]) == {"P01", "P02"} and frames["stimulus_t_s"].max() < 3.0


def test_the_study_benchmark_writes_its_figures(tmp_path):
    from emolens.bench.registry import BenchRun, run_bench

    out = tmp_path / "study.md"
    assert run_bench("study", BenchRun(out, quick=True, log=lambda _: None)) == 0
    assert "| 5 | 2 | 10 | 30 |" in out.read_text()


def test_face_found_counts_the_frames_a_real_recording_lacks_and_says_so(tmp_path, stimulus, capsys):
    """A 4 s clip of a real face with the 3 s ad starting at 2 s: a third of the ad is not in the recording."""
    study = tmp_path / "cov"
    clip = write_video(tmp_path / "viewer.mp4", (320, 240), faces=1, seconds=4.0, fps=FPS)
    assert main(["study", "new", str(study), "--stimulus", str(stimulus)]) == 0
    assert main(["study", "add", str(study), str(clip), "--participant", "P1", "--stimulus-at", "2",
                 "--device", "cpu"]) == 0
    assert "before ad_a ends (5 s): the rest of it has no data; the session is marked incomplete" in \
        capsys.readouterr().err
    assert json.loads((study / "sessions" / "P1.json").read_text())["complete"] is False
    assert main(["study", "report", str(study)]) == 0
    quality = pd.read_csv(study / "report" / "quality.csv")
    assert quality.columns.tolist() == ["participant", "stimulus", "expected_frames", "frames", "recorded",
                                        "face_found", "several_faces", "head_turn_deg", "excluded"]
    row = quality.iloc[0]
    assert (row["expected_frames"], row["frames"]) == (30, 20) and row["excluded"]
    assert row["recorded"] == pytest.approx(2 / 3, abs=1e-4) and row["face_found"] == pytest.approx(2 / 3, abs=1e-4)
    assert main(["study", "info", str(study)]) == 0
    assert "P1 #1" in (out := capsys.readouterr().out)
    assert "ad_a 67% face found, 33% of it not recorded (excluded)" in out and "(incomplete)" in out


def test_a_shuffled_stimulus_the_recording_never_reaches_is_not_in_the_recording(tmp_path, stimulus, capsys):
    other = write_video(tmp_path / "ad_b.mp4", (320, 240), faces=1, seconds=2.0, fps=10)
    create_study(tmp_path / "s", [str(stimulus), str(other)], shuffle=True, seed=4)
    info, warnings = add_session(tmp_path / "s", record_viewer(tmp_path / "v.csv", 0.8, 5.0), "P1", stimulus_at=4.0)
    first, second = info.order
    assert len(warnings) == 2 and not info.complete
    durations = {"ad_a": 3.0, "ad_b": 2.0}
    quality = Study(tmp_path / "s").quality.set_index("stimulus")
    assert quality.loc[first, ["expected_frames", "frames"]].tolist() == [durations[first] * FPS, 10]
    assert quality.loc[first, "face_found"] == pytest.approx(10 / (durations[first] * FPS))
    assert quality.loc[second, ["expected_frames", "frames", "recorded", "face_found"]].tolist() == \
        [durations[second] * FPS, 0, 0.0, 0.0]
    assert quality["excluded"].all()
    assert main(["study", "info", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert f"{second} not in the recording (excluded)" in out and f"{second} 0% face found" not in out


def test_a_truncated_session_timeline_is_not_counted_whole(tmp_path, stimulus):
    create_study(tmp_path / "s", [str(stimulus)])
    add_session(tmp_path / "s", record_viewer(tmp_path / "v.csv", 0.8, 5.0), "P1", stimulus_at=0.5)
    assert Study(tmp_path / "s").quality.loc[0, "face_found"] == pytest.approx(1.0)
    timeline = tmp_path / "s" / "sessions" / "P1.csv"
    rows = pd.read_csv(timeline, dtype=str, keep_default_na=False)
    rows[rows["time_s"].astype(float) < 2.5].to_csv(timeline, index=False)  # the last 1 s of the ad is cut off
    row = Study(tmp_path / "s").quality.iloc[0]
    assert (row["expected_frames"], row["frames"]) == (30, 20) and row["excluded"]
    assert row["face_found"] == pytest.approx(2 / 3) and row["recorded"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("size, decoded", [(20_000, 0), (400_000, 223)])
def test_a_stimulus_that_does_not_decode_to_its_end_is_refused(tmp_path, capsys, size, decoded):
    from emolens.bench.media import ASSETS

    cut = tmp_path / "cut.mp4"  # the demo clip (its index before its frames) cut short: the header says 472 frames
    cut.write_bytes((ASSETS / "reactions.mp4").read_bytes()[:size])
    assert main(["study", "new", str(tmp_path / "s"), "--stimulus", str(cut)]) == 1
    err = capsys.readouterr().err
    assert err == (f"emolens: error: cannot read the stimulus {cut} whole: {decoded} of its 472 frames decode "
                   f"(a truncated or damaged file?); export it again\n")
    assert not (tmp_path / "s").exists()


def test_adding_a_placed_session_again_replaces_its_stimulus_markers(tmp_path, stimulus, capsys):
    create_study(tmp_path / "s", [str(stimulus)])
    record_viewer(tmp_path / "v.csv", 0.8, 6.0, marks={10: "ad_a starts"})  # the user's own marker, at 1 s
    add_session(tmp_path / "s", tmp_path / "v.csv", "P1", stimulus_at=1.0)
    placed = tmp_path / "s" / "sessions" / "P1.csv"
    copy = tmp_path / "P1-placed.csv"
    copy.write_bytes(placed.read_bytes())
    assert main(["study", "add", str(tmp_path / "s"), str(copy), "--participant", "P1", "--stimulus-at", "2",
                 "--overwrite"]) == 0
    rows = pd.read_csv(placed)
    marked = rows.loc[rows["marker"].notna(), ["time_s", "marker"]].values.tolist()
    assert marked == [[1.0, "ad_a starts"], [2.0, "ad_a starts"], [5.0, "ad_a ends"]]
    assert rows.loc[rows["stimulus"].notna(), "time_s"].agg(["min", "max"]).tolist() == pytest.approx([2.0, 4.9])
    capsys.readouterr()
    assert main(["study", "add", str(tmp_path / "s"), str(copy), "--participant", "P2", "--stimulus-at-marker",
                 "nope"]) == 1
    assert capsys.readouterr().err == (f"emolens: error: --stimulus-at-marker: {copy} has no marker named 'nope' "
                                       f"(its markers: 'ad_a starts', 'ad_a ends')\n")


def test_a_timeline_without_its_record_is_warned_about_and_a_bad_record_is_named(tmp_path, stimulus, capsys):
    create_study(tmp_path / "s", [str(stimulus)])
    add_session(tmp_path / "s", record_viewer(tmp_path / "v.csv", 0.8, 5.0), "P1", stimulus_at=0.5)
    sessions = tmp_path / "s" / "sessions"
    (sessions / "P2.csv").write_bytes((sessions / "P1.csv").read_bytes())
    warning = f"warning: {sessions / 'P2.csv'} has no session record P2.json beside it, so it is left out"
    assert main(["study", "info", str(tmp_path / "s")]) == 0
    assert warning in capsys.readouterr().out
    assert main(["study", "report", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err.count(warning) == 1
    record = json.loads((sessions / "P1.json").read_text()) | {"participant": "P5", "number": "x"}
    (sessions / "P5.json").write_text(json.dumps(record))
    (sessions / "P5.csv").write_bytes((sessions / "P1.csv").read_bytes())
    assert main(["study", "info", str(tmp_path / "s")]) == 1
    assert capsys.readouterr().err == (f"emolens: error: the session record {sessions / 'P5.json'} is not valid: the "
                                       f"field 'number' should be a valid integer, not 'x'; fix that file, or add "
                                       f"its session again with emolens study add --overwrite\n")


@pytest.mark.parametrize("baseline_s, seen", [(0.0, False), (1.0, True), (1.0, False)])
def test_comparison_csv_has_the_same_columns_in_every_study(tmp_path, stimulus, baseline_s, seen):
    from emolens.study.aggregate import COMPARISON_COLUMNS

    create_study(tmp_path / "s", [str(stimulus)], baseline_s=baseline_s)
    for number in range(2):  # without a face found, every viewer is excluded
        add_session(tmp_path / "s", record_viewer(tmp_path / f"v{number}.csv", 0.8, 5.0, seen=lambda t: seen),
                    f"P{number}", stimulus_at=1.0)
    assert main(["study", "report", str(tmp_path / "s")]) == 0
    comparison = pd.read_csv(tmp_path / "s" / "report" / "comparison.csv")
    assert comparison.columns.tolist() == COMPARISON_COLUMNS
    assert comparison["above_baseline"].notna().all() == (baseline_s > 0 and seen)
    assert comparison["peak"].notna().all() == seen
