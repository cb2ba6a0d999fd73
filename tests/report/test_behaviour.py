"""Reports of timelines recorded with behaviour: attention, expressiveness, blink rate, the attention line."""

from __future__ import annotations

import pandas as pd
import pytest

from emolens.analyze import analyze_inputs
from emolens.behaviour.landmarker import BehaviourEstimator
from emolens.options import AnalyzerOptions
from emolens.report import build_report
from tests.behaviour.test_behaviour import blink_video, read


def test_report_shows_attention_expressiveness_and_blink_rate(tmp_path, astronaut):
    with BehaviourEstimator() as estimator:
        landmarks = read(estimator, astronaut).landmarks[0]
    video = blink_video(tmp_path / "blink.mp4", astronaut, landmarks)
    csv = tmp_path / "session.csv"
    summary = analyze_inputs([str(video)], csv, AnalyzerOptions(behaviour=True), log=lambda _: None)
    assert "attention 100.0%" in summary.format() and "(1 blinks in 4.0 face-seconds)" in summary.format()
    result = build_report([csv], tmp_path / "report")
    segments = pd.read_csv(result.segments_csv)
    group = segments[segments["face"] == "all"].iloc[0]
    assert group["attention"] == 1.0
    assert 0.5 < group["expressiveness"] <= 1.0  # she smiles
    assert group["blinks_per_min"] == pytest.approx(15.0, abs=0.6)
    page = result.html.read_text()
    assert "Behaviour between markers" in page and "attention share" in page and "blinks per minute" in page


def test_report_without_behaviour_columns_is_unchanged(tmp_path, two_face_video):
    csv = tmp_path / "plain.csv"
    analyze_inputs([str(two_face_video)], csv, log=lambda _: None)
    result = build_report([csv], tmp_path / "report")
    assert "attention" not in pd.read_csv(result.segments_csv).columns
    assert "Behaviour between markers" not in result.html.read_text()

