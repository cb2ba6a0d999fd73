"""What ``emolens analyze`` tells the user beyond the CSV: faces likely missed, and what --smoothing does."""

from __future__ import annotations

import subprocess
import sys

import cv2

from emolens.analyze import analyze_inputs
from emolens.bench.media import face_tiles, render_frame

from .test_diagnose import darkened


def test_a_face_that_vanishes_and_returns_is_counted_as_likely_missed(tmp_path):
    """Frames 8-10 hide one of two faces; the tracker bridges the gap, so the summary says so."""
    tiles = face_tiles(2)
    path = tmp_path / "gap.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (640, 480))
    for index in range(20):
        frame = render_frame(tiles, (640, 480), index / 10)
        if 8 <= index <= 10:
            frame[:, 320:] = 96  # the right-hand face is covered (as a detector would miss it)
        writer.write(frame)
    writer.release()
    summary = analyze_inputs([str(path)], tmp_path / "t.csv", log=lambda _: None)
    assert summary.vanished >= 3
    assert f"faces likely missed: {summary.vanished} face-frame(s)" in summary.format()


def test_no_gap_no_claim(tmp_path, two_face_video):
    summary = analyze_inputs([str(two_face_video)], tmp_path / "t.csv", log=lambda _: None)
    assert summary.vanished == 0 and "likely missed" not in summary.format()


def test_analyze_help_says_the_csv_holds_raw_scores():
    result = subprocess.run([sys.executable, "-m", "emolens", "analyze", "--help"], capture_output=True, text=True,
                            timeout=120)
    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "the CSV's emotion columns always hold the model's raw scores" in text
    assert "--video OUT.mp4" in text and "--markers EVENTS.csv" in text and "--squares {auto,always,never}" in text


def test_a_photo_without_a_face_says_why(tmp_path, astronaut):
    """A photo taken in the dark: the summary names it and the likely reason, with the measure behind it."""
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), darkened(astronaut), [cv2.IMWRITE_JPEG_QUALITY, 95])
    summary = analyze_inputs([str(photo)], tmp_path / "t.csv", log=lambda _: None)
    assert summary.face_rows == 0
    assert f"no face found in {photo}: too dark (mean brightness 6 of 255)" in summary.format().splitlines()


def test_an_input_with_faces_gets_no_such_line(tmp_path, two_face_video):
    summary = analyze_inputs([str(two_face_video)], tmp_path / "t.csv", log=lambda _: None)
    assert summary.face_rows > 0 and "no face found" not in summary.format()
