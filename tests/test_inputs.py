"""Inputs as cameras, phones and people make them: thin images, odd options, edited timelines, damaged videos."""

from __future__ import annotations

import os
import shutil
from importlib import resources

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.cli import main
from emolens.detect import FaceDetector
from emolens.errors import EmolensError
from emolens.report import build_report
from emolens.report.timeline import load_timelines

from .test_cli import assert_one_line_error, emolens

DEMO = resources.files("emolens.assets") / "demo.mp4"
PHOTO = resources.files("emolens.assets") / "astronaut.jpg"


@pytest.mark.parametrize("tiles", [2, 3, 8])
@pytest.mark.parametrize("size_hw", [(1, 1), (1, 300), (300, 1), (40, 512), (512, 40)])
def test_tiles_on_thin_images_find_nothing_instead_of_crashing(astronaut, tiles, size_hw):
    """Before: MediaPipe's graph failed on an empty tile ("ROI width and height must be > 0")."""
    image = np.ascontiguousarray(astronaut[: size_hw[0], : size_hw[1]])
    with FaceDetector("full", tiles=tiles) as detector:
        assert len(detector.detect(image)) == 0


def test_tiles_still_find_the_face(astronaut):
    with FaceDetector("full", tiles=2) as detector:
        assert len(detector.detect(astronaut)) == 1


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--tiles", "100", "--tiles must be between 1 and 8, got 100"),
    ("--tiles", "0", "--tiles must be between 1 and 8, got 0"),
    ("--smoothing", "nan", "--smoothing must be a number of seconds, 0 or more, got nan"),
    ("--smoothing", "inf", "--smoothing must be a number of seconds, 0 or more, got inf"),
    ("--smoothing", "-1", "--smoothing must be a number of seconds, 0 or more, got -1.0"),
    ("--min-confidence", "nan", "--min-confidence must be between 0 and 1, got nan"),
])
def test_options_out_of_range_are_one_line(tmp_path, capsys, option, value, message):
    out = tmp_path / "t.csv"
    assert main(["analyze", str(DEMO), "-o", str(out), option, value]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"emolens: error: {message}"]
    assert not out.exists()


def test_the_same_input_twice_is_two_sessions_in_time_order(tmp_path):
    """Before: ``analyze X X`` was one session in which time went back, and its timestamps overlapped."""
    out = tmp_path / "twice.csv"
    result = emolens("analyze", DEMO, DEMO, "-o", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    stamps = pd.to_datetime(table["timestamp"])
    assert stamps.is_monotonic_increasing
    timelines, warnings = load_timelines(out)
    assert [len(t.frames) for t in timelines] == [120, 120] and len(warnings) == 1
    report = build_report([out], tmp_path / "report")
    assert "twice · demo.mp4 (2)" in report.html.read_text()


def test_a_timeline_edited_so_that_time_steps_back_is_reported_not_a_traceback(tmp_path):
    out = tmp_path / "session.csv"
    assert emolens("analyze", DEMO, "-o", out).returncode == 0
    table = pd.read_csv(out)
    table.loc[100:, "time_s"] -= 3.0  # someone shifted the second half by hand
    table.to_csv(tmp_path / "edited.csv", index=False)
    report = build_report([tmp_path / "edited.csv"], tmp_path / "report")
    assert any("time_s goes back from 2.45 to -0.5 s" in warning for warning in report.warnings)
    table.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)
    with pytest.raises(EmolensError, match="time_s goes back twice in a row"):
        build_report([tmp_path / "reversed.csv"], tmp_path / "report2")
    result = emolens("report", tmp_path / "reversed.csv", "-o", tmp_path / "report3")
    assert_one_line_error(result, "rows are not in time order")


def test_a_damaged_video_is_one_line_without_ffmpegs_noise(tmp_path):
    """Before: FFmpeg's '[mov,mp4,...] moov atom not found' came first."""
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(DEMO.read_bytes()[:100_000])  # the moov atom is at the end of the file
    shutil.copy(DEMO, tmp_path / "good.mp4")
    result = emolens("analyze", tmp_path / "good.mp4", cut, "-o", tmp_path / "t.csv")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"emolens: error: cannot read video {cut}: not a video, corrupt, or a codec OpenCV lacks"]
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize("args", [["--detector", "full", "--tiles", "2"], []])
def test_a_normal_run_prints_only_our_lines(tmp_path, args):
    """No 'WARNING: Logging before InitGoogle()', 'Input tensor memory is not aligned' or other native lines."""
    result = emolens("analyze", DEMO, "-o", tmp_path / "t.csv", *args)
    assert result.returncode == 0, result.stderr
    ours = ("emolens: ", "wrote ", "frames ", "dominant emotion: ")
    assert [line for line in result.stderr.splitlines() if not line.startswith(ours)] == []


def test_a_truncated_recording_exits_3_so_that_scripts_can_tell(tmp_path):
    """Before: exit 0, with only a warning line to tell a timeline of half the recording from a whole one."""
    whole, cut = tmp_path / "whole.avi", tmp_path / "cut.avi"
    capture = cv2.VideoCapture(str(DEMO))
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), capture.get(cv2.CAP_PROP_FPS), (640, 360))
    ok, image = capture.read()
    while ok:
        writer.write(cv2.resize(image, (640, 360)))
        ok, image = capture.read()
    writer.release()
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) // 2])  # a recording cut off: its header still announces every frame
    result = emolens("analyze", whole, "-o", tmp_path / "whole.csv")
    assert result.returncode == 0, result.stderr
    result = emolens("analyze", cut, "-o", tmp_path / "cut.csv")
    assert result.returncode == 3 and "Traceback" not in result.stderr, result.stderr
    assert f"warning: {cut} ended after" in result.stderr
    assert 0 < len(pd.read_csv(tmp_path / "cut.csv")) < len(pd.read_csv(tmp_path / "whole.csv"))


def named(folder, name: bytes):
    """A path whose file name is raw bytes (not UTF-8), as Python spells it (surrogates)."""
    return type(folder)(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def test_file_names_that_are_not_utf8_are_written_as_python_shows_them(tmp_path):
    """Before: UnicodeEncodeError (twice) stopped the folder run, and the report of such a file failed."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTO, named(folder, b"bad\xff\xfename.jpg"))
    shutil.copy(PHOTO, folder / "good.jpg")
    out = named(tmp_path, b"ses\xffsion.csv")
    result = emolens("analyze", folder, "-o", out)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert pd.read_csv(out)["source"].tolist() == [f"{folder}/bad\\xff\\xfename.jpg", f"{folder}/good.jpg"]
    cut = named(tmp_path, b"cu\xfet.csv")
    cut.write_bytes(out.read_bytes()[:-5])  # a last line cut off: the warning names the file too
    report = build_report([out, cut], tmp_path / "report")
    page = report.html.read_text(encoding="utf-8")
    assert "ses\\xffsion" in page and "cu\\xfet.csv: the last line was cut off" in page
    assert "ses\\xffsion" in pd.read_csv(report.segments_csv)["session"].iloc[0]
