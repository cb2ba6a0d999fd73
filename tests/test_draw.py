"""Faces drawn with OpenCV (``emolens.draw``) and the annotated video of ``analyze --video``."""

from __future__ import annotations

import os
import signal
import threading

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.analyze import analyze_inputs
from emolens.draw import AnnotatedVideo, _draw_all, draw_faces
from emolens.errors import EmolensError
from emolens.layout import overlaps
from emolens.palette import face_hex
from emolens.types import Faces


def _bgr(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (5, 3, 1)])


def test_the_astronaut_gets_her_box_tag_and_bars(astronaut, analyzer):
    faces = analyzer.analyze(astronaut)
    drawn = draw_faces(astronaut.copy(), faces, analyzer.labels)
    x0, y0, x1, y1 = faces.xyxy[0].round().astype(int)
    left_edge = drawn[(y0 + y1) // 2, x0]
    assert np.abs(left_edge.astype(int) - _bgr(face_hex(1))).max() < 30  # the box in face 1's colour
    tag = drawn[max(y0 - 12, 0):y0, x0:x0 + 40].reshape(-1, 3)
    assert (np.abs(tag.astype(int) - _bgr(face_hex(1))).max(axis=1) < 30).mean() > 0.5  # the "#1 happy" tag
    beside = drawn[y0:y1, x1 + 8:x1 + 60].astype(int) - astronaut[y0:y1, x1 + 8:x1 + 60].astype(int)
    assert (beside < 0).mean() > 0.5  # the dark bar panel right of the box
    far = (slice(400, 512), slice(0, 100))
    assert np.array_equal(drawn[far], astronaut[far])  # nothing drawn elsewhere


def test_no_face_draws_nothing(astronaut, analyzer):
    blank = np.full_like(astronaut, 90)
    assert np.array_equal(draw_faces(blank.copy(), analyzer.analyze(blank), analyzer.labels), blank)


def test_bars_in_a_2x2_grid_cover_no_neighbour_as_in_the_window(astronaut, analyzer):
    """Before: ``--video`` tried 3 places and then took the first in the frame, over a neighbour's face;
    it now follows the window's rule (``emolens.layout``), bars inside the face's own box when crowded."""
    face = cv2.resize(astronaut[60:200, 150:300], (320, 240))
    frame = np.empty((480, 640, 3), np.uint8)
    for row, column in ((0, 0), (0, 1), (1, 0), (1, 1)):
        frame[row * 240:(row + 1) * 240, column * 320:(column + 1) * 320] = face[:, ::-1] if column else face
    faces = analyzer.analyze(frame)
    assert len(faces) == 4
    panels = _draw_all(frame.copy(), faces, analyzer.labels)
    boxes = [tuple(int(round(v)) for v in box) for box in faces.xyxy]
    for index, panel in enumerate(panels):
        assert 0 <= panel[0] and 0 <= panel[1] and panel[2] <= 640 and panel[3] <= 480
        assert not any(overlaps(panel, box) for other, box in enumerate(boxes) if other != index)
        assert not any(overlaps(panel, bars) for other, bars in enumerate(panels) if other != index)


def test_analyze_writes_an_annotated_video(tmp_path, two_face_video):
    out = tmp_path / "annotated.mp4"
    summary = analyze_inputs([str(two_face_video)], tmp_path / "t.csv", video=out, log=lambda _: None)
    assert f"wrote 20 annotated frames to {out}" in summary.format()
    table = pd.read_csv(tmp_path / "t.csv")
    capture = cv2.VideoCapture(str(out))
    annotated = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        annotated.append(image)
    assert len(annotated) == 20 and annotated[0].shape == (240, 320, 3)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    plain = cv2.VideoCapture(str(two_face_video)).read()[1]
    row = table[(table["frame"] == 0) & (table["face_id"] == 1)].iloc[0]
    x, y, h = int(row["x"]), int(row["y"]), int(row["h"])
    edge = (slice(y + h // 4, y + 3 * h // 4), slice(max(x - 1, 0), x + 2))
    assert np.abs(annotated[0][edge].astype(int) - _bgr(face_hex(1))).mean() < 50  # face 1's box, in the video
    assert np.abs(plain[edge].astype(int) - _bgr(face_hex(1))).mean() > 50
    assert not list(tmp_path.glob(".*partial*"))


def test_a_run_that_fails_at_once_leaves_an_older_video_as_it_was(tmp_path, two_face_video):
    out = tmp_path / "annotated.mp4"
    out.write_bytes(b"yesterday's video")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01" * 3000)
    with pytest.raises(EmolensError, match="cannot read video"):
        analyze_inputs([str(broken), str(two_face_video)], tmp_path / "t.csv", video=out, log=lambda _: None,
                       overwrite=True)
    assert out.read_bytes() == b"yesterday's video" and not list(tmp_path.glob(".*partial*"))


def test_a_run_that_fails_later_keeps_the_frames_it_drew_like_the_csv(tmp_path, two_face_video):
    """Inputs are checked before anything is written, so a mid-run end is an interruption (Ctrl+C)."""
    out = tmp_path / "annotated.mp4"

    def interrupt_after_the_first_input(done: int, total: int) -> None:
        if done == total:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        analyze_inputs([str(two_face_video), str(two_face_video)], tmp_path / "t.csv", video=out,
                       log=lambda _: None, progress=interrupt_after_the_first_input)
    assert cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT) == 20
    assert pd.read_csv(tmp_path / "t.csv")["frame"].nunique() == 20


@pytest.mark.parametrize(("video", "message"), [
    (lambda d, v: d / "out.gif", "must end in .mp4 or .avi"),
    (lambda d, v: v, "is the input"),
])
def test_bad_video_paths_are_refused_before_any_output(tmp_path, two_face_video, video, message):
    before = two_face_video.read_bytes()
    with pytest.raises(EmolensError, match=message):
        analyze_inputs([str(two_face_video)], tmp_path / "t.csv", video=video(tmp_path, two_face_video),
                       log=lambda _: None)
    assert not (tmp_path / "t.csv").exists() and two_face_video.read_bytes() == before


def test_a_ctrl_c_during_the_encoder_call_leaves_a_video_that_reads_back(tmp_path):
    """Before: a Ctrl+C arriving while OpenCV encoded a frame was raised as the call returned, before the frame
    was counted, so the finished file held one frame more than counted and failed its read-back check."""
    video = AnnotatedVideo(tmp_path / "v.mp4", labels=())
    big = np.random.default_rng(0).integers(0, 256, (2400, 3200, 3), np.uint8)  # a long encoder call
    video.write(big, Faces.empty(), 10.0)  # opens the writer
    timer = threading.Timer(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in range(100):
            video.write(big, Faces.empty(), 10.0)
    timer.join()
    video.finish()
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == video.frames >= 2
    capture.release()
