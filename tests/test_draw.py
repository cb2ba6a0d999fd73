"""Faces drawn with OpenCV (``emolens.draw``) and the annotated video of ``analyze --video``."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from emolens.analyze import analyze_inputs
from emolens.draw import draw_faces, place_panel
from emolens.errors import EmolensError
from emolens.palette import face_hex


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


@pytest.mark.parametrize(("box", "others", "expected"), [
    ((100, 100, 200, 200), [], (206, 100, 286, 190)),                      # right of the box
    ((500, 100, 600, 200), [], (414, 100, 494, 190)),                      # no room on the right: left
    ((100, 100, 200, 200), [(210, 90, 300, 210), (0, 90, 95, 210)], (100, 206, 180, 296)),  # neighbours: below
])
def test_bar_panels_avoid_the_frame_edge_and_other_faces(box, others, expected):
    assert place_panel(box, (80, 90), (640, 480), 6, others) == expected


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
