import time

import cv2
import numpy as np
import pytest

from emolens.errors import EmolensError
from emolens.sources import VideoSource, open_source


def test_video_frames_carry_index_and_media_time(two_face_video):
    with open_source(two_face_video) as source:
        frames = list(source)
    assert source.fps == pytest.approx(10)
    assert [f.index for f in frames] == list(range(20))
    assert frames[5].t_s == pytest.approx(0.5)
    assert frames[0].image.shape == (240, 320, 3)


def test_every_nth_frame(two_face_video):
    with open_source(two_face_video, every=3) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(0, 20, 3))
    assert frames[1].t_s == pytest.approx(0.3)


def test_a_slow_consumer_still_gets_every_frame(two_face_video):
    """The decoder runs ahead into a small queue; when it finishes first, nothing may be dropped."""
    source = VideoSource(two_face_video, queue_size=2)
    with source:
        indices = []
        for frame in source:
            time.sleep(0.01)
            indices.append(frame.index)
    assert indices == list(range(20))


def test_closing_early_stops_the_decoder(two_face_video):
    with open_source(two_face_video) as source:
        first = next(iter(source))
    assert first.index == 0


def test_folder_skips_and_counts_unreadable_images(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut)
    (tmp_path / "b.jpg").write_bytes(b"not really a jpeg")
    cv2.imwrite(str(tmp_path / "c.png"), cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path) as source:
        frames = list(source)
    assert [f.source.split("/")[-1] for f in frames] == ["a.png", "c.png"]
    assert source.skipped == 1 and source.independent
    assert frames[1].image.shape == (512, 512, 3)


def test_single_image(tmp_path, astronaut):
    path = tmp_path / "face.jpg"
    cv2.imwrite(str(path), astronaut)
    with open_source(path) as source:
        frames = list(source)
    assert len(frames) == 1 and frames[0].t_s == 0.0


def test_truncated_video_yields_what_it_has(tmp_path, two_face_video):
    data = two_face_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        source = open_source(cut)
    except EmolensError as error:  # the index may be at the end of the file: then it is unreadable
        assert "cannot read video" in str(error)
        return
    with source:
        frames = list(source)
    assert 0 < len(frames) <= 20


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.mp4", "input not found"),
    (lambda d: (d / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000)) and d / "noise.mp4",
     "cannot read video"),
    (lambda d: (d / "text.avi").write_text("hello") and d / "text.avi", "cannot read video"),
    (lambda d: (d / "broken.png").write_bytes(b"\x89PNG broken") and d / "broken.png", "cannot read image"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no images in folder"),
])
def test_bad_inputs_give_clear_errors(tmp_path, make, message):
    with pytest.raises(EmolensError, match=message):
        open_source(make(tmp_path))


def test_missing_camera():
    with pytest.raises(EmolensError, match="camera 97 not found"):
        open_source(97)


def test_every_must_be_positive(two_face_video):
    with pytest.raises(EmolensError, match="--every"):
        open_source(two_face_video, every=0)
